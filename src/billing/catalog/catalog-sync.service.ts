import type { EntityManager } from '@mikro-orm/postgresql';
import { idempotencyKey } from '../../stripe/idempotency';
import { publishDefinitionsChange } from '../entitlements/definitions-invalidation';
import type { MeterSnapshot, PriceSnapshot, ProductSnapshot, StripeGateway } from '../../stripe/stripe.gateway';
import { inTransactionOrDryRun, isOwned, OWNER_METADATA, type CatalogChange, type CatalogSyncOptions } from './catalog-change';
import type { CatalogDefinition, CatalogProductDefinition } from './catalog-file';
import { digest, money, planPrice, planProduct, termsOf } from './catalog-sync.plan';
import { FeatureSyncService } from './feature-sync.service';
import { LimitSyncService } from './limit-sync.service';
import { Meter } from './meter.entity';
import { Price, type PriceIntervalValue } from './price.entity';
import { Product } from './product.entity';
import { PriceMapImporter } from './price-map-importer';

export { isOwned, OWNER_METADATA };
export type { CatalogChange, CatalogSyncOptions, ChangeAction } from './catalog-change';

/** Stripe ids of the catalog after the sync; null for what a dry run would create. */
export interface CatalogStripeState {
  meters: Record<string, string | null>;
  products: Record<string, string | null>;
  prices: Record<string, string | null>;
  /** Owned Stripe products and prices that are (or, in a dry run, would be) archived. */
  archivedProductIds: Set<string>;
  archivedPriceIds: Set<string>;
}

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

    const codes = new Set(catalog.products.map((p) => p.code));
    for (const product of ownedProducts) {
      if (codes.has(product.metadata.tollgate_code ?? '')) continue;
      state.archivedProductIds.add(product.id);
      if (!product.active) continue;
      changes.push({ where: 'stripe', action: 'archive', object: 'product', key: product.metadata.tollgate_code ?? product.id, detail: `${product.id} (no longer in the catalog)` });
      if (!dryRun) {
        await gw.updateProduct({
          id: product.id,
          active: false,
          idempotencyKey: idempotencyKey('catalog.product.update', product.id, product.updatedAt?.getTime() ?? 0, digest({ active: false })),
        });
      }
    }

    // Owned prices that no lookup key of the file points at any more (removed from the file, or
    // replaced by a run that stopped before archiving them).
    for (const price of allPrices) {
      if (!isOwned(price) || current.has(price.id) || state.archivedPriceIds.has(price.id)) continue;
      state.archivedPriceIds.add(price.id);
      if (!price.active) continue;
      const key = price.lookupKey ?? price.id;
      changes.push({ where: 'stripe', action: 'archive', object: 'price', key, detail: `${price.id} (no longer in the catalog)` });
      if (!dryRun) {
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
   * Makes the database rows match the Stripe state: rows are matched by Stripe id, then by meter
   * event name, product code or lookup key. A replaced price keeps its row (subscriptions refer
   * to it), inactive and without its lookup key; its successor gets a new row.
   */
  async syncDatabase(em: EntityManager, catalog: CatalogDefinition, stripe: CatalogStripeState, options: CatalogSyncOptions = {}): Promise<CatalogChange[]> {
    const dryRun = !!options.dryRun;
    const run = async (tx: EntityManager): Promise<CatalogChange[]> => {
      const changes: CatalogChange[] = [];
      const meters = await tx.find(Meter, {});
      const products = await tx.find(Product, {});
      const prices: Price[] = await tx.find(Price, {}, { populate: ['product', 'meter'] });
      const newId = '(created by this sync)';

      const setFields = <T extends object>(row: T, values: Partial<T>): string[] => {
        const diffs: string[] = [];
        for (const [k, v] of Object.entries(values)) {
          if (v === undefined) continue;
          const before = (row as Record<string, unknown>)[k];
          if (before === v) continue;
          diffs.push(`${k} ${before ?? 'null'} → ${v ?? 'null'}`);
          (row as Record<string, unknown>)[k] = v;
        }
        return diffs;
      };

      const meterRows = new Map<string, Meter>();
      const creates: Array<() => void> = [];
      for (const def of catalog.meters) {
        const stripeId = stripe.meters[def.eventName];
        const row = meters.find((m) => m.eventName === def.eventName);
        const values = { displayName: def.displayName, aggregation: def.aggregation ?? 'sum', stripeMeterId: stripeId ?? undefined };
        if (!row) {
          changes.push({ where: 'database', action: 'create', object: 'meter', key: def.eventName, detail: stripeId ?? newId });
          if (!dryRun) meterRows.set(def.eventName, tx.create(Meter, { eventName: def.eventName, ...values }));
          continue;
        }
        meterRows.set(def.eventName, row);
        const diffs = setFields(row, values);
        if (diffs.length) changes.push({ where: 'database', action: 'update', object: 'meter', key: def.eventName, detail: diffs.join(', ') });
      }

      const productRows = new Map<string, Product>();
      for (const def of catalog.products) {
        const stripeId = stripe.products[def.code];
        const row = products.find((p) => p.code === def.code) ?? (stripeId ? products.find((p) => p.stripeProductId === stripeId) : undefined);
        const values = { code: def.code, name: def.name, description: def.description ?? null, active: def.active ?? true, stripeProductId: stripeId ?? undefined };
        if (!row) {
          changes.push({ where: 'database', action: 'create', object: 'product', key: def.code, detail: stripeId ?? newId });
          if (!dryRun) productRows.set(def.code, tx.create(Product, values));
          continue;
        }
        productRows.set(def.code, row);
        const diffs = setFields(row, values);
        if (stripeId === null && dryRun) diffs.push(`stripeProductId → ${newId}`);
        if (diffs.length) changes.push({ where: 'database', action: 'update', object: 'product', key: def.code, detail: diffs.join(', ') });
      }

      for (const product of products) {
        if (!product.stripeProductId || !stripe.archivedProductIds.has(product.stripeProductId) || !product.active) continue;
        product.active = false;
        changes.push({ where: 'database', action: 'archive', object: 'product', key: product.code, detail: product.stripeProductId });
      }

      const claimed = new Set(catalog.products.flatMap((p) => p.prices.map((x) => x.lookupKey)).filter((k) => stripe.prices[k] !== undefined));
      // Archived prices first: a replaced price gives its lookup key up before its successor's
      // row takes it (the column is unique).
      for (const price of prices) {
        if (!price.stripePriceId || !stripe.archivedPriceIds.has(price.stripePriceId)) continue;
        const values: Partial<Price> = { active: false };
        const key = price.lookupKey ?? price.stripePriceId;
        if (price.lookupKey && claimed.has(price.lookupKey) && stripe.prices[price.lookupKey] !== price.stripePriceId) values.lookupKey = null;
        const diffs = setFields(price, values);
        if (diffs.length) changes.push({ where: 'database', action: 'archive', object: 'price', key, detail: price.stripePriceId });
      }

      for (const def of catalog.products) {
        for (const p of def.prices) {
          const stripeId = stripe.prices[p.lookupKey];
          if (stripeId === undefined) continue; // a conflict: left alone in Stripe, so here too
          let row = stripeId ? prices.find((x) => x.stripePriceId === stripeId) : undefined;
          const byKey = prices.find((x) => x.lookupKey === p.lookupKey);
          if (!row && byKey) {
            if (!byKey.stripePriceId) row = byKey;
            else if (byKey.lookupKey && byKey.stripePriceId !== stripeId) {
              // The lookup key moved to another Stripe price: this row stays for its subscriptions.
              setFields(byKey, { active: false, lookupKey: null });
              changes.push({ where: 'database', action: 'archive', object: 'price', key: p.lookupKey, detail: `${byKey.stripePriceId} (replaced)` });
            }
          }
          const values = {
            lookupKey: p.lookupKey,
            currency: p.currency,
            unitAmount: p.unitAmount,
            interval: (p.interval ?? null) as PriceIntervalValue | null,
            intervalCount: p.intervalCount ?? 1,
            usageType: p.usageType ?? ('licensed' as const),
            active: true,
            stripePriceId: stripeId ?? undefined,
          };
          if (!row) {
            changes.push({ where: 'database', action: 'create', object: 'price', key: p.lookupKey, detail: `${money(p)}, ${stripeId ?? newId}` });
            if (!dryRun) {
              const product = productRows.get(def.code)!;
              const meter = p.meter ? meterRows.get(p.meter) ?? null : null;
              creates.push(() => tx.create(Price, { ...values, product, meter }));
            }
            continue;
          }
          const diffs = setFields(row, values);
          if (stripeId === null && dryRun) diffs.push(`stripePriceId → ${newId}`);
          const product = productRows.get(def.code);
          if (product && row.product.id !== product.id) {
            diffs.push(`product → ${def.code}`);
            row.product = tx.getReference(Product, product.id, { wrapped: true });
          }
          const meter = p.meter ? meterRows.get(p.meter) : undefined;
          if ((row.meter?.id ?? null) !== (meter?.id ?? null)) {
            diffs.push(`meter → ${p.meter ?? 'none'}`);
            row.meter = meter ? tx.getReference(Meter, meter.id, { wrapped: true }) : null;
          }
          if (diffs.length) changes.push({ where: 'database', action: 'update', object: 'price', key: p.lookupKey, detail: diffs.join(', ') });
        }
      }

      if (!dryRun) {
        await tx.flush();
        for (const create of creates) create();
        await tx.flush();
      }
      return changes;
    };
    return inTransactionOrDryRun(em, dryRun, run);
  }

  /** See PriceMapImporter. */
  importPriceMap(priceMap: Record<string, string>, options: CatalogSyncOptions = {}): Promise<CatalogChange[]> {
    if (!this.em) throw new Error('importPriceMap needs a database');
    return new PriceMapImporter(this.gateway, this.em).import(priceMap, options);
  }
}
