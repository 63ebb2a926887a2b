import { createHash } from 'node:crypto';
import type { PriceSnapshot, ProductSnapshot } from '../../stripe/stripe.gateway';
import type { CatalogChange } from './catalog-change';
import type { CatalogPriceDefinition, CatalogProductDefinition } from './catalog-file';

// The decisions of a catalog sync, as pure functions of the catalog file and what Stripe holds:
// no I/O here. CatalogSyncService reads Stripe, asks these what to do, and applies the answer.

export function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 24);
}

/** The immutable terms of a Stripe price, as the catalog file states them. */
export interface PriceTerms {
  productId: string | null;
  currency: string;
  unitAmount: number;
  recurring: { interval: string; intervalCount: number; usageType: string; meterId: string | null } | null;
}

export function termsOf(def: CatalogPriceDefinition, productId: string | null, meterId: string | null): PriceTerms {
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

export function describeTermChanges(price: PriceSnapshot, want: PriceTerms): string[] {
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

export function money(def: CatalogPriceDefinition): string {
  const per = def.interval ? `/${(def.intervalCount ?? 1) > 1 ? `${def.intervalCount} ` : ''}${def.interval}` : ' once';
  return `${def.unitAmount} ${def.currency}${per}${def.usageType === 'metered' ? ` per unit of ${def.meter}` : ''}`;
}

export type ProductUpdate = { name?: string; description?: string; active?: boolean };

/** What to do with a catalog product, given the owned Stripe products. */
export type ProductDecision =
  | { kind: 'create'; change: CatalogChange }
  | { kind: 'keep'; product: ProductSnapshot }
  | { kind: 'update'; product: ProductSnapshot; update: ProductUpdate; change: CatalogChange };

export function planProduct(def: CatalogProductDefinition, owned: ProductSnapshot[]): ProductDecision {
  const candidates = owned.filter((p) => p.metadata.tollgate_code === def.code);
  const found = candidates.find((p) => p.active) ?? candidates[0];
  const active = def.active ?? true;
  if (!found) return { kind: 'create', change: { where: 'stripe', action: 'create', object: 'product', key: def.code, detail: def.name } };
  const diffs: string[] = [];
  const update: ProductUpdate = {};
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
  if (!diffs.length) return { kind: 'keep', product: found };
  return {
    kind: 'update',
    product: found,
    update,
    change: { where: 'stripe', action: 'update', object: 'product', key: def.code, detail: `${found.id}: ${diffs.join(', ')}` },
  };
}

/** What to do with a catalog price, given the Stripe price holding its lookup key (if any). */
export type PriceDecision =
  | { kind: 'conflict'; change: CatalogChange }
  | { kind: 'create'; change: CatalogChange }
  | { kind: 'keep'; holder: PriceSnapshot }
  | { kind: 'reactivate'; holder: PriceSnapshot; change: CatalogChange }
  | { kind: 'replace'; holder: PriceSnapshot; change: CatalogChange };

export function planPrice(def: CatalogPriceDefinition, holder: PriceSnapshot | undefined, want: PriceTerms, isOwned: (p: PriceSnapshot) => boolean): PriceDecision {
  const key = def.lookupKey;
  if (!holder) return { kind: 'create', change: { where: 'stripe', action: 'create', object: 'price', key, detail: money(def) } };
  if (!isOwned(holder)) {
    return {
      kind: 'conflict',
      change: { where: 'stripe', action: 'conflict', object: 'price', key, detail: `lookup key held by ${holder.id}, which Tollgate does not manage; left alone` },
    };
  }
  const diffs = describeTermChanges(holder, want);
  if (diffs.length) {
    // Stripe prices are immutable: a replacement takes the lookup key over and the old one is archived.
    return { kind: 'replace', holder, change: { where: 'stripe', action: 'replace', object: 'price', key, detail: `${diffs.join(', ')}; archives ${holder.id}` } };
  }
  if (!holder.active) return { kind: 'reactivate', holder, change: { where: 'stripe', action: 'reactivate', object: 'price', key, detail: `${holder.id} (${money(def)})` } };
  return { kind: 'keep', holder };
}

/** Owned Stripe objects the catalog no longer uses: archived (never deleted: subscriptions may still use them). */
export interface ArchiveSweep {
  /** Active products to archive. */
  products: ProductSnapshot[];
  /** Active prices to archive. */
  prices: PriceSnapshot[];
  /** Every owned product and price that is archived after the sweep, already archived ones included. */
  archivedProductIds: Set<string>;
  archivedPriceIds: Set<string>;
  changes: CatalogChange[];
}

/**
 * The archive sweep of the Stripe step: owned products whose code the file no longer lists, and
 * owned prices that no lookup key of the file points at any more (removed from the file, or
 * replaced by a run that stopped before archiving them). `current` holds the ids of the prices
 * the file's lookup keys now name, `archivedPriceIds` those this run archives already.
 */
export function planArchiveSweep(
  catalogCodes: ReadonlySet<string>,
  ownedProducts: readonly ProductSnapshot[],
  prices: readonly PriceSnapshot[],
  current: ReadonlySet<string>,
  archivedPriceIds: ReadonlySet<string>,
  isOwned: (p: PriceSnapshot) => boolean,
): ArchiveSweep {
  const sweep: ArchiveSweep = { products: [], prices: [], archivedProductIds: new Set(), archivedPriceIds: new Set(archivedPriceIds), changes: [] };
  for (const product of ownedProducts) {
    if (catalogCodes.has(product.metadata.tollgate_code ?? '')) continue;
    sweep.archivedProductIds.add(product.id);
    if (!product.active) continue;
    sweep.products.push(product);
    sweep.changes.push({ where: 'stripe', action: 'archive', object: 'product', key: product.metadata.tollgate_code ?? product.id, detail: `${product.id} (no longer in the catalog)` });
  }
  for (const price of prices) {
    if (!isOwned(price) || current.has(price.id) || sweep.archivedPriceIds.has(price.id)) continue;
    sweep.archivedPriceIds.add(price.id);
    if (!price.active) continue;
    sweep.prices.push(price);
    sweep.changes.push({ where: 'stripe', action: 'archive', object: 'price', key: price.lookupKey ?? price.id, detail: `${price.id} (no longer in the catalog)` });
  }
  return sweep;
}
