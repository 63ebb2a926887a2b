import type { CatalogChange, CatalogStripeState } from './catalog-change';
import type { CatalogDefinition } from './catalog-file';
import { money } from './catalog-sync.plan';
import type { PriceIntervalValue, UsageTypeValue } from './price.entity';

// The database step of a catalog sync as a pure function: from the catalog file, the Stripe state
// the Stripe step ended with, and the rows as they are, which rows to create and which fields to
// change, with the plan's lines. CatalogSyncService reads the rows and applies the answer.

export interface MeterRow {
  id: string;
  eventName: string;
  displayName: string;
  aggregation: string;
  stripeMeterId: string | null;
}

export interface ProductRow {
  id: string;
  code: string;
  name: string;
  description: string | null;
  active: boolean;
  stripeProductId: string | null;
}

export interface PriceRow {
  id: string;
  stripePriceId: string | null;
  lookupKey: string | null;
  currency: string;
  unitAmount: number | null;
  interval: PriceIntervalValue | null;
  intervalCount: number;
  usageType: UsageTypeValue;
  active: boolean;
  productId: string;
  meterId: string | null;
}

export interface CatalogRows {
  meters: MeterRow[];
  products: ProductRow[];
  prices: PriceRow[];
}

/** A row that exists (its id), or one this plan creates (its product code or meter event name). */
export type ProductRef = { id: string } | { code: string };
export type MeterRef = { id: string } | { eventName: string };

type MeterValues = Omit<MeterRow, 'id'>;
type ProductValues = Omit<ProductRow, 'id'>;
type PriceValues = Omit<PriceRow, 'id' | 'productId' | 'meterId'>;

export interface PriceUpdate extends Partial<PriceValues> {
  product?: ProductRef;
  meter?: MeterRef | null;
}

export interface DatabasePlan {
  /** The plan's lines, in the order the decisions were made. */
  changes: CatalogChange[];
  createMeters: MeterValues[];
  createProducts: ProductValues[];
  /** Field changes of existing rows, by row id. */
  updateMeters: Map<string, Partial<MeterValues>>;
  updateProducts: Map<string, Partial<ProductValues>>;
  updatePrices: Map<string, PriceUpdate>;
  /** Created after the updates are written: an archived price gives up its lookup key first (the column is unique). */
  createPrices: (PriceValues & { product: ProductRef; meter: MeterRef | null })[];
}

const NEW_ID = '(created by this sync)';

function refId(ref: ProductRef | MeterRef): string {
  return 'id' in ref ? ref.id : `new:${'code' in ref ? ref.code : ref.eventName}`;
}

/**
 * Makes the rows match the Stripe state: rows are matched by Stripe id, then by meter event name,
 * product code or lookup key. A replaced price keeps its row (subscriptions refer to it),
 * inactive and without its lookup key; its successor gets a new row. A dry run plans the same
 * lines, and no rows (so prices of products it would create are planned without them).
 */
export function planDatabase(catalog: CatalogDefinition, stripe: CatalogStripeState, current: CatalogRows, dryRun: boolean): DatabasePlan {
  const plan: DatabasePlan = {
    changes: [],
    createMeters: [],
    createProducts: [],
    updateMeters: new Map(),
    updateProducts: new Map(),
    updatePrices: new Map(),
    createPrices: [],
  };
  // Working copies: a decision sees the fields earlier decisions of this plan changed.
  const meters = current.meters.map((r) => ({ ...r }));
  const products = current.products.map((r) => ({ ...r }));
  const prices = current.prices.map((r) => ({ ...r }));

  /** Sets the fields of `values` that differ on the working copy, records them as the row's update, and describes them. */
  const setFields = (updates: Map<string, object>, row: { id: string }, values: object): string[] => {
    const diffs: string[] = [];
    const target = row as Record<string, unknown>;
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) continue;
      const before = target[k];
      if (before === v) continue;
      diffs.push(`${k} ${String(before ?? 'null')} → ${String(v ?? 'null')}`);
      target[k] = v;
      updates.set(row.id, { ...updates.get(row.id), [k]: v });
    }
    return diffs;
  };

  const meterRefs = new Map<string, MeterRef>();
  for (const def of catalog.meters) {
    const stripeId = stripe.meters[def.eventName];
    const row = meters.find((m) => m.eventName === def.eventName);
    const values = { displayName: def.displayName, aggregation: def.aggregation ?? 'sum', stripeMeterId: stripeId ?? undefined };
    if (!row) {
      plan.changes.push({ where: 'database', action: 'create', object: 'meter', key: def.eventName, detail: stripeId ?? NEW_ID });
      if (!dryRun) {
        plan.createMeters.push({ eventName: def.eventName, ...values, stripeMeterId: stripeId ?? null });
        meterRefs.set(def.eventName, { eventName: def.eventName });
      }
      continue;
    }
    meterRefs.set(def.eventName, { id: row.id });
    const diffs = setFields(plan.updateMeters, row, values);
    if (diffs.length) plan.changes.push({ where: 'database', action: 'update', object: 'meter', key: def.eventName, detail: diffs.join(', ') });
  }

  const productRefs = new Map<string, ProductRef>();
  for (const def of catalog.products) {
    const stripeId = stripe.products[def.code];
    const row = products.find((p) => p.code === def.code) ?? (stripeId ? products.find((p) => p.stripeProductId === stripeId) : undefined);
    const values = { code: def.code, name: def.name, description: def.description ?? null, active: def.active ?? true, stripeProductId: stripeId ?? undefined };
    if (!row) {
      plan.changes.push({ where: 'database', action: 'create', object: 'product', key: def.code, detail: stripeId ?? NEW_ID });
      if (!dryRun) {
        plan.createProducts.push({ ...values, stripeProductId: stripeId ?? null });
        productRefs.set(def.code, { code: def.code });
      }
      continue;
    }
    productRefs.set(def.code, { id: row.id });
    const diffs = setFields(plan.updateProducts, row, values);
    if (stripeId === null && dryRun) diffs.push(`stripeProductId → ${NEW_ID}`);
    if (diffs.length) plan.changes.push({ where: 'database', action: 'update', object: 'product', key: def.code, detail: diffs.join(', ') });
  }

  for (const product of products) {
    if (!product.stripeProductId || !stripe.archivedProductIds.has(product.stripeProductId) || !product.active) continue;
    setFields(plan.updateProducts, product, { active: false });
    plan.changes.push({ where: 'database', action: 'archive', object: 'product', key: product.code, detail: product.stripeProductId });
  }

  const claimed = new Set(catalog.products.flatMap((p) => p.prices.map((x) => x.lookupKey)).filter((k) => stripe.prices[k] !== undefined));
  // Archived prices first: a replaced price gives its lookup key up before its successor's row takes it.
  for (const price of prices) {
    if (!price.stripePriceId || !stripe.archivedPriceIds.has(price.stripePriceId)) continue;
    const values: Partial<PriceRow> = { active: false };
    const key = price.lookupKey ?? price.stripePriceId;
    if (price.lookupKey && claimed.has(price.lookupKey) && stripe.prices[price.lookupKey] !== price.stripePriceId) values.lookupKey = null;
    const diffs = setFields(plan.updatePrices, price, values);
    if (diffs.length) plan.changes.push({ where: 'database', action: 'archive', object: 'price', key, detail: price.stripePriceId });
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
          setFields(plan.updatePrices, byKey, { active: false, lookupKey: null });
          plan.changes.push({ where: 'database', action: 'archive', object: 'price', key: p.lookupKey, detail: `${byKey.stripePriceId} (replaced)` });
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
        plan.changes.push({ where: 'database', action: 'create', object: 'price', key: p.lookupKey, detail: `${money(p)}, ${stripeId ?? NEW_ID}` });
        if (!dryRun) {
          const meter = p.meter ? (meterRefs.get(p.meter) ?? null) : null;
          plan.createPrices.push({ ...values, stripePriceId: stripeId ?? null, product: productRefs.get(def.code)!, meter });
        }
        continue;
      }
      const diffs = setFields(plan.updatePrices, row, values);
      if (stripeId === null && dryRun) diffs.push(`stripePriceId → ${NEW_ID}`);
      const product = productRefs.get(def.code);
      if (product && row.productId !== refId(product)) {
        diffs.push(`product → ${def.code}`);
        row.productId = refId(product);
        plan.updatePrices.set(row.id, { ...plan.updatePrices.get(row.id), product });
      }
      const meter = p.meter ? meterRefs.get(p.meter) : undefined;
      if (row.meterId !== (meter ? refId(meter) : null)) {
        diffs.push(`meter → ${p.meter ?? 'none'}`);
        row.meterId = meter ? refId(meter) : null;
        plan.updatePrices.set(row.id, { ...plan.updatePrices.get(row.id), meter: meter ?? null });
      }
      if (diffs.length) plan.changes.push({ where: 'database', action: 'update', object: 'price', key: p.lookupKey, detail: diffs.join(', ') });
    }
  }
  return plan;
}
