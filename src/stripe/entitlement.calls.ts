import type Stripe from 'stripe';
import { BillingError, ErrorCode } from '../common/errors';
import { PAGINATION_LIMIT } from './stripe-call-policy';
import type { CallPolicy } from './stripe-call-policy';
import type { ActiveEntitlementSnapshot, FeatureSnapshot, ProductFeatureSnapshot } from './stripe.gateway';
import { toFeatureSnapshot } from './stripe.mappers';

/**
 * The Stripe calls of Entitlements: features, the features of products, and a customer's
 * active entitlements.
 */
export class EntitlementCalls {
  constructor(
    private readonly stripe: Stripe,
    private readonly call: CallPolicy,
  ) {}

  async listFeatures(): Promise<FeatureSnapshot[]> {
    const features = await this.call('entitlements.features.list', () =>
      this.stripe.entitlements.features.list({ limit: 100 }).autoPagingToArray({ limit: PAGINATION_LIMIT }),
    );
    return features.map(toFeatureSnapshot);
  }

  async createFeature(input: { name: string; lookupKey: string; metadata?: Record<string, string>; idempotencyKey: string }): Promise<FeatureSnapshot> {
    const feature = await this.call('entitlements.features.create', () =>
      this.stripe.entitlements.features.create(
        { name: input.name, lookup_key: input.lookupKey, ...(input.metadata ? { metadata: input.metadata } : {}) },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toFeatureSnapshot(feature);
  }

  async updateFeature(input: { id: string; name?: string; active?: boolean; idempotencyKey: string }): Promise<FeatureSnapshot> {
    const feature = await this.call(
      'entitlements.features.update',
      () =>
        this.stripe.entitlements.features.update(
          input.id,
          { ...(input.name !== undefined ? { name: input.name } : {}), ...(input.active !== undefined ? { active: input.active } : {}) },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Feature' },
    );
    return toFeatureSnapshot(feature);
  }

  async listProductFeatures(productId: string): Promise<ProductFeatureSnapshot[]> {
    const features = await this.call(
      'products.listFeatures',
      () => this.stripe.products.listFeatures(productId, { limit: 100 }).autoPagingToArray({ limit: PAGINATION_LIMIT }),
      { resource: 'Product' },
    );
    return features.map((pf) => ({ id: pf.id, productId, feature: toFeatureSnapshot(pf.entitlement_feature) }));
  }

  async attachProductFeature(input: { productId: string; featureId: string; idempotencyKey: string }): Promise<ProductFeatureSnapshot> {
    const pf = await this.call(
      'products.createFeature',
      () => this.stripe.products.createFeature(input.productId, { entitlement_feature: input.featureId }, { idempotencyKey: input.idempotencyKey }),
      { resource: 'Product' },
    );
    return { id: pf.id, productId: input.productId, feature: toFeatureSnapshot(pf.entitlement_feature) };
  }

  async detachProductFeature(input: { productId: string; productFeatureId: string }): Promise<void> {
    try {
      await this.call('products.deleteFeature', () => this.stripe.products.deleteFeature(input.productId, input.productFeatureId), { resource: 'Product feature' });
    } catch (error) {
      if (!(error instanceof BillingError && error.code === ErrorCode.NOT_FOUND)) throw error;
    }
  }

  async listActiveEntitlements(customerId: string): Promise<ActiveEntitlementSnapshot[]> {
    const entitlements = await this.call(
      'entitlements.activeEntitlements.list',
      () => this.stripe.entitlements.activeEntitlements.list({ customer: customerId, limit: 100 }).autoPagingToArray({ limit: PAGINATION_LIMIT }),
      { resource: 'Customer' },
    );
    return entitlements.map((e) => ({ id: e.id, featureId: typeof e.feature === 'string' ? e.feature : e.feature.id, lookupKey: e.lookup_key }));
  }
}
