import { GroupCommit } from '../../../src/common/group-commit';

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
