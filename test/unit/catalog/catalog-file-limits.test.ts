import { catalogSchema } from '../../../src/billing/catalog/catalog-file';

const price = { lookupKey: 'x_monthly', currency: 'usd', unitAmount: 100, interval: 'month' };
const meters = [{ eventName: 'api_calls', displayName: 'API calls' }];

describe('catalog file: plan limits', () => {
  it('reads the limits of each plan (per billing period by default), none when a plan lists none', () => {
    const parsed = catalogSchema.parse({
      meters,
      products: [
        { code: 'pro', name: 'Pro', prices: [price], limits: [{ meter: 'api_calls', limit: 100, kind: 'hard' }] },
        { code: 'starter', name: 'Starter', prices: [{ ...price, lookupKey: 'y_monthly' }] },
      ],
    });
    expect(parsed.products.map((p) => p.limits)).toEqual([[{ meter: 'api_calls', limit: 100, period: 'billing_period', kind: 'hard' }], []]);
  });

  it('refuses a limit on an unknown meter, two limits on one meter, and a kind or limit that means nothing', () => {
    const issues = (limits: unknown[]) => {
      const parsed = catalogSchema.safeParse({ meters, products: [{ code: 'pro', name: 'Pro', prices: [price], limits }] });
      expect(parsed.success).toBe(false);
      return parsed.error!.issues.map((i) => i.message);
    };
    expect(issues([{ meter: 'seats', limit: 5, kind: 'hard' }])).toEqual(['plan "pro" limits meter "seats", which is not in meters']);
    expect(issues([{ meter: 'api_calls', limit: 5, kind: 'hard' }, { meter: 'api_calls', limit: 9, kind: 'soft' }])).toEqual(['plan "pro" limits meter "api_calls" twice']);
    expect(issues([{ meter: 'api_calls', limit: 5, kind: 'strict' }])).toHaveLength(1);
    expect(issues([{ meter: 'api_calls', limit: -1, kind: 'hard' }])).toHaveLength(1);
    expect(issues([{ meter: 'api_calls', limit: 5, kind: 'hard', period: 'day' }])).toHaveLength(1);
  });
});
