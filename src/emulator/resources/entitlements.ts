/**
 * Entitlements: features (create, retrieve, update, list), product features (attach, retrieve,
 * list, detach) and a customer's active entitlements (list, retrieve).
 *
 * As in Stripe, a customer's active entitlements are the active features attached to the
 * products of its `active` and `trialing` subscriptions. They are recomputed whenever one of
 * those inputs changes, and every change of the set sends
 * `entitlements.active_entitlement_summary.updated` carrying the first 10 entitlements and
 * `has_more: true` when there are more (the receiver lists the rest).
 */
import { invalidRequest, missingParam, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, bool, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import { publicCopy, type Obj, type Store } from '../store';
import { getCustomer } from './customers';
import { getProduct } from './products';

const FEATURE = 'entitlements.feature';
const PRODUCT_FEATURE = 'product_feature';
const SUMMARY = 'entitlements.active_entitlement_summary';
const ENTITLEMENT = 'entitlements.active_entitlement';
/** Stripe puts this many entitlements in the summary event; the rest are read through the list. */
export const SUMMARY_EVENT_ENTITLEMENTS = 10;
const GRANTING_STATUSES = new Set(['active', 'trialing']);
const LOOKUP_KEY_MAX = 80;

export function getFeature(store: Store, id: string, param = 'id'): Obj {
  const f = store.get(FEATURE, id);
  if (!f) throw noSuch('feature', id, param);
  return f;
}

function summaryId(customerId: string): string {
  return `entsum_${customerId}`;
}

/** The entitlements the customer's subscriptions grant now, oldest feature first, reusing the ids they had. */
function computeEntitlements(store: Store, customerId: string, previous: Obj[]): Obj[] {
  const products = new Set<string>();
  for (const sub of store.table('subscription').values()) {
    if (sub.customer !== customerId || !GRANTING_STATUSES.has(sub.status)) continue;
    for (const item of sub._items as Obj[]) {
      const price = store.get('price', item.price);
      if (price) products.add(price.product);
    }
  }
  const featureIds = new Set<string>();
  for (const pf of store.table(PRODUCT_FEATURE).values()) if (products.has(pf._product)) featureIds.add(pf.entitlement_feature);
  const idOf = new Map(previous.map((e) => [e.feature, e.id]));
  const out: Obj[] = [];
  for (const feature of store.table(FEATURE).values()) {
    if (!featureIds.has(feature.id) || !feature.active) continue;
    out.push({
      id: idOf.get(feature.id) ?? newId('ent_test_', 24),
      object: ENTITLEMENT,
      feature: feature.id,
      livemode: false,
      lookup_key: feature.lookup_key,
    });
  }
  return out;
}

function sameSet(a: Obj[], b: Obj[]): boolean {
  return a.length === b.length && a.every((e, i) => e.feature === b[i].feature && e.lookup_key === b[i].lookup_key);
}

/** Recomputes one customer's active entitlements and sends the summary event when they changed. */
export function refreshEntitlements(store: Store, customerId: string): void {
  const id = summaryId(customerId);
  const summary = store.get(SUMMARY, id);
  const previous: Obj[] = summary?._entitlements ?? [];
  const next = computeEntitlements(store, customerId, previous);
  if (sameSet(previous, next)) return;
  const row: Obj = summary ?? { id, object: SUMMARY, customer: customerId, livemode: false, _entitlements: [] };
  row._entitlements = next;
  if (!summary) store.insert(SUMMARY, row);
  store.emit(`${SUMMARY}.updated`, row);
}

/** Every customer that has or had entitlements or subscriptions (after a product feature or feature changed). */
function refreshAll(store: Store): void {
  const customers = new Set<string>();
  for (const sub of store.table('subscription').values()) customers.add(sub.customer);
  for (const s of store.table(SUMMARY).values()) customers.add(s.customer);
  for (const c of customers) refreshEntitlements(store, c);
}

/** Keeps active entitlements in step with subscriptions: call with every recorded event. */
export function entitlementsAfterEvent(store: Store, event: Obj): void {
  if (!String(event.type).startsWith('customer.subscription.')) return;
  const customer = event.data?.object?.customer;
  if (typeof customer === 'string' && store.get('customer', customer)) refreshEntitlements(store, customer);
}

function renderSummary(store: Store, s: Obj): Obj {
  const all = s._entitlements as Obj[];
  return {
    object: SUMMARY,
    customer: s.customer,
    entitlements: {
      object: 'list',
      data: all.slice(0, SUMMARY_EVENT_ENTITLEMENTS).map((e) => publicCopy(e)),
      has_more: all.length > SUMMARY_EVENT_ENTITLEMENTS,
      url: `/v1/customer/${s.customer}/entitlements`,
    },
    livemode: false,
  };
}

function renderProductFeature(store: Store, pf: Obj): Obj {
  const feature = store.get(FEATURE, pf.entitlement_feature);
  return { id: pf.id, object: PRODUCT_FEATURE, entitlement_feature: feature ? publicCopy(feature) : pf.entitlement_feature, livemode: false };
}

function lookupKeyOf(p: Obj): string {
  const key = str(p, 'lookup_key');
  if (!key) throw missingParam('lookup_key');
  if (key.length > LOOKUP_KEY_MAX) throw invalidRequest(`Invalid lookup_key: must be at most ${LOOKUP_KEY_MAX} characters.`, 'lookup_key');
  return key;
}

export function registerEntitlements(router: Router, store: Store): void {
  store.renderers.set(SUMMARY, (s) => renderSummary(store, s));
  store.renderers.set(PRODUCT_FEATURE, (pf) => renderProductFeature(store, pf));

  router.add('POST', '/v1/entitlements/features', (ctx) => {
    const p = ctx.params;
    const name = str(p, 'name');
    if (!name) throw missingParam('name');
    const lookupKey = lookupKeyOf(p);
    if ([...store.table(FEATURE).values()].some((f) => f.lookup_key === lookupKey)) {
      throw invalidRequest(`A feature with the lookup_key '${lookupKey}' already exists.`, 'lookup_key', 'resource_already_exists');
    }
    const feature: Obj = {
      id: newId('feat_test_', 24),
      object: FEATURE,
      active: true,
      livemode: false,
      lookup_key: lookupKey,
      metadata: applyMetadata({}, p),
      name,
    };
    store.insert(FEATURE, feature);
    return out(ctx, feature);
  });

  router.add('GET', '/v1/entitlements/features/:id', (ctx) => out(ctx, getFeature(store, ctx.pathParams.id)));

  router.add('POST', '/v1/entitlements/features/:id', (ctx) => {
    const feature = getFeature(store, ctx.pathParams.id);
    const p = ctx.params;
    if ('name' in p) {
      const name = str(p, 'name');
      if (!name) throw invalidRequest('You cannot unset the name of a feature.', 'name');
      feature.name = name;
    }
    const active = bool(p, 'active');
    const activeChanged = active !== undefined && active !== feature.active;
    if (active !== undefined) feature.active = active;
    feature.metadata = applyMetadata(feature.metadata, p);
    if (activeChanged) refreshAll(store);
    return out(ctx, feature);
  });

  router.add('GET', '/v1/entitlements/features', (ctx) => {
    let items = store.list(FEATURE);
    const archived = bool(ctx.params, 'archived');
    if (archived !== undefined) items = items.filter((f) => f.active === !archived);
    const lookupKey = str(ctx.params, 'lookup_key');
    if (lookupKey) items = items.filter((f) => f.lookup_key === lookupKey);
    return listOut(ctx, items);
  });

  router.add('POST', '/v1/products/:id/features', (ctx) => {
    const product = getProduct(store, ctx.pathParams.id, 'id');
    const featureId = str(ctx.params, 'entitlement_feature');
    if (!featureId) throw missingParam('entitlement_feature');
    const feature = getFeature(store, featureId, 'entitlement_feature');
    if (!feature.active) throw invalidRequest('An archived feature cannot be attached to a product.', 'entitlement_feature');
    const attached = [...store.table(PRODUCT_FEATURE).values()].some((pf) => pf._product === product.id && pf.entitlement_feature === feature.id);
    if (attached) {
      throw invalidRequest(`The feature ${feature.id} is already attached to the product ${product.id}.`, 'entitlement_feature', 'resource_already_exists');
    }
    const pf: Obj = { id: newId('prodft_', 24), object: PRODUCT_FEATURE, entitlement_feature: feature.id, livemode: false, _product: product.id };
    store.insert(PRODUCT_FEATURE, pf);
    refreshAll(store);
    return out(ctx, pf);
  });

  const productFeature = (productId: string, id: string): Obj => {
    const pf = store.get(PRODUCT_FEATURE, id);
    if (!pf || pf._product !== productId) throw noSuch('product_feature', id, 'id');
    return pf;
  };

  router.add('GET', '/v1/products/:product/features/:id', (ctx) => {
    getProduct(store, ctx.pathParams.product, 'product');
    return out(ctx, productFeature(ctx.pathParams.product, ctx.pathParams.id));
  });

  router.add('DELETE', '/v1/products/:product/features/:id', (ctx) => {
    getProduct(store, ctx.pathParams.product, 'product');
    const pf = productFeature(ctx.pathParams.product, ctx.pathParams.id);
    store.remove(PRODUCT_FEATURE, pf.id);
    refreshAll(store);
    return { id: pf.id, object: PRODUCT_FEATURE, deleted: true };
  });

  router.add('GET', '/v1/products/:id/features', (ctx) => {
    const product = getProduct(store, ctx.pathParams.id, 'id');
    return listOut(ctx, store.list(PRODUCT_FEATURE).filter((pf) => pf._product === product.id));
  });

  router.add('GET', '/v1/entitlements/active_entitlements', (ctx) => {
    const customerId = str(ctx.params, 'customer');
    if (!customerId) throw missingParam('customer');
    getCustomer(store, customerId);
    const entitlements: Obj[] = store.get(SUMMARY, summaryId(customerId))?._entitlements ?? [];
    // Stripe lists them in a stable order; `paginate` reads its input as newest first.
    return listOut(ctx, entitlements);
  });

  router.add('GET', '/v1/entitlements/active_entitlements/:id', (ctx) => {
    for (const s of store.table(SUMMARY).values()) {
      const found = (s._entitlements as Obj[]).find((e) => e.id === ctx.pathParams.id);
      if (found) return out(ctx, found);
    }
    throw noSuch('active_entitlement', ctx.pathParams.id, 'id');
  });
}
