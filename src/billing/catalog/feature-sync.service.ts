import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { idempotencyKey } from '../../stripe/idempotency';
import type { ProductFeatureSnapshot, StripeGateway } from '../../stripe/stripe.gateway';
import { EntitlementService } from '../entitlements/entitlement.service';
import { PlanFeature } from '../entitlements/plan-feature.entity';
import type { CatalogDefinition } from './catalog-file';
import type { CatalogChange, CatalogSyncOptions } from './catalog-sync.service';
import { FEATURE_OWNER_METADATA, planFeatureSync, type FeatureStep } from './feature-sync.planner';
import { Product } from './product.entity';

function toChange(step: FeatureStep): CatalogChange {
  switch (step.kind) {
    case 'create-feature':
      return { where: 'stripe', action: 'create', object: 'feature', key: step.lookupKey, detail: step.name };
    case 'update-feature':
      return { where: 'stripe', action: step.active === false ? 'archive' : 'update', object: 'feature', key: step.lookupKey, detail: step.detail };
    case 'attach':
      return { where: 'stripe', action: 'create', object: 'product feature', key: `${step.productCode}/${step.lookupKey}`, detail: step.productId ?? '(new product)' };
    case 'detach':
      return { where: 'stripe', action: 'detach', object: 'product feature', key: `${step.productCode}/${step.lookupKey}`, detail: `${step.productFeatureId} (no longer in the plan)` };
    case 'conflict':
      return { where: 'stripe', action: 'conflict', object: 'feature', key: step.lookupKey, detail: step.detail };
  }
}

/**
 * The features half of the catalog sync (Stripe Entitlements): plans the steps with
 * `planFeatureSync` from Stripe's current state, runs them, then makes `plan_features` match and
 * recomputes every customer's entitlements from the catalog in the same transaction, so a
 * feature added to a plan reaches its existing subscribers at once instead of at their next
 * period (when Stripe would grant it).
 *
 * Feature creation is keyed by lookup key (a feature is never deleted, so the key names one
 * feature forever). Updates, attachments and detachments are planned afresh from Stripe's state
 * on every run, and carry a key of their run: a key derived from the catalog alone would replay
 * an earlier run's attachment whose product feature has been detached since.
 */
export class FeatureSyncService {
  constructor(
    private readonly gateway: StripeGateway,
    private readonly em: EntityManager | null,
  ) {}

  async sync(catalog: CatalogDefinition, productIds: Record<string, string | null>, options: CatalogSyncOptions = {}): Promise<CatalogChange[]> {
    const dryRun = !!options.dryRun;
    const gw = this.gateway;
    const features = await gw.listFeatures();
    const productFeatures: Record<string, ProductFeatureSnapshot[]> = {};
    for (const product of catalog.products) {
      const id = productIds[product.code];
      if (id) productFeatures[id] = await gw.listProductFeatures(id);
    }
    const steps = planFeatureSync({ catalog, productIds, features, productFeatures });
    const changes = steps.map(toChange);

    // Where each plan's features stand in Stripe once the steps ran: lookup key → ids.
    const featureIds = new Map<string, string | null>(features.map((f) => [f.lookupKey, f.id]));
    const attachedIds = new Map<string, string | null>();
    for (const [productId, list] of Object.entries(productFeatures)) for (const pf of list) attachedIds.set(`${productId}/${pf.feature.lookupKey}`, pf.id);
    const conflicts = new Set(steps.filter((s) => s.kind === 'conflict').map((s) => s.lookupKey));

    const run = randomUUID();
    for (const step of steps) {
      if (step.kind === 'create-feature') {
        featureIds.set(step.lookupKey, null);
        if (dryRun) continue;
        const created = await gw.createFeature({
          name: step.name,
          lookupKey: step.lookupKey,
          metadata: { ...FEATURE_OWNER_METADATA },
          idempotencyKey: idempotencyKey('catalog.feature.create', step.lookupKey),
        });
        featureIds.set(step.lookupKey, created.id);
      } else if (step.kind === 'update-feature' && !dryRun) {
        await gw.updateFeature({ id: step.featureId, name: step.name, active: step.active, idempotencyKey: idempotencyKey('catalog.feature.update', step.featureId, run) });
      } else if (step.kind === 'attach') {
        const productId = step.productId ?? productIds[step.productCode] ?? null;
        const featureId = featureIds.get(step.lookupKey) ?? null;
        if (dryRun || !productId || !featureId) {
          if (productId) attachedIds.set(`${productId}/${step.lookupKey}`, null);
          continue;
        }
        const pf = await gw.attachProductFeature({ productId, featureId, idempotencyKey: idempotencyKey('catalog.product_feature.attach', productId, featureId, run) });
        attachedIds.set(`${productId}/${step.lookupKey}`, pf.id);
      } else if (step.kind === 'detach') {
        attachedIds.delete(`${step.productId}/${step.lookupKey}`);
        if (!dryRun) await gw.detachProductFeature({ productId: step.productId, productFeatureId: step.productFeatureId });
      }
    }

    if (this.em) changes.push(...(await this.syncDatabase(this.em, catalog, productIds, featureIds, attachedIds, conflicts, dryRun)));
    return changes;
  }

  /** Makes `plan_features` of the catalog's plans match the file, then recomputes every customer's entitlements. */
  private async syncDatabase(
    em: EntityManager,
    catalog: CatalogDefinition,
    productIds: Record<string, string | null>,
    featureIds: Map<string, string | null>,
    attachedIds: Map<string, string | null>,
    conflicts: Set<string>,
    dryRun: boolean,
  ): Promise<CatalogChange[]> {
    const work = async (tx: EntityManager): Promise<CatalogChange[]> => {
      const changes: CatalogChange[] = [];
      const entitlements = new EntitlementService(tx);
      if (!dryRun) await entitlements.lockCatalog();
      const products = await tx.find(Product, { code: { $in: catalog.products.map((p) => p.code) } });
      const rows = await tx.find(PlanFeature, { product: { $in: products.map((p) => p.id) } });
      for (const def of catalog.products) {
        const product = products.find((p) => p.code === def.code);
        const mine = product ? rows.filter((r) => r.product.id === product.id) : [];
        const productId = productIds[def.code] ?? null;
        for (const f of def.features) {
          if (conflicts.has(f.lookupKey)) continue;
          const key = `${def.code}/${f.lookupKey}`;
          const values = {
            name: f.name,
            stripeFeatureId: featureIds.get(f.lookupKey) ?? null,
            stripeProductFeatureId: productId ? attachedIds.get(`${productId}/${f.lookupKey}`) ?? null : null,
          };
          const row = mine.find((r) => r.lookupKey === f.lookupKey);
          if (!row) {
            changes.push({ where: 'database', action: 'create', object: 'product feature', key, detail: values.stripeProductFeatureId ?? '(created by this sync)' });
            if (!dryRun && product) tx.create(PlanFeature, { product, lookupKey: f.lookupKey, ...values });
            continue;
          }
          const diffs = (Object.keys(values) as (keyof typeof values)[]).filter((k) => row[k] !== values[k] && !(dryRun && values[k] === null));
          if (diffs.length) {
            changes.push({ where: 'database', action: 'update', object: 'product feature', key, detail: diffs.map((k) => `${k} → ${values[k] ?? 'null'}`).join(', ') });
            if (!dryRun) tx.assign(row, values);
          }
        }
        const listed = new Set(def.features.map((f) => f.lookupKey));
        for (const row of mine) {
          if (listed.has(row.lookupKey)) continue;
          changes.push({ where: 'database', action: 'detach', object: 'product feature', key: `${def.code}/${row.lookupKey}`, detail: 'no longer in the plan' });
          if (!dryRun) tx.remove(row);
        }
      }
      if (!dryRun) {
        await tx.flush();
        await entitlements.recomputeAll();
      }
      return changes;
    };
    return dryRun ? work(em.fork()) : em.transactional(work);
  }
}
