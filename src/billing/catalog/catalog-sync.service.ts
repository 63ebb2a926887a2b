import { createHash } from 'node:crypto';
import { FlushMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { idempotencyKey } from '../../stripe/idempotency';
import type { MeterSnapshot, PriceSnapshot, ProductSnapshot, StripeGateway } from '../../stripe/stripe.gateway';
import type { CatalogDefinition, CatalogPriceDefinition, CatalogProductDefinition } from './catalog-file';
import { FeatureSyncService } from './feature-sync.service';
import { Meter } from './meter.entity';
import { Price, type PriceIntervalValue } from './price.entity';
import { Product } from './product.entity';

/** Metadata that marks Stripe objects created from the catalog file; nothing without it is ever changed. */
export const OWNER_METADATA = { tollgate_managed: 'true' } as const;

export type ChangeAction = 'create' | 'update' | 'replace' | 'reactivate' | 'archive' | 'import' | 'conflict' | 'detach';

/** One line of the plan: what changes where. */
export interface CatalogChange {
  where: 'stripe' | 'database';
  action: ChangeAction;
  object: 'meter' | 'product' | 'price' | 'feature' | 'product feature';
  /** Meter event name, product code, price or feature lookup key, or `plan/feature` for a product feature. */
  key: string;
  detail: string;
}

export interface CatalogSyncOptions {
  /** Compute and return the plan; write nothing to Stripe or the database. */
  dryRun?: boolean;
}

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

export function isOwned(object: { metadata: Record<string, string> }): boolean {
  return object.metadata.tollgate_managed === OWNER_METADATA.tollgate_managed;
}

function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 24);
}

/** The immutable terms of a Stripe price, as the catalog file states them. */
interface PriceTerms {
  productId: string | null;
  currency: string;
  unitAmount: number;
  recurring: { interval: string; intervalCount: number; usageType: string; meterId: string | null } | null;
}

function termsOf(def: CatalogPriceDefinition, productId: string | null, meterId: string | null): PriceTerms {
  return {
    productId,
    currency: def.currency,
    unitAmount: def.unitAmount,
    recurring: def.interval
      ? {
          interval: def.interval,
          intervalCount: def.intervalCount ?? 1,
          usageType: def.usageType ?? 'licensed',
          meterId: def.usageType === 'metered' ? meterId : null,
        }
      : null,
  };
}

function describeTermChanges(price: PriceSnapshot, want: PriceTerms): string[] {
  const diffs: string[] = [];
  if (price.productId !== want.productId) diffs.push(`product ${price.productId} → ${want.productId ?? '(new)'}`);
  if (price.currency !== want.currency) diffs.push(`currency ${price.currency} → ${want.currency}`);
  if (price.unitAmount !== want.unitAmount) diffs.push(`unit amount ${price.unitAmount ?? 'none'} → ${want.unitAmount}`);
  const r = price.recurring;
  const w = want.recurring;
  const interval = (x: { interval: string; intervalCount: number } | null) => (x ? `${x.intervalCount > 1 ? `${x.intervalCount} ` : ''}${x.interval}` : 'one-time');
  if (interval(r) !== interval(w)) diffs.push(`interval ${interval(r)} → ${interval(w)}`);
  if ((r?.usageType ?? null) !== (w?.usageType ?? null) && r && w) diffs.push(`usage ${r.usageType} → ${w.usageType}`);
  if (r && w && w.usageType === 'metered' && r.meterId !== w.meterId) diffs.push(`meter ${r.meterId ?? 'none'} → ${w.meterId ?? '(new)'}`);
  return diffs;
}

function money(def: CatalogPriceDefinition): string {
  const per = def.interval ? `/${(def.intervalCount ?? 1) > 1 ? `${def.intervalCount} ` : ''}${def.interval}` : ' once';
  return `${def.unitAmount} ${def.currency}${per}${def.usageType === 'metered' ? ` per unit of ${def.meter}` : ''}`;
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
        if (holder && !isOwned(holder)) {
          changes.push({
            where: 'stripe',
            action: 'conflict',
            object: 'price',
            key: p.lookupKey,
            detail: `lookup key held by ${holder.id}, which Tollgate does not manage; left alone`,
          });
          continue;
        }
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

        if (!holder) {
          changes.push({ where: 'stripe', action: 'create', object: 'price', key: p.lookupKey, detail: money(p) });
          state.prices[p.lookupKey] = dryRun ? null : await create(idempotencyKey('catalog.price.create', p.lookupKey, digest(want)), false);
        } else {
          const diffs = describeTermChanges(holder, want);
          if (diffs.length === 0) {
            state.prices[p.lookupKey] = holder.id;
            if (!holder.active) {
              changes.push({ where: 'stripe', action: 'reactivate', object: 'price', key: p.lookupKey, detail: `${holder.id} (${money(p)})` });
              if (!dryRun) {
                await gw.updatePrice({ id: holder.id, active: true, idempotencyKey: idempotencyKey('catalog.price.activate', holder.id, catalogDigest) });
              }
            }
          } else {
            // Stripe prices are immutable: the replacement takes the lookup key over first, so
            // the key always names a price, then the old price is archived.
            changes.push({ where: 'stripe', action: 'replace', object: 'price', key: p.lookupKey, detail: `${diffs.join(', ')}; archives ${holder.id}` });
            state.prices[p.lookupKey] = dryRun
              ? null
              : await create(idempotencyKey('catalog.price.create', p.lookupKey, 'replaces', holder.id, digest(want)), true);
            if (holder.active && !dryRun) {
              await gw.updatePrice({ id: holder.id, active: false, idempotencyKey: idempotencyKey('catalog.price.archive', holder.id) });
            }
            state.archivedPriceIds.add(holder.id);
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
    const candidates = owned.filter((p) => p.metadata.tollgate_code === def.code);
    const found = candidates.find((p) => p.active) ?? candidates[0];
    const active = def.active ?? true;
    if (!found) {
      changes.push({ where: 'stripe', action: 'create', object: 'product', key: def.code, detail: def.name });
      if (dryRun) return null;
      const created = await this.gateway.createProduct({
        name: def.name,
        description: def.description,
        active,
        metadata: { ...OWNER_METADATA, tollgate_code: def.code },
        idempotencyKey: idempotencyKey('catalog.product.create', def.code),
      });
      return created.id;
    }
    const diffs: string[] = [];
    const update: { name?: string; description?: string; active?: boolean } = {};
    if (found.name !== def.name) {
      diffs.push(`name "${found.name}" → "${def.name}"`);
      update.name = def.name;
    }
    if ((found.description ?? null) !== (def.description ?? null)) {
      diffs.push(def.description ? `description → "${def.description}"` : 'description removed');
      update.description = def.description ?? '';
    }
    if (found.active !== active) {
      diffs.push(active ? 'active again' : 'inactive');
      update.active = active;
    }
    if (diffs.length) {
      changes.push({ where: 'stripe', action: 'update', object: 'product', key: def.code, detail: `${found.id}: ${diffs.join(', ')}` });
      if (!dryRun) {
        // `updated` moves with every change, so the key is stable for retries of this update
        // and different for any later one.
        await this.gateway.updateProduct({
          id: found.id,
          ...update,
          idempotencyKey: idempotencyKey('catalog.product.update', found.id, found.updatedAt?.getTime() ?? 0, digest(update)),
        });
      }
    }
    return found.id;
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

  /**
   * Reads the prices of `STRIPE_PRODUCT_PRICE_MAP` (and their products) from Stripe into the
   * database, for teams whose catalog already lives in Stripe. Nothing is written to Stripe.
   */
  async importPriceMap(priceMap: Record<string, string>, options: CatalogSyncOptions = {}): Promise<CatalogChange[]> {
    const em = this.em;
    if (!em) throw new Error('importPriceMap needs a database');
    const dryRun = !!options.dryRun;
    const snapshots: Array<[string, PriceSnapshot]> = [];
    for (const [plan, priceId] of Object.entries(priceMap)) snapshots.push([plan, await this.gateway.retrievePrice(priceId)]);
    let stripeMeters: MeterSnapshot[] | null = null;

    const run = async (tx: EntityManager): Promise<CatalogChange[]> => {
      const changes: CatalogChange[] = [];
      for (const [plan, snapshot] of snapshots) {
        const recurring = snapshot.recurring;
        if (snapshot.unitAmount === null || (recurring && recurring.interval !== 'month' && recurring.interval !== 'year')) {
          changes.push({ where: 'database', action: 'conflict', object: 'price', key: plan, detail: `${snapshot.id}: only flat monthly, yearly or one-time prices are supported` });
          continue;
        }
        const stripeProduct = snapshot.product ?? null;
        let product = (await tx.findOne(Product, { stripeProductId: snapshot.productId })) ?? (await tx.findOne(Product, { code: plan }));
        if (product && product.stripeProductId && product.stripeProductId !== snapshot.productId) {
          changes.push({ where: 'database', action: 'conflict', object: 'product', key: plan, detail: `plan "${plan}" is already ${product.stripeProductId}, not ${snapshot.productId}` });
          continue;
        }
        const productValues = {
          name: stripeProduct?.name || plan,
          description: stripeProduct?.description ?? null,
          active: stripeProduct?.active ?? true,
          stripeProductId: snapshot.productId,
        };
        if (!product) {
          changes.push({ where: 'database', action: 'import', object: 'product', key: plan, detail: `${snapshot.productId} "${productValues.name}"` });
          product = tx.create(Product, { code: plan, ...productValues });
        } else {
          const diffs = Object.entries(productValues).filter(([k, v]) => (product as unknown as Record<string, unknown>)[k] !== v);
          if (diffs.length) {
            tx.assign(product, productValues);
            changes.push({ where: 'database', action: 'update', object: 'product', key: product.code, detail: diffs.map(([k]) => k).join(', ') });
          }
        }

        let meter: Meter | null = null;
        if (recurring?.meterId) {
          meter = await tx.findOne(Meter, { stripeMeterId: recurring.meterId });
          if (!meter) {
            stripeMeters ??= await this.gateway.listMeters();
            const m = stripeMeters.find((x) => x.id === recurring.meterId);
            if (m) {
              meter = (await tx.findOne(Meter, { eventName: m.eventName })) ?? tx.create(Meter, { eventName: m.eventName, displayName: m.displayName, aggregation: m.aggregation });
              meter.stripeMeterId = m.id;
              changes.push({ where: 'database', action: 'import', object: 'meter', key: m.eventName, detail: m.id });
            }
          }
        }
        const values = {
          lookupKey: snapshot.lookupKey,
          currency: snapshot.currency,
          unitAmount: snapshot.unitAmount,
          interval: (recurring?.interval ?? null) as PriceIntervalValue | null,
          intervalCount: recurring?.intervalCount ?? 1,
          usageType: recurring?.usageType ?? ('licensed' as const),
          active: snapshot.active,
          stripePriceId: snapshot.id,
        };
        let price = await tx.findOne(Price, { stripePriceId: snapshot.id });
        if (!price && snapshot.lookupKey) {
          const byKey = await tx.findOne(Price, { lookupKey: snapshot.lookupKey });
          if (byKey && !byKey.stripePriceId) price = byKey;
          else if (byKey) {
            changes.push({ where: 'database', action: 'conflict', object: 'price', key: plan, detail: `lookup key ${snapshot.lookupKey} belongs to ${byKey.stripePriceId}` });
            continue;
          }
        }
        if (!price) {
          changes.push({ where: 'database', action: 'import', object: 'price', key: plan, detail: `${snapshot.id} ${snapshot.unitAmount} ${snapshot.currency}${recurring ? `/${recurring.interval}` : ' once'}` });
          tx.create(Price, { ...values, product, meter });
        } else {
          const diffs = Object.entries(values).filter(([k, v]) => (price as unknown as Record<string, unknown>)[k] !== v);
          if (diffs.length) {
            tx.assign(price, { ...values, product, meter });
            changes.push({ where: 'database', action: 'update', object: 'price', key: plan, detail: diffs.map(([k]) => k).join(', ') });
          }
        }
      }
      if (!dryRun) await tx.flush();
      return changes;
    };
    return inTransactionOrDryRun(em, dryRun, run);
  }
}

/**
 * Runs `work` in one transaction, or for a dry run on a fork that never flushes, so the changes
 * it makes to entities stay in memory and are dropped.
 */
async function inTransactionOrDryRun<T>(em: EntityManager, dryRun: boolean, work: (tx: EntityManager) => Promise<T>): Promise<T> {
  if (!dryRun) return em.transactional(work);
  const fork = em.fork({ flushMode: FlushMode.COMMIT });
  try {
    return await work(fork);
  } finally {
    fork.clear();
  }
}
