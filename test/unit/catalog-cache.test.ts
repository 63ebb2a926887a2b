import { CatalogCache, type CatalogSnapshot } from '../../src/billing/catalog/catalog-cache';

function snapshot(tag: string): CatalogSnapshot {
  return { products: [{ id: tag, active: true } as never], productsById: new Map(), pricesByProduct: new Map(), pricesById: new Map() };
}

describe('CatalogCache', () => {
  it('loads once within the TTL and again after it', async () => {
    let now = 0;
    let loads = 0;
    const cache = new CatalogCache(async () => snapshot(`v${++loads}`), 1000, () => now);
    await Promise.all([cache.get(), cache.get(), cache.get()]);
    expect(loads).toBe(1);
    now = 999;
    await cache.get();
    expect(loads).toBe(1);
    now = 1000;
    expect((await cache.get()).products[0].id).toBe('v2');
  });

  it('drops the catalog on invalidate, and does not keep a load that started before it', async () => {
    let release: (s: CatalogSnapshot) => void = () => undefined;
    let loads = 0;
    const cache = new CatalogCache(() => {
      loads++;
      return new Promise<CatalogSnapshot>((resolve) => (release = resolve));
    }, 60_000);
    const before = cache.get();
    cache.invalidate();
    release(snapshot('old'));
    expect((await before).products[0].id).toBe('old');
    const after = cache.get();
    expect(loads).toBe(2);
    release(snapshot('new'));
    expect((await after).products[0].id).toBe('new');
    expect((await cache.get()).products[0].id).toBe('new');
    expect(loads).toBe(2);
  });

  it('does not keep a failed load', async () => {
    let fail = true;
    const cache = new CatalogCache(async () => {
      if (fail) throw new Error('database down');
      return snapshot('ok');
    }, 60_000);
    await expect(cache.get()).rejects.toThrow('database down');
    fail = false;
    expect((await cache.get()).products[0].id).toBe('ok');
  });
});
