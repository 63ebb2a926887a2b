import { SharedRead } from '../../../src/billing/subscriptions/subscription-read.repository';

describe(SharedRead.name, () => {
  it('answers concurrent callers from shared statements, each from one that started after it asked', async () => {
    const statements: string[][] = [];
    let release: (() => void) | undefined;
    let version = 0;
    const read = new SharedRead<string[]>(async (keys) => {
      statements.push(keys);
      const seen = version;
      await new Promise<void>((resolve) => (release = resolve));
      return new Map(keys.map((k) => [k, [`${k}@${seen}`]]));
    }, 1);

    const first = read.load('a');
    // Asked while the first statement runs: both wait for the next one, which they share.
    version = 1;
    const second = read.load('b');
    const third = read.load('a');
    expect(statements).toEqual([['a']]);
    release!();
    await expect(first).resolves.toEqual(['a@0']);
    await new Promise((r) => setImmediate(r));
    expect(statements).toEqual([['a'], ['b', 'a']]);
    release!();
    await expect(second).resolves.toEqual(['b@1']);
    await expect(third).resolves.toEqual(['a@1']);
  });

  it('runs up to maxInFlight statements at once, then batches the callers that wait', async () => {
    const releases: (() => void)[] = [];
    const statements: string[][] = [];
    const read = new SharedRead<string[]>(async (keys) => {
      statements.push(keys);
      await new Promise<void>((resolve) => releases.push(resolve));
      return new Map(keys.map((k) => [k, [k]]));
    }, 2);
    const answers = ['a', 'b', 'c', 'd'].map((k) => read.load(k));
    expect(statements).toEqual([['a'], ['b']]);
    releases.shift()!();
    await answers[0];
    await new Promise((r) => setImmediate(r));
    expect(statements).toEqual([['a'], ['b'], ['c', 'd']]);
    releases.forEach((release) => release());
    await expect(Promise.all(answers)).resolves.toEqual([['a'], ['b'], ['c'], ['d']]);
  });

  it('answers an empty list for a key the statement returned nothing for, and passes a failure to every caller of it', async () => {
    let fail = false;
    const read = new SharedRead<string[]>(async () => {
      if (fail) throw new Error('database down');
      return new Map();
    });
    await expect(read.load('nobody')).resolves.toEqual([]);
    fail = true;
    await expect(Promise.all([read.load('x'), read.load('y')])).rejects.toThrow('database down');
    fail = false;
    await expect(read.load('x')).resolves.toEqual([]);
  });
});
