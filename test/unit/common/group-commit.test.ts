import { GroupCommit, KeyedGroupCommit } from '../../../src/common/group-commit';

/** A statement runner whose statements end when the test says so. */
function statements() {
  const runs: { items: string[]; finish: () => void; fail: (e: Error) => void }[] = [];
  const run = (items: string[]) =>
    new Promise<string[]>((resolve, reject) =>
      runs.push({ items, finish: () => resolve(items.map((i) => i.toUpperCase())), fail: reject }),
    );
  return { runs, run };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe(GroupCommit.name, () => {
  it('sends an item alone while a statement is free, and those arriving meanwhile together next, each answered its own outcome', async () => {
    const s = statements();
    const group = new GroupCommit(s.run, { maxInFlight: 1, maxBatch: 10 });
    const a = group.submit('a');
    const rest = ['b', 'c'].map((i) => group.submit(i));
    expect(s.runs.map((r) => r.items)).toEqual([['a']]);
    s.runs[0].finish();
    expect(await a).toBe('A');
    expect(s.runs.map((r) => r.items)).toEqual([['a'], ['b', 'c']]);
    s.runs[1].finish();
    expect(await Promise.all(rest)).toEqual(['B', 'C']);
  });

  it('with gatherTurn, items submitted in the same turn go together even when statements are free', async () => {
    const s = statements();
    const group = new GroupCommit(s.run, { maxInFlight: 2, gatherTurn: true });
    const answers = ['a', 'b', 'c'].map((i) => group.submit(i));
    expect(s.runs).toEqual([]);
    await tick();
    expect(s.runs.map((r) => r.items)).toEqual([['a', 'b', 'c']]);
    s.runs[0].finish();
    expect(await Promise.all(answers)).toEqual(['A', 'B', 'C']);
  });

  it('rejects every item of a failed statement with its error, and goes on with the next', async () => {
    const s = statements();
    const group = new GroupCommit(s.run, { maxInFlight: 1, maxBatch: 2 });
    const first = group.submit('a');
    const waiting = ['b', 'c', 'd'].map((i) => group.submit(i));
    s.runs[0].fail(new Error('boom'));
    await expect(first).rejects.toThrow('boom');
    expect(s.runs.map((r) => r.items)).toEqual([['a'], ['b', 'c']]);
    s.runs[1].finish();
    await tick();
    s.runs[2].finish();
    expect(await Promise.all(waiting)).toEqual(['B', 'C', 'D']);
  });
});

describe(KeyedGroupCommit.name, () => {
  it('groups items of one key only, runs one statement per key at a time, and forgets a key once its work is done', async () => {
    const s = statements();
    const keyed = new KeyedGroupCommit((key: string, items: string[]) => s.run(items.map((i) => `${key}:${i}`)), { maxInFlight: 1, gatherTurn: true });
    const a = ['1', '2'].map((i) => keyed.submit('a', i));
    const b = keyed.submit('b', '1');
    await tick();
    expect(s.runs.map((r) => r.items)).toEqual([['a:1', 'a:2'], ['b:1']]);
    const a3 = keyed.submit('a', '3');
    await tick();
    // Key a's statement is still running: its next item waits for it.
    expect(s.runs).toHaveLength(2);
    expect(keyed.size).toBe(2);
    s.runs[1].finish();
    expect(await b).toBe('B:1');
    expect(keyed.size).toBe(1);
    s.runs[0].finish();
    expect(await Promise.all(a)).toEqual(['A:1', 'A:2']);
    expect(s.runs.map((r) => r.items)[2]).toEqual(['a:3']);
    s.runs[2].finish();
    expect(await a3).toBe('A:3');
    expect(keyed.size).toBe(0);
  });
});
