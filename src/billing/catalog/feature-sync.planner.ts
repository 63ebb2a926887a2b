import type { FeatureSnapshot, ProductFeatureSnapshot } from '../../stripe/stripe.gateway';
import type { CatalogDefinition } from './catalog-file';

/** Metadata that marks Stripe features created from the catalog file; no other feature is ever changed. */
export const FEATURE_OWNER_METADATA = { tollgate_managed: 'true' } as const;

export function isOwnedFeature(feature: FeatureSnapshot): boolean {
  return feature.metadata.tollgate_managed === FEATURE_OWNER_METADATA.tollgate_managed;
}

/** What the catalog sync does to Stripe's features and product features, in order. */
export type FeatureStep =
  | { kind: 'create-feature'; lookupKey: string; name: string }
  | { kind: 'update-feature'; featureId: string; lookupKey: string; name?: string; active?: boolean; detail: string }
  /** `productId` and `featureId` are null for what this run creates first (always so in a dry run). */
  | { kind: 'attach'; productCode: string; productId: string | null; lookupKey: string; featureId: string | null }
  | { kind: 'detach'; productCode: string; productId: string; productFeatureId: string; lookupKey: string }
  | { kind: 'conflict'; lookupKey: string; detail: string };

export interface FeaturePlanInput {
  catalog: CatalogDefinition;
  /** Stripe product id per plan code after the product sync; null for one a dry run would create. */
  productIds: Record<string, string | null>;
  /** Every feature of the Stripe account. */
  features: FeatureSnapshot[];
  /** The product features attached to each Stripe product of the catalog, by product id. */
  productFeatures: Record<string, ProductFeatureSnapshot[]>;
}

/**
 * The steps that make Stripe's features match the catalog, from Stripe's current state alone
 * (no I/O): a missing feature is created; an owned one whose name changed is renamed; an owned
 * one archived meanwhile is restored; an owned one no plan lists any more is archived (Stripe
 * features cannot be deleted). Each plan gets the product features it lists, and loses the owned
 * features it no longer lists. A lookup key held by a feature Tollgate does not own is a
 * conflict and left alone, together with its attachments. Running the steps and planning again
 * gives no steps.
 */
export function planFeatureSync(input: FeaturePlanInput): FeatureStep[] {
  const steps: FeatureStep[] = [];
  const wanted = new Map<string, string>();
  for (const product of input.catalog.products) for (const f of product.features) if (!wanted.has(f.lookupKey)) wanted.set(f.lookupKey, f.name);

  const byKey = new Map(input.features.map((f) => [f.lookupKey, f]));
  const usable = new Map<string, string | null>();
  for (const [lookupKey, name] of wanted) {
    const holder = byKey.get(lookupKey);
    if (!holder) {
      steps.push({ kind: 'create-feature', lookupKey, name });
      usable.set(lookupKey, null);
      continue;
    }
    if (!isOwnedFeature(holder)) {
      steps.push({ kind: 'conflict', lookupKey, detail: `lookup key held by ${holder.id}, which Tollgate does not manage; left alone` });
      continue;
    }
    usable.set(lookupKey, holder.id);
    const diffs: string[] = [];
    const update: { name?: string; active?: boolean } = {};
    if (holder.name !== name) {
      diffs.push(`name "${holder.name}" → "${name}"`);
      update.name = name;
    }
    if (!holder.active) {
      diffs.push('active again');
      update.active = true;
    }
    if (diffs.length) steps.push({ kind: 'update-feature', featureId: holder.id, lookupKey, ...update, detail: `${holder.id}: ${diffs.join(', ')}` });
  }
  for (const feature of input.features) {
    if (!isOwnedFeature(feature) || wanted.has(feature.lookupKey) || !feature.active) continue;
    steps.push({ kind: 'update-feature', featureId: feature.id, lookupKey: feature.lookupKey, active: false, detail: `${feature.id} archived (no plan lists it)` });
  }

  for (const product of input.catalog.products) {
    const productId = input.productIds[product.code] ?? null;
    const attached = productId ? input.productFeatures[productId] ?? [] : [];
    const listed = new Set(product.features.map((f) => f.lookupKey));
    for (const lookupKey of listed) {
      if (!usable.has(lookupKey)) continue;
      if (attached.some((pf) => pf.feature.lookupKey === lookupKey)) continue;
      steps.push({ kind: 'attach', productCode: product.code, productId, lookupKey, featureId: usable.get(lookupKey) ?? null });
    }
    for (const pf of attached) {
      if (!isOwnedFeature(pf.feature) || listed.has(pf.feature.lookupKey)) continue;
      steps.push({ kind: 'detach', productCode: product.code, productId: productId!, productFeatureId: pf.id, lookupKey: pf.feature.lookupKey });
    }
  }
  return steps;
}
