/**
 * Subscription items: create, update and delete go through the subscription update itself
 * (`items[]` on `POST /v1/subscriptions/:id`), so an item change prorates, invoices and emits
 * `customer.subscription.updated` exactly as the equivalent subscription update does.
 * Retrieve and list live with the subscriptions.
 */
import { invalidRequest, noSuch } from '../errors';
import { str } from '../params';
import type { Ctx, Router } from '../router';
import { isResult, out } from '../router';
import type { Obj, Store } from '../store';

/** Parameters of an item call that the subscription update takes as they are. */
const PASS_THROUGH = ['proration_behavior', 'proration_date', 'payment_behavior'] as const;

function findItem(store: Store, id: string): Obj {
  const item = store.get('subscription_item', id);
  if (!item) throw noSuch('subscription_item', id, 'id');
  return item;
}

export function registerSubscriptionItems(router: Router, store: Store): void {
  /** Runs the subscription update route with the given parameters (inside this request). */
  const updateSubscription = (ctx: Ctx, subscriptionId: string, params: Obj): void => {
    const path = `/v1/subscriptions/${encodeURIComponent(subscriptionId)}`;
    const match = router.match('POST', path);
    if (!match || match === 'method') throw new Error('subscription update route missing');
    const result = match.handler({ ...ctx, method: 'POST', path, params, pathParams: match.pathParams });
    if (isResult(result) && result.status >= 400) throw new Error('subscription update failed');
  };

  const passThrough = (p: Obj): Obj => {
    const o: Obj = {};
    for (const k of PASS_THROUGH) if (p[k] !== undefined) o[k] = p[k];
    return o;
  };

  const itemFields = (p: Obj): Obj => {
    const o: Obj = {};
    for (const k of ['price', 'quantity', 'metadata', 'plan'] as const) if (p[k] !== undefined) o[k] = p[k];
    return o;
  };

  router.add('POST', '/v1/subscription_items', (ctx) => {
    const p = ctx.params;
    const subId = str(p, 'subscription') as string;
    const sub = store.get('subscription', subId);
    if (!sub) throw noSuch('subscription', subId, 'subscription');
    const priceId = str(p, 'price') ?? str(p, 'plan');
    if (!priceId) throw invalidRequest('Missing required param: price.', 'price', 'parameter_missing');
    if ((sub._items as Obj[]).some((i) => i.price === priceId)) {
      throw invalidRequest(
        `Cannot add multiple subscription items with the same price: ${priceId}`,
        'price',
        'parameter_invalid_string',
      );
    }
    const before = new Set((sub._items as Obj[]).map((i) => i.id));
    updateSubscription(ctx, sub.id, { ...passThrough(p), items: [itemFields(p)] });
    const created = (sub._items as Obj[]).find((i) => !before.has(i.id));
    if (!created) throw new Error('subscription item was not created');
    return out(ctx, created);
  });

  router.add('POST', '/v1/subscription_items/:id', (ctx) => {
    const item = findItem(store, ctx.pathParams.id);
    const p = ctx.params;
    const sub = store.get('subscription', item.subscription) as Obj;
    const priceId = str(p, 'price') ?? str(p, 'plan');
    if (priceId && priceId !== item.price && (sub._items as Obj[]).some((i) => i.price === priceId)) {
      throw invalidRequest(`Cannot add multiple subscription items with the same price: ${priceId}`, 'price', 'parameter_invalid_string');
    }
    updateSubscription(ctx, sub.id, { ...passThrough(p), items: [{ id: item.id, ...itemFields(p) }] });
    return out(ctx, store.get('subscription_item', item.id) ?? item);
  });

  router.add('DELETE', '/v1/subscription_items/:id', (ctx) => {
    const item = findItem(store, ctx.pathParams.id);
    const sub = store.get('subscription', item.subscription) as Obj;
    if ((sub._items as Obj[]).length <= 1) {
      throw invalidRequest(
        'A subscription must have at least one active plan. To cancel a subscription, please use the cancel API endpoint on /v1/subscriptions.',
        undefined,
        'parameter_invalid_string',
      );
    }
    updateSubscription(ctx, sub.id, { ...passThrough(ctx.params), items: [{ id: item.id, deleted: 'true' }] });
    return { id: item.id, object: 'subscription_item', deleted: true };
  });
}
