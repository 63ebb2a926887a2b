import { isOwned, OWNER_METADATA } from '../../../src/billing/catalog/catalog-change';
import type { CatalogPriceDefinition, CatalogProductDefinition } from '../../../src/billing/catalog/catalog-file';
import { planArchiveSweep, planPrice, planProduct, termsOf } from '../../../src/billing/catalog/catalog-sync.plan';
import type { PriceSnapshot, ProductSnapshot } from '../../../src/stripe/stripe.gateway';

function product(overrides: Partial<ProductSnapshot> = {}): ProductSnapshot {
  return {
    id: 'prod_1',
    name: 'Starter',
    description: null,
    active: true,
    metadata: { ...OWNER_METADATA, tollgate_code: 'starter' },
    livemode: false,
    deleted: false,
    createdAt: null,
    updatedAt: null,
    ...overrides,
  };
}

function price(overrides: Partial<PriceSnapshot> = {}): PriceSnapshot {
  return {
    id: 'price_1',
    productId: 'prod_1',
    product: null,
    active: true,
    currency: 'usd',
    unitAmount: 1900,
    lookupKey: 'starter_monthly',
    nickname: null,
    type: 'recurring',
    recurring: { interval: 'month', intervalCount: 1, usageType: 'licensed', meterId: null },
    metadata: { ...OWNER_METADATA, tollgate_code: 'starter' },
    livemode: false,
    deleted: false,
    createdAt: null,
    ...overrides,
  };
}

const starter: CatalogProductDefinition = {
  code: 'starter',
  name: 'Starter',
  prices: [{ lookupKey: 'starter_monthly', currency: 'usd', unitAmount: 1900, interval: 'month' }],
  features: [],
  limits: [],
};
const monthly: CatalogPriceDefinition = starter.prices[0];

describe('catalog sync plan', () => {
  describe(planProduct.name, () => {
    it('creates a product Stripe does not have', () => {
      const decision = planProduct(starter, []);
      expect(decision.kind).toBe('create');
    });

    it('ignores products owned under another code', () => {
      expect(planProduct(starter, [product({ metadata: { ...OWNER_METADATA, tollgate_code: 'pro' } })]).kind).toBe('create');
    });

    it('keeps a product that already matches', () => {
      expect(planProduct(starter, [product()])).toEqual({ kind: 'keep', product: product() });
    });

    it('updates only what changed, and says what', () => {
      const decision = planProduct({ ...starter, name: 'Starter plan', active: false }, [product()]);
      expect(decision.kind).toBe('update');
      if (decision.kind !== 'update') return;
      expect(decision.update).toEqual({ name: 'Starter plan', active: false });
      expect(decision.change.detail).toBe('prod_1: name "Starter" → "Starter plan", inactive');
    });

    it('prefers the active one of several owned products with the code', () => {
      const archived = product({ id: 'prod_old', active: false });
      const decision = planProduct(starter, [archived, product({ id: 'prod_new' })]);
      expect(decision).toEqual({ kind: 'keep', product: product({ id: 'prod_new' }) });
    });
  });

  describe(planPrice.name, () => {
    const want = termsOf(monthly, 'prod_1', null);

    it('creates a price when no price holds the lookup key', () => {
      const decision = planPrice(monthly, undefined, want, isOwned);
      expect(decision.kind).toBe('create');
    });

    it('leaves a lookup key held by a price Tollgate does not manage alone, as a conflict', () => {
      const decision = planPrice(monthly, price({ metadata: {} }), want, isOwned);
      expect(decision.kind).toBe('conflict');
      if (decision.kind === 'conflict') expect(decision.change.action).toBe('conflict');
    });

    it('keeps an active price with the same terms', () => {
      expect(planPrice(monthly, price(), want, isOwned)).toEqual({ kind: 'keep', holder: price() });
    });

    it('reactivates an archived price with the same terms instead of creating one', () => {
      expect(planPrice(monthly, price({ active: false }), want, isOwned).kind).toBe('reactivate');
    });

    it('replaces a price whose amount changed (prices are immutable) and names what changed', () => {
      const decision = planPrice({ ...monthly, unitAmount: 2900 }, price(), termsOf({ ...monthly, unitAmount: 2900 }, 'prod_1', null), isOwned);
      expect(decision.kind).toBe('replace');
      if (decision.kind === 'replace') expect(decision.change.detail).toBe('unit amount 1900 → 2900; archives price_1');
    });

    it('replaces a price whose interval changed', () => {
      const yearly = { ...monthly, interval: 'year' as const };
      const decision = planPrice(yearly, price(), termsOf(yearly, 'prod_1', null), isOwned);
      expect(decision.kind).toBe('replace');
      if (decision.kind === 'replace') expect(decision.change.detail).toContain('interval month → year');
    });
  });
});

describe('planArchiveSweep', () => {
  const codes = new Set(['starter']);

  it('archives owned products the file no longer lists, and owned prices no lookup key names', () => {
    const gone = product({ id: 'prod_gone', metadata: { ...OWNER_METADATA, tollgate_code: 'gone' } });
    const kept = product();
    const current = price({ id: 'price_cur' });
    const orphan = price({ id: 'price_orphan', lookupKey: null });
    const sweep = planArchiveSweep(codes, [kept, gone], [current, orphan], new Set(['price_cur']), new Set(), isOwned);
    expect(sweep.products.map((p) => p.id)).toEqual(['prod_gone']);
    expect(sweep.prices.map((p) => p.id)).toEqual(['price_orphan']);
    expect(sweep.changes.map((c) => `${c.where} ${c.action} ${c.object} ${c.key}`)).toEqual(['stripe archive product gone', 'stripe archive price price_orphan']);
    expect([...sweep.archivedProductIds]).toEqual(['prod_gone']);
    expect([...sweep.archivedPriceIds]).toEqual(['price_orphan']);
  });

  it('counts already archived objects as archived without writing them again', () => {
    const gone = product({ id: 'prod_gone', active: false, metadata: { ...OWNER_METADATA, tollgate_code: 'gone' } });
    const inactive = price({ id: 'price_old', active: false });
    const sweep = planArchiveSweep(codes, [gone], [inactive], new Set(), new Set(), isOwned);
    expect([sweep.products, sweep.prices, sweep.changes]).toEqual([[], [], []]);
    expect([...sweep.archivedProductIds, ...sweep.archivedPriceIds]).toEqual(['prod_gone', 'price_old']);
  });

  it('never archives what Tollgate does not own, nor a price this run archived already', () => {
    const foreign = price({ id: 'price_foreign', metadata: {} });
    const replaced = price({ id: 'price_replaced' });
    const sweep = planArchiveSweep(codes, [], [foreign, replaced], new Set(), new Set(['price_replaced']), isOwned);
    expect(sweep.prices).toEqual([]);
    expect([...sweep.archivedPriceIds]).toEqual(['price_replaced']);
  });
});
