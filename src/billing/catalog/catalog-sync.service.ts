import type { EntityManager } from '@mikro-orm/postgresql';
import { idempotencyKey } from '../../stripe/idempotency';
import { publishDefinitionsChange } from '../entitlements/definitions-invalidation';
import type { MeterSnapshot, PriceSnapshot, ProductSnapshot, StripeGateway } from '../../stripe/stripe.gateway';
import { isOwned, OWNER_METADATA, type CatalogChange, type CatalogStripeState, type CatalogSyncOptions } from './catalog-change';
import { applyDatabasePlan, readCatalogRows } from './catalog-database.apply';
import { planDatabase } from './catalog-database.plan';
import type { CatalogDefinition, CatalogProductDefinition } from './catalog-file';
import { digest, planArchiveSweep, planPrice, planProduct, termsOf } from './catalog-sync.plan';
import { FeatureSyncService } from './feature-sync.service';
import { LimitSyncService } from './limit-sync.service';
import { PriceMapImporter } from './price-map-importer';

export { isOwned, OWNER_METADATA };
export type { CatalogChange, CatalogStripeState, CatalogSyncOptions, ChangeAction } from './catalog-change';

export interface CatalogSyncResult {
  dryRun: boolean;
  /** Every change made (or planned), conflicts included. */
  changes: CatalogChange[];
  /** Entries left alone because they collide with Stripe objects Tollgate does not own. */
  conflicts: CatalogChange[];
  stripe: CatalogStripeState;
}

/**
 * Makes Stripe and the database match the catalog file.
 *
 * Stripe first: meters, products (matched by `metadata.tollgate_code`) and prices (matched by
 * lookup key) are created when missing; a product whose name, description or active flag changed
 * is updated; a price whose terms changed is replaced, because Stripe prices are immutable: a new
 * price takes the lookup key over (`transfer_lookup_key`) and the old one is archived. Owned
 * products and prices that the file no longer lists are archived, never deleted, since
 * subscriptions may still use them. Objects without `tollgate_managed=true` are never changed.
 *
 * Then the database is made to match the resulting Stripe state. The database step derives
 * everything from Stripe's state rather than from what this run did, so a run that failed
 * half-way is completed by the next one. Every Stripe write carries a key derived from the
 * catalog and the object it changes, so a repeated request never creates a second object.
 */
export class CatalogSyncService {
  constructor(
    private readonly gateway: StripeGateway,
    /** Null when only Stripe is synced (the local-mode start seeds the database itself). */
    private readonly em: EntityManager | null,
  ) {}

  async sync(catalog: CatalogDefinition, options: CatalogSyncOptions = {}): Promise<CatalogSyncResult> {
    const stripe = await this.syncStripe(catalog, options);
    if (this.em) stripe.changes.push(...(await this.syncDatabase(this.em, catalog, stripe.stripe, options)));
    stripe.changes.push(...(await new FeatureSyncService(this.gateway, this.em).sync(catalog, stripe.stripe.products, options)));
    if (this.em) stripe.changes.push(...(await new LimitSyncService(this.em).sync(catalog, options)));
    // Every instance drops the features and limits it keeps per customer, whichever process ran the sync.
    if (this.em && !options.dryRun) await publishDefinitionsChange(this.em, null);
    return { dryRun: !!options.dryRun, changes: stripe.changes, conflicts: stripe.changes.filter((c) => c.action === 'conflict'), stripe: stripe.stripe };
  }

  /** The Stripe half of `sync`. */
  async syncStripe(catalog: CatalogDefinition, options: CatalogSyncOptions = {}): Promise<{ changes: CatalogChange[]; stripe: CatalogStripeState }> {
    const dryRun = !!options.dryRun;
    const gw = this.gateway;
    const changes: CatalogChange[] = [];
    const state: CatalogStripeState = { meters: {}, products: {}, prices: {}, archivedProductIds: new Set(), archivedPriceIds: new Set() };
    // Keys of state-setting writes include the catalog's digest: a retry of the same run reuses
    // them, while a later catalog that flips the same flag back gets a fresh key.
    const catalogDigest = digest(catalog);

    const meters = await gw.listMeters();
    for (const def of catalog.meters) {
      const found = meters.find((m: MeterSnapshot) => m.eventName === def.eventName && m.status === 'active');
      if (found) {
        state.meters[def.eventName] = found.id;
        continue;
      }
      changes.push({ where: 'stripe', action: 'create', object: 'meter', key: def.eventName, detail: `${def.displayName} (${def.aggregation ?? 'sum'})` });
      state.meters[def.eventName] = dryRun
        ? null
        : (
            await gw.createMeter({
              eventName: def.eventName,
              displayName: def.displayName,
              aggregation: def.aggregation ?? 'sum',
              idempotencyKey: idempotencyKey('catalog.meter.create', def.eventName),
            })
          ).id;
    }

    const ownedProducts = (await gw.listProducts()).filter((p) => !p.deleted && isOwned(p));
    const lookupKeys = catalog.products.flatMap((p) => p.prices.map((x) => x.lookupKey));
    const pricesById = new Map<string, PriceSnapshot>();
    for (const price of await gw.listPrices({ lookupKeys })) pricesById.set(price.id, price);
    for (const product of ownedProducts) {
      for (const price of await gw.listPrices({ productId: product.id })) pricesById.set(price.id, price);
    }
    const allPrices = [...pricesById.values()];
    const current = new Set<string>();

    for (const def of catalog.products) {
      const productId = await this.syncProduct(def, ownedProducts, changes, dryRun);
      state.products[def.code] = productId;

      for (const p of def.prices) {
        const meterId = p.meter ? state.meters[p.meter] ?? null : null;
        const want = termsOf(p, productId, meterId);
        const holder = allPrices.find((x) => x.lookupKey === p.lookupKey);
        const decision = planPrice(p, holder, want, isOwned);
        if (decision.kind !== 'keep') changes.push(decision.change);
        if (decision.kind === 'conflict') continue;
        const metadata = { ...OWNER_METADATA, tollgate_code: def.code };
        const create = async (key: string, transfer: boolean) =>
          (
            await gw.createPrice({
              productId: productId!,
              currency: p.currency,
              unitAmount: p.unitAmount,
              lookupKey: p.lookupKey,
              transferLookupKey: transfer,
              recurring: p.interval
                ? { interval: p.interval, intervalCount: p.intervalCount ?? 1, usageType: p.usageType ?? 'licensed', meterId: meterId ?? undefined }
                : undefined,
              metadata,
              idempotencyKey: key,
            })
          ).id;

        switch (decision.kind) {
          case 'create':
            state.prices[p.lookupKey] = dryRun ? null : await create(idempotencyKey('catalog.price.create', p.lookupKey, digest(want)), false);
            break;
          case 'keep':
            state.prices[p.lookupKey] = decision.holder.id;
            break;
          case 'reactivate':
            state.prices[p.lookupKey] = decision.holder.id;
            if (!dryRun) {
              await gw.updatePrice({ id: decision.holder.id, active: true, idempotencyKey: idempotencyKey('catalog.price.activate', decision.holder.id, catalogDigest) });
            }
            break;
          case 'replace': {
            // The replacement takes the lookup key over first, so the key always names a price,
            // then the old price is archived.
            const old = decision.holder;
            state.prices[p.lookupKey] = dryRun ? null : await create(idempotencyKey('catalog.price.create', p.lookupKey, 'replaces', old.id, digest(want)), true);
            if (old.active && !dryRun) {
              await gw.updatePrice({ id: old.id, active: false, idempotencyKey: idempotencyKey('catalog.price.archive', old.id) });
            }
            state.archivedPriceIds.add(old.id);
            break;
          }
        }
        const id = state.prices[p.lookupKey];
        if (id) current.add(id);
      }
    }

    const sweep = planArchiveSweep(new Set(catalog.products.map((p) => p.code)), ownedProducts, allPrices, current, state.archivedPriceIds, isOwned);
    changes.push(...sweep.changes);
    state.archivedProductIds = sweep.archivedProductIds;
    state.archivedPriceIds = sweep.archivedPriceIds;
    if (!dryRun) {
      for (const product of sweep.products) {
        await gw.updateProduct({
          id: product.id,
          active: false,
          idempotencyKey: idempotencyKey('catalog.product.update', product.id, product.updatedAt?.getTime() ?? 0, digest({ active: false })),
        });
      }
      for (const price of sweep.prices) {
        await gw.updatePrice({ id: price.id, active: false, idempotencyKey: idempotencyKey('catalog.price.archive', price.id, catalogDigest) });
      }
    }
    return { changes, stripe: state };
  }

  private async syncProduct(def: CatalogProductDefinition, owned: ProductSnapshot[], changes: CatalogChange[], dryRun: boolean): Promise<string | null> {
    const decision = planProduct(def, owned);
    if (decision.kind === 'keep') return decision.product.id;
    changes.push(decision.change);
    if (decision.kind === 'create') {
      if (dryRun) return null;
      const created = await this.gateway.createProduct({
        name: def.name,
        description: def.description,
        active: def.active ?? true,
        metadata: { ...OWNER_METADATA, tollgate_code: def.code },
        idempotencyKey: idempotencyKey('catalog.product.create', def.code),
      });
      return created.id;
    }
    const { product, update } = decision;
    if (!dryRun) {
      // `updated` moves with every change, so the key is stable for retries of this update
      // and different for any later one.
      await this.gateway.updateProduct({
        id: product.id,
        ...update,
        idempotencyKey: idempotencyKey('catalog.product.update', product.id, product.updatedAt?.getTime() ?? 0, digest(update)),
      });
    }
    return product.id;
  }

  /**
   * Makes the database rows match the Stripe state (see planDatabase): reads the rows, plans,
   * and writes the plan in one transaction. A dry run reads and plans only.
   */
  async syncDatabase(em: EntityManager, catalog: CatalogDefinition, stripe: CatalogStripeState, options: CatalogSyncOptions = {}): Promise<CatalogChange[]> {
    if (options.dryRun) return planDatabase(catalog, stripe, await readCatalogRows(em.fork()).then((r) => r.rows), true).changes;
    return em.transactional(async (tx) => {
      const { rows, entities } = await readCatalogRows(tx);
      const plan = planDatabase(catalog, stripe, rows, false);
      await applyDatabasePlan(tx, plan, entities);
      return plan.changes;
    });
  }

  /** See PriceMapImporter. */
  importPriceMap(priceMap: Record<string, string>, options: CatalogSyncOptions = {}): Promise<CatalogChange[]> {
    if (!this.em) throw new Error('importPriceMap needs a database');
    return new PriceMapImporter(this.gateway, this.em).import(priceMap, options);
  }
}
