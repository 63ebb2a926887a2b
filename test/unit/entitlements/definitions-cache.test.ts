import { DefinitionsCache, type LimitDefinition } from '../../../src/billing/entitlements/definitions-cache';

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const SSO = [{ feature: 'sso', active: true }];

describe(DefinitionsCache.name, () => {
  describe('features', () => {
    it('loads once and answers from memory after', async () => {
      const cache = new DefinitionsCache();
      const load = jest.fn(async () => SSO);
      expect(await cache.features('c1', load)).toEqual(SSO);
      expect(await cache.features('c1', load)).toEqual(SSO);
      expect(load).toHaveBeenCalledTimes(1);
    });

    it('shares one load between concurrent readers', async () => {
      const cache = new DefinitionsCache();
      const pending = deferred<typeof SSO>();
      const load = jest.fn(() => pending.promise);
      const both = Promise.all([cache.features('c1', load), cache.features('c1', load)]);
      pending.resolve(SSO);
      expect(await both).toEqual([SSO, SSO]);
      expect(load).toHaveBeenCalledTimes(1);
    });

    it('does not keep a load that started before an invalidation', async () => {
      const cache = new DefinitionsCache();
      const stale = deferred<{ feature: string; active: boolean }[]>();
      const reading = cache.features('c1', () => stale.promise);
      cache.invalidate('c1');
      stale.resolve([]);
      expect(await reading).toEqual([]);
      const fresh = jest.fn(async () => SSO);
      expect(await cache.features('c1', fresh)).toEqual(SSO);
      expect(fresh).toHaveBeenCalledTimes(1);
    });

    it('does not keep a failed load', async () => {
      const cache = new DefinitionsCache();
      await expect(cache.features('c1', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
      expect(await cache.features('c1', async () => SSO)).toEqual(SSO);
    });

    it('loads again once the time-to-live has passed', async () => {
      let now = 1_000;
      const cache = new DefinitionsCache({ ttlMs: 5_000, now: () => now });
      const load = jest.fn(async () => SSO);
      await cache.features('c1', load);
      now += 4_000;
      await cache.features('c1', load);
      expect(load).toHaveBeenCalledTimes(1);
      now += 2_000;
      await cache.features('c1', load);
      expect(load).toHaveBeenCalledTimes(2);
    });
  });

  describe('invalidate', () => {
    const limit: LimitDefinition = { subscriptionId: 's1', meter: 'api_calls', limit: 100, kind: 'hard', periodStart: null, periodEnd: null };

    it("drops one customer's features and limits and leaves the others", async () => {
      const cache = new DefinitionsCache();
      await cache.features('c1', async () => SSO);
      await cache.limits('c1', async () => [limit]);
      await cache.features('c2', async () => SSO);
      cache.invalidate('c1');
      const reload = jest.fn(async () => []);
      await cache.features('c1', reload);
      await cache.limits('c1', reload);
      await cache.features('c2', reload);
      expect(reload).toHaveBeenCalledTimes(2);
    });

    it("drops every customer's features and limits for a catalog change, but not which customer a user is", async () => {
      const cache = new DefinitionsCache();
      await cache.features('c1', async () => SSO);
      await cache.customerOfUser('u1', async () => ({ id: 'c1', email: 'a@example.com' }));
      cache.invalidate(null);
      const reload = jest.fn(async () => []);
      await cache.features('c1', reload);
      expect(reload).toHaveBeenCalledTimes(1);
      expect(await cache.customerOfUser('u1', async () => ({ id: 'other', email: null }))).toEqual({ id: 'c1', email: 'a@example.com' });
    });

    it("shows a user's held limits without loading, and nothing once they are dropped or not both held", async () => {
      const cache = new DefinitionsCache();
      expect(cache.peekLimitsOfUser('u1')).toBeUndefined();
      await cache.customerOfUser('u1', async () => ({ id: 'c1', email: null }));
      expect(cache.peekLimitsOfUser('u1')).toBeUndefined();
      await cache.limits('c1', async () => [limit]);
      expect(cache.peekLimitsOfUser('u1')).toEqual([limit]);
      cache.invalidate(null);
      expect(cache.peekLimitsOfUser('u1')).toBeUndefined();
      await cache.limits('c1', async () => [limit]);
      cache.invalidate('c1');
      expect(cache.peekLimitsOfUser('u1')).toBeUndefined();
    });

    it("drops a customer's row with the rest of what is known of it (its email may have changed)", async () => {
      const cache = new DefinitionsCache();
      await cache.customerOfUser('u1', async () => ({ id: 'c1', email: 'old@example.com' }));
      cache.invalidate('c1');
      expect(await cache.customerOfUser('u1', async () => ({ id: 'c1', email: 'new@example.com' }))).toEqual({ id: 'c1', email: 'new@example.com' });
    });
  });

  it('does not remember that a user has no customer yet', async () => {
    const cache = new DefinitionsCache();
    expect(await cache.customerOfUser('u1', async () => null)).toBeNull();
    expect(await cache.customerOfUser('u1', async () => ({ id: 'c1', email: null }))).toEqual({ id: 'c1', email: null });
  });

  it('stays within its budget of bytes', async () => {
    const cache = new DefinitionsCache({ maxBytes: 10_000 });
    for (let i = 0; i < 1_000; i++) await cache.features(`customer-${i}`, async () => SSO);
    expect(cache.size).toBeLessThan(100);
    expect(cache.size).toBeGreaterThan(10);
  });
});
