import type { CatalogDefinition } from '../../../src/billing/catalog/catalog-file';
import { planFeatureSync, type FeaturePlanInput } from '../../../src/billing/catalog/feature-sync.planner';
import type { FeatureSnapshot, ProductFeatureSnapshot } from '../../../src/stripe/stripe.gateway';

const owned = { tollgate_managed: 'true' };

function feature(lookupKey: string, overrides: Partial<FeatureSnapshot> = {}): FeatureSnapshot {
  return { id: `feat_${lookupKey}`, lookupKey, name: lookupKey.toUpperCase(), active: true, metadata: { ...owned }, ...overrides };
}

function attached(productId: string, f: FeatureSnapshot): ProductFeatureSnapshot {
  return { id: `prodft_${productId}_${f.lookupKey}`, productId, feature: f };
}

function catalog(plans: Record<string, string[]>): CatalogDefinition {
  return {
    meters: [],
    products: Object.entries(plans).map(([code, keys]) => ({
      code,
      name: code,
      prices: [{ lookupKey: `${code}_monthly`, currency: 'usd', unitAmount: 100, interval: 'month' as const }],
      features: keys.map((k) => ({ lookupKey: k, name: k.toUpperCase() })),
      limits: [],
    })),
  };
}

function plan(input: Partial<FeaturePlanInput> & { catalog: CatalogDefinition }) {
  return planFeatureSync({ productIds: { starter: 'prod_s', pro: 'prod_p' }, features: [], productFeatures: {}, ...input });
}

describe(planFeatureSync.name, () => {
  it('creates missing features once and attaches them to every plan that lists them', () => {
    const steps = plan({ catalog: catalog({ starter: ['reports'], pro: ['reports', 'sso'] }) });
    expect(steps).toEqual([
      { kind: 'create-feature', lookupKey: 'reports', name: 'REPORTS' },
      { kind: 'create-feature', lookupKey: 'sso', name: 'SSO' },
      { kind: 'attach', productCode: 'starter', productId: 'prod_s', lookupKey: 'reports', featureId: null },
      { kind: 'attach', productCode: 'pro', productId: 'prod_p', lookupKey: 'reports', featureId: null },
      { kind: 'attach', productCode: 'pro', productId: 'prod_p', lookupKey: 'sso', featureId: null },
    ]);
  });

  it('plans nothing when Stripe already matches the catalog', () => {
    const reports = feature('reports');
    const sso = feature('sso');
    const steps = plan({
      catalog: catalog({ starter: ['reports'], pro: ['reports', 'sso'] }),
      features: [reports, sso],
      productFeatures: { prod_s: [attached('prod_s', reports)], prod_p: [attached('prod_p', reports), attached('prod_p', sso)] },
    });
    expect(steps).toEqual([]);
  });

  it('detaches an owned feature a plan no longer lists, and archives it when no plan lists it', () => {
    const reports = feature('reports');
    const sso = feature('sso');
    const steps = plan({
      catalog: catalog({ starter: ['reports'], pro: ['reports'] }),
      features: [reports, sso],
      productFeatures: { prod_s: [attached('prod_s', reports)], prod_p: [attached('prod_p', reports), attached('prod_p', sso)] },
    });
    expect(steps).toEqual([
      { kind: 'update-feature', featureId: 'feat_sso', lookupKey: 'sso', active: false, detail: 'feat_sso archived (no plan lists it)' },
      { kind: 'detach', productCode: 'pro', productId: 'prod_p', productFeatureId: 'prodft_prod_p_sso', lookupKey: 'sso' },
    ]);
  });

  it('renames and restores owned features, and attaches existing ones by id', () => {
    const steps = plan({
      catalog: catalog({ pro: ['sso'] }),
      productIds: { pro: 'prod_p' },
      features: [feature('sso', { name: 'Old name', active: false })],
    });
    expect(steps).toEqual([
      { kind: 'update-feature', featureId: 'feat_sso', lookupKey: 'sso', name: 'SSO', active: true, detail: 'feat_sso: name "Old name" → "SSO", active again' },
      { kind: 'attach', productCode: 'pro', productId: 'prod_p', lookupKey: 'sso', featureId: 'feat_sso' },
    ]);
  });

  it('leaves features it does not own alone: a lookup key held by one is a conflict, and their attachments stay', () => {
    const foreign = feature('sso', { metadata: {} });
    const manual = feature('manual', { metadata: {} });
    const steps = plan({
      catalog: catalog({ pro: ['sso'] }),
      productIds: { pro: 'prod_p' },
      features: [foreign, manual],
      productFeatures: { prod_p: [attached('prod_p', manual)] },
    });
    expect(steps).toEqual([{ kind: 'conflict', lookupKey: 'sso', detail: 'lookup key held by feat_sso, which Tollgate does not manage; left alone' }]);
  });

  it('plans attachments to a product a dry run would create, without its id', () => {
    const steps = plan({ catalog: catalog({ pro: ['sso'] }), productIds: { pro: null }, features: [feature('sso')] });
    expect(steps).toEqual([{ kind: 'attach', productCode: 'pro', productId: null, lookupKey: 'sso', featureId: 'feat_sso' }]);
  });
});
