import { createLogger } from '../../src/common/logger';
import { MutationRateLimiter } from '../../src/security/mutation-rate-limiter';
import { startTestServer, type TestServer } from '../helpers/test-server';

describe('a large budget in the postgres store is taken in slices', () => {
  let server: TestServer;
  const log = createLogger({ level: 'silent' });
  const limiter = (pointsPerMinute: number, minLeaseSweep?: number) =>
    MutationRateLimiter.create({ keyPrefix: 'lease-test', pointsPerMinute, store: 'postgres', orm: server.orm, log, minLeaseSweep });
  /** Calls the limiter made on the store (rate-limiter-flexible's) while `fn` runs. */
  const storeCalls = async (limiter: MutationRateLimiter, fn: () => Promise<void>) => {
    const store = (limiter as unknown as { limiter: { consume(...args: unknown[]): unknown } }).limiter;
    const spy = jest.spyOn(store, 'consume');
    try {
      await fn();
      return spy.mock.calls.length;
    } finally {
      spy.mockRestore();
    }
  };

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it('keeps a small budget exact: every point goes to the store', async () => {
    expect((await limiter(60)).leaseSize).toBe(1);
  });

  it('never lets two instances together spend more than the budget', async () => {
    const [a, b] = [await limiter(500), await limiter(500)];
    expect(a.leaseSize).toBe(10);
    let allowed = 0;
    let refusal: unknown;
    for (let i = 0; i < 600; i++) {
      const decision = await (i % 2 ? a : b).consume('user:shared', 1);
      if (decision.allowed) allowed++;
      else refusal ??= decision;
    }
    expect(allowed).toBeLessThanOrEqual(500);
    // At most one unspent slice per instance is lost to the other.
    expect(allowed).toBeGreaterThanOrEqual(500 - 2 * a.leaseSize);
    expect(refusal).toMatchObject({ allowed: false, retryAfterSeconds: expect.any(Number) });
  });

  it('asks the store once per slice, also for concurrent requests', async () => {
    const one = await limiter(500);
    const sequential = await storeCalls(one, async () => {
      for (let i = 0; i < 100; i++) expect((await one.consume('user:sequential', 1)).allowed).toBe(true);
    });
    expect(sequential).toBe(100 / one.leaseSize);
    const concurrent = await storeCalls(one, async () => {
      const decisions = await Promise.all(Array.from({ length: 50 }, () => one.consume('user:concurrent', 1)));
      expect(decisions.every((d) => d.allowed)).toBe(true);
    });
    expect(concurrent).toBe(50 / one.leaseSize);
  });

  it('forgets the leases of past windows, so one left behind by every user does not pile up', async () => {
    const one = await limiter(500, 5);
    for (let i = 0; i < 4; i++) await one.consume(`user:sweep-${i}`, 1);
    expect(one.leaseCount).toBe(4);
    const now = Date.now();
    const clock = jest.spyOn(Date, 'now').mockReturnValue(now + 61_000);
    try {
      // The fifth lease reaches the sweep threshold: the four from the past window go.
      await one.consume('user:sweep-late', 1);
    } finally {
      clock.mockRestore();
    }
    expect(one.leaseCount).toBe(1);
  });
});
