/**
 * Subscription routes: create (trials, payment_behavior), retrieve, update (items with
 * prorations and pending updates, cancel_at_period_end, trial_end=now), cancel, resume, list,
 * and subscription items. The model lives in subscription-model.ts, what the clock and payments
 * drive in subscription-lifecycle.ts, item changes in subscription-update.ts.
 */
import { invalidRequest, noSuch } from '../errors';
import { applyMetadata, arr, bool, int, obj, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { diff, getCustomer } from './customers';
import { resolvePaymentMethod } from './payment-methods';
import { finishCancel, startCycle } from './subscription-lifecycle';
import {
  createSubscription,
  currentPeriod,
  ENDED,
  getSubscription,
  productName,
  readItems,
  readTrialEnd,
  renderItem,
  renderSubscription,
  setPeriod,
} from './subscription-model';
import { applyPlan, changeItems, checkPendingUpdateParams, readChangePlan, readPaymentBehavior, readProrationBehavior, readProrationDate } from './subscription-update';

export { createSubscription, getSubscription, renderSubscription } from './subscription-model';
export type { CreateSubscriptionInput } from './subscription-model';
export { advanceSubscription, nextDueAt, onSubscriptionInvoiceFailed, onSubscriptionInvoicePaid } from './subscription-lifecycle';

export function registerSubscriptions(router: Router, store: Store): void {
  store.renderers.set('subscription', (s) => renderSubscription(store, s));
  store.renderers.set('subscription_item', (i) => renderItem(store, i));

  router.add('POST', '/v1/subscriptions', (ctx) => {
    const p = ctx.params;
    const customer = str(p, 'customer');
    if (!customer) throw invalidRequest('Missing required param: customer.', 'customer', 'parameter_missing');
    getCustomer(store, customer);
    const items = readItems(store, arr(p, 'items'), 'items');
    const paymentBehavior = str(p, 'payment_behavior') ?? 'allow_incomplete';
    if (!['default_incomplete', 'allow_incomplete', 'error_if_incomplete', 'pending_if_incomplete'].includes(paymentBehavior)) {
      throw invalidRequest(`Invalid payment_behavior: ${paymentBehavior}`, 'payment_behavior');
    }
    const ps = obj(p, 'payment_settings');
    const ts = obj(p, 'trial_settings');
    const sub = createSubscription(store, {
      customer,
      items,
      trialEnd: readTrialEnd(store, p) ?? null,
      paymentBehavior,
      defaultPaymentMethod: str(p, 'default_payment_method'),
      metadata: applyMetadata({}, p),
      cancelAtPeriodEnd: bool(p, 'cancel_at_period_end'),
      description: str(p, 'description'),
      saveDefaultPaymentMethod: ps ? str(ps, 'save_default_payment_method') : undefined,
      missingPaymentMethod: ts?.end_behavior?.missing_payment_method,
    });
    return out(ctx, sub);
  });

  router.add('GET', '/v1/subscriptions/:id', (ctx) => out(ctx, getSubscription(store, ctx.pathParams.id, 'id')));

  router.add('POST', '/v1/subscriptions/:id', (ctx) => {
    const sub = getSubscription(store, ctx.pathParams.id, 'id');
    const p = ctx.params;
    if (ENDED.includes(sub.status)) {
      const allowed = Object.keys(p).every((k) => ['metadata', 'cancellation_details', 'expand'].includes(k));
      if (!allowed) throw invalidRequest('A canceled subscription can only update its cancellation_details and metadata.');
    }
    const before = store.render(sub);
    const now = store.now();
    const prorationBehavior = readProrationBehavior(p);
    const paymentBehavior = readPaymentBehavior(p);
    if (paymentBehavior === 'pending_if_incomplete') checkPendingUpdateParams(p);
    const itemsParam = arr(p, 'items');
    const plan = itemsParam ? readChangePlan(store, sub, itemsParam, readProrationDate(store, sub, p)) : null;
    if ('cancel_at_period_end' in p) {
      const cape = bool(p, 'cancel_at_period_end') ?? false;
      sub.cancel_at_period_end = cape;
      sub.cancel_at = cape ? currentPeriod(sub).end : null;
      sub.canceled_at = cape ? now : null;
      if (!cape) sub.cancellation_details = { comment: null, feedback: null, reason: null };
      else sub.cancellation_details = { ...sub.cancellation_details, reason: 'cancellation_requested' };
    }
    if ('cancel_at' in p) {
      const at = int(p, 'cancel_at');
      sub.cancel_at = at ?? null;
      sub.cancel_at_period_end = at !== undefined && at === currentPeriod(sub).end;
      sub.canceled_at = at !== undefined ? now : null;
    }
    const cd = obj(p, 'cancellation_details');
    if (cd) {
      if ('comment' in cd) sub.cancellation_details.comment = str(cd, 'comment') ?? null;
      if ('feedback' in cd) sub.cancellation_details.feedback = str(cd, 'feedback') ?? null;
    }
    sub.metadata = applyMetadata(sub.metadata, p);
    if ('description' in p) sub.description = str(p, 'description') ?? null;
    if ('default_payment_method' in p) {
      const id = str(p, 'default_payment_method');
      if (id) {
        const pm = resolvePaymentMethod(store, id, 'default_payment_method');
        if (pm.customer !== sub.customer) {
          throw invalidRequest(`The customer does not have a payment method with the ID ${id}. The payment method must be attached to the customer.`, 'default_payment_method', 'resource_missing');
        }
        sub.default_payment_method = pm.id;
      } else sub.default_payment_method = null;
    }
    const ps = obj(p, 'payment_settings');
    if (ps && str(ps, 'save_default_payment_method')) sub.payment_settings.save_default_payment_method = str(ps, 'save_default_payment_method');
    if ('pause_collection' in p) {
      const pc = obj(p, 'pause_collection');
      sub.pause_collection = pc ? { behavior: str(pc, 'behavior') ?? 'void', resumes_at: int(pc, 'resumes_at') ?? null } : null;
    }
    const ts = obj(p, 'trial_settings');
    if (ts?.end_behavior?.missing_payment_method) sub.trial_settings = { end_behavior: { missing_payment_method: ts.end_behavior.missing_payment_method } };

    const trialEnd = readTrialEnd(store, { trial_end: p.trial_end });
    // Items changed together with trial_end=now are billed by the new cycle's first invoice.
    const planWithCycle = plan !== null && p.trial_end === 'now' && sub.status === 'trialing';
    if (planWithCycle) applyPlan(store, sub, plan);
    if (trialEnd !== undefined && trialEnd !== null) {
      if (p.trial_end === 'now') {
        if (sub.status === 'trialing') {
          sub.trial_end = now;
          sub.status = 'active';
          startCycle(store, sub, now, 'subscription_update');
        }
      } else {
        sub.trial_end = trialEnd;
        if (!sub.trial_start) sub.trial_start = now;
        sub.status = 'trialing';
        setPeriod(sub, { start: currentPeriod(sub).start, end: trialEnd });
        sub._anchor = trialEnd;
        sub.billing_cycle_anchor = trialEnd;
      }
    }
    if (plan && !planWithCycle) changeItems(store, sub, plan, prorationBehavior, paymentBehavior);
    const prev = diff(before, store.render(sub));
    if (Object.keys(prev).length) store.emit('customer.subscription.updated', sub, prev);
    return out(ctx, sub);
  });

  router.add('DELETE', '/v1/subscriptions/:id', (ctx) => {
    const sub = getSubscription(store, ctx.pathParams.id, 'id');
    if (ENDED.includes(sub.status)) {
      throw invalidRequest(`No such subscription: '${sub.id}'`, 'id', 'resource_missing');
    }
    const cd = obj(ctx.params, 'cancellation_details');
    if (cd) sub.cancellation_details = { comment: str(cd, 'comment') ?? null, feedback: str(cd, 'feedback') ?? null, reason: null };
    const now = store.now();
    sub.canceled_at = now;
    const invoiceNow = bool(ctx.params, 'invoice_now') ?? false;
    if (bool(ctx.params, 'prorate') && sub.status !== 'trialing') {
      const period = currentPeriod(sub);
      const fraction = Math.max(0, (period.end - now) / (period.end - period.start));
      for (const item of sub._items as Obj[]) {
        const price = store.get('price', item.price) as Obj;
        if (price.recurring.usage_type === 'metered') continue;
        const amount = Math.round(price.unit_amount * (item.quantity ?? 1) * fraction);
        if (amount > 0) {
          sub._pending.push({
            amount: -amount,
            description: `Unused time on ${item.quantity} \u00d7 ${productName(store, price)}`,
            price,
            quantity: item.quantity,
            period: { start: now, end: period.end },
            subscriptionItem: item.id,
            proration: true,
          });
        }
      }
    }
    finishCancel(store, sub, now, 'cancellation_requested', invoiceNow);
    return out(ctx, sub);
  });

  router.add('POST', '/v1/subscriptions/:id/resume', (ctx) => {
    const sub = getSubscription(store, ctx.pathParams.id, 'id');
    if (sub.status !== 'paused') {
      throw invalidRequest('Subscription is not paused. Only paused subscriptions can be resumed.', undefined, 'subscription_not_paused' as string);
    }
    const before = store.render(sub);
    sub.status = 'active';
    sub.pause_collection = null;
    const inv = startCycle(store, sub, store.now(), 'subscription_update');
    if (inv.status !== 'paid' && sub.status === 'active') sub.status = 'past_due';
    store.emit('customer.subscription.resumed', sub);
    store.emit('customer.subscription.updated', sub, diff(before, store.render(sub)));
    return out(ctx, sub);
  });

  router.add('GET', '/v1/subscriptions', (ctx) => {
    const p = ctx.params;
    let items = store.list('subscription');
    const status = str(p, 'status');
    if (!status) items = items.filter((s) => s.status !== 'canceled');
    else if (status === 'ended') items = items.filter((s) => ENDED.includes(s.status));
    else if (status !== 'all') items = items.filter((s) => s.status === status);
    const customer = str(p, 'customer');
    if (customer) items = items.filter((s) => s.customer === customer);
    const price = str(p, 'price') ?? str(p, 'plan');
    if (price) items = items.filter((s) => (s._items as Obj[]).some((i) => i.price === price));
    return listOut(ctx, items);
  });

  router.add('GET', '/v1/subscription_items/:id', (ctx) => {
    const item = store.get('subscription_item', ctx.pathParams.id);
    if (!item) throw noSuch('subscription_item', ctx.pathParams.id, 'id');
    return out(ctx, item);
  });

  router.add('GET', '/v1/subscription_items', (ctx) => {
    const subId = str(ctx.params, 'subscription');
    if (!subId) throw invalidRequest('Missing required param: subscription.', 'subscription', 'parameter_missing');
    const sub = getSubscription(store, subId);
    return listOut(ctx, [...sub._items].reverse());
  });
}
