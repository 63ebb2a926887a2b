import { catalogSchema } from '../../../src/billing/catalog/catalog-file';

const price = { lookupKey: 'x_monthly', currency: 'usd', unitAmount: 100, interval: 'month' };

describe('catalog file: plan features', () => {
  it('reads the features of each plan, none when a plan lists none', () => {
    const parsed = catalogSchema.parse({
      products: [
        { code: 'starter', name: 'Starter', prices: [price], features: [{ lookupKey: 'reports', name: 'Reports' }] },
        { code: 'pro', name: 'Pro', prices: [{ ...price, lookupKey: 'y_monthly' }] },
      ],
    });
    expect(parsed.products.map((p) => p.features)).toEqual([[{ lookupKey: 'reports', name: 'Reports' }], []]);
  });

  it('refuses one lookup key with two names, and a key Stripe would refuse', () => {
    const twoNames = catalogSchema.safeParse({
      products: [
        { code: 'starter', name: 'Starter', prices: [price], features: [{ lookupKey: 'sso', name: 'SSO' }] },
        { code: 'pro', name: 'Pro', prices: [{ ...price, lookupKey: 'y_monthly' }], features: [{ lookupKey: 'sso', name: 'Single sign-on' }] },
      ],
    });
    expect(twoNames.success).toBe(false);
    expect(twoNames.error?.issues.map((i) => i.message)).toEqual(['feature "sso" has two names: "SSO" and "Single sign-on"']);

    const badKey = catalogSchema.safeParse({ products: [{ code: 'pro', name: 'Pro', prices: [price], features: [{ lookupKey: 'Not A Key', name: 'x' }] }] });
    expect(badKey.success).toBe(false);
  });
});
