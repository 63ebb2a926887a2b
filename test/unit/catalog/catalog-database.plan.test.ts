import type { CatalogStripeState } from '../../../src/billing/catalog/catalog-change';
import { planDatabase, type CatalogRows, type MeterRow, type PriceRow, type ProductRow } from '../../../src/billing/catalog/catalog-database.plan';
import type { CatalogDefinition } from '../../../src/billing/catalog/catalog-file';

const CATALOG = {
  meters: [{ eventName: 'api_calls', displayName: 'API calls', aggregation: 'sum' }],
  products: [
    {
      code: 'pro',
      name: 'Pro',
      description: 'For teams',
      prices: [
        { lookupKey: 'pro_monthly', currency: 'usd', unitAmount: 9900, interval: 'month' },
        { lookupKey: 'pro_api_calls', currency: 'usd', unitAmount: 1, interval: 'month', usageType: 'metered', meter: 'api_calls' },
      ],
      features: [],
      limits: [],
    },
  ],
} as unknown as CatalogDefinition;

function stripeState(overrides: Partial<CatalogStripeState> = {}): CatalogStripeState {
  return {
    meters: { api_calls: 'mtr_1' },
    products: { pro: 'prod_1' },
    prices: { pro_monthly: 'price_m', pro_api_calls: 'price_a' },
    archivedProductIds: new Set(),
    archivedPriceIds: new Set(),
    ...overrides,
  };
}

const METER: MeterRow = { id: 'm1', eventName: 'api_calls', displayName: 'API calls', aggregation: 'sum', stripeMeterId: 'mtr_1' };
const PRODUCT: ProductRow = { id: 'p1', code: 'pro', name: 'Pro', description: 'For teams', active: true, stripeProductId: 'prod_1' };
function priceRow(overrides: Partial<PriceRow>): PriceRow {
  return {
    id: 'r1',
    stripePriceId: 'price_m',
    lookupKey: 'pro_monthly',
    currency: 'usd',
    unitAmount: 9900,
    interval: 'month',
    intervalCount: 1,
    usageType: 'licensed',
    active: true,
    productId: 'p1',
    meterId: null,
    ...overrides,
  };
}
function inStep(): CatalogRows {
  return {
    meters: [METER],
    products: [PRODUCT],
    prices: [priceRow({}), priceRow({ id: 'r2', stripePriceId: 'price_a', lookupKey: 'pro_api_calls', unitAmount: 1, usageType: 'metered', meterId: 'm1' })],
  };
}
const lines = (plan: { changes: { where: string; action: string; object: string; key: string }[] }) => plan.changes.map((c) => `${c.action} ${c.object} ${c.key}`);

describe('planDatabase', () => {
  it('creates every row on a first run, prices pointing at the product and meter it creates', () => {
    const plan = planDatabase(CATALOG, stripeState(), { meters: [], products: [], prices: [] }, false);
    expect(lines(plan)).toEqual(['create meter api_calls', 'create product pro', 'create price pro_monthly', 'create price pro_api_calls']);
    expect(plan.createMeters).toEqual([{ eventName: 'api_calls', displayName: 'API calls', aggregation: 'sum', stripeMeterId: 'mtr_1' }]);
    expect(plan.createProducts).toEqual([{ code: 'pro', name: 'Pro', description: 'For teams', active: true, stripeProductId: 'prod_1' }]);
    expect(plan.createPrices.map((p) => [p.lookupKey, p.stripePriceId, p.product, p.meter])).toEqual([
      ['pro_monthly', 'price_m', { code: 'pro' }, null],
      ['pro_api_calls', 'price_a', { code: 'pro' }, { eventName: 'api_calls' }],
    ]);
  });

  it('plans nothing when the rows match', () => {
    const plan = planDatabase(CATALOG, stripeState(), inStep(), false);
    expect(plan.changes).toEqual([]);
    expect([plan.updateMeters.size, plan.updateProducts.size, plan.updatePrices.size, plan.createPrices.length]).toEqual([0, 0, 0, 0]);
  });

  it("archives a replaced price, taking its lookup key, before its successor's row is created", () => {
    const state = stripeState({ prices: { pro_monthly: 'price_m2', pro_api_calls: 'price_a' }, archivedPriceIds: new Set(['price_m']) });
    const plan = planDatabase(CATALOG, state, inStep(), false);
    expect(lines(plan)).toEqual(['archive price pro_monthly', 'create price pro_monthly']);
    expect(plan.updatePrices.get('r1')).toEqual({ active: false, lookupKey: null });
    expect(plan.createPrices).toEqual([expect.objectContaining({ lookupKey: 'pro_monthly', stripePriceId: 'price_m2', product: { id: 'p1' }, meter: null })]);
  });

  it('describes and records changed fields, and archives a product Stripe archived', () => {
    const rows = inStep();
    rows.products.push({ id: 'p2', code: 'old', name: 'Old', description: null, active: true, stripeProductId: 'prod_old' });
    const renamed = structuredClone(CATALOG);
    renamed.products[0].name = 'Pro Plus';
    const plan = planDatabase(renamed, stripeState({ archivedProductIds: new Set(['prod_old']) }), rows, false);
    expect(plan.changes.map((c) => `${c.action} ${c.object} ${c.key}: ${c.detail}`)).toEqual(['update product pro: name Pro → Pro Plus', 'archive product old: prod_old']);
    expect(plan.updateProducts).toEqual(new Map([['p1', { name: 'Pro Plus' }], ['p2', { active: false }]]));
  });

  it('moves a price row to the meter the file names', () => {
    const rows = inStep();
    rows.prices[1].meterId = null;
    const plan = planDatabase(CATALOG, stripeState(), rows, false);
    expect(plan.changes.map((c) => c.detail)).toEqual(['meter → api_calls']);
    expect(plan.updatePrices.get('r2')).toEqual({ meter: { id: 'm1' } });
  });

  it('plans the same lines in a dry run but no rows, and says which Stripe ids the real run would create', () => {
    const state = stripeState({ products: { pro: null }, prices: { pro_monthly: null, pro_api_calls: 'price_a' } });
    const rows = inStep();
    rows.prices.shift();
    const plan = planDatabase(CATALOG, state, rows, true);
    expect(plan.changes.map((c) => `${c.action} ${c.object} ${c.key}: ${c.detail}`)).toEqual([
      'update product pro: stripeProductId → (created by this sync)',
      'create price pro_monthly: 9900 usd/month, (created by this sync)',
    ]);
    expect(plan.createPrices).toEqual([]);
  });

  it('leaves the rows it was given as they were', () => {
    const rows = inStep();
    const before = structuredClone(rows);
    planDatabase(CATALOG, stripeState({ archivedPriceIds: new Set(['price_m']), prices: { pro_monthly: 'price_m2', pro_api_calls: 'price_a' } }), rows, false);
    expect(rows).toEqual(before);
  });
});
