/** Subscription schedule routes: create from a subscription, retrieve, update phases, release, cancel, list. */
import { invalidRequest } from '../errors';
import { applyMetadata, bool, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Store } from '../store';
import { finishCancel } from './subscription-lifecycle';
import { ENDED, getSubscription } from './subscription-model';
import { createFromSubscription, getSchedule, OPEN, release, updateSchedule } from './subscription-schedules';

export function registerSubscriptionSchedules(router: Router, store: Store): void {
  router.add('POST', '/v1/subscription_schedules', (ctx) => {
    const p = ctx.params;
    const from = str(p, 'from_subscription');
    if (!from) {
      throw invalidRequest('The emulator creates subscription schedules from a subscription: pass from_subscription.', 'from_subscription', 'parameter_missing');
    }
    const other = Object.keys(p).filter((k) => !['from_subscription', 'expand', 'metadata'].includes(k));
    if (other.length) throw invalidRequest(`You cannot set \`${other[0]}\` when creating a schedule from a subscription.`, other[0]);
    const sub = getSubscription(store, from, 'from_subscription');
    return out(ctx, createFromSubscription(store, sub, applyMetadata({}, p)));
  });

  router.add('GET', '/v1/subscription_schedules/:id', (ctx) => out(ctx, getSchedule(store, ctx.pathParams.id)));

  router.add('POST', '/v1/subscription_schedules/:id', (ctx) => out(ctx, updateSchedule(store, getSchedule(store, ctx.pathParams.id), ctx.params)));

  router.add('POST', '/v1/subscription_schedules/:id/release', (ctx) => {
    const sched = getSchedule(store, ctx.pathParams.id);
    if (!OPEN.includes(sched.status)) throw invalidRequest(`You cannot release a subscription schedule that is currently \`${sched.status}\`.`);
    release(store, sched, store.now());
    return out(ctx, sched);
  });

  router.add('POST', '/v1/subscription_schedules/:id/cancel', (ctx) => {
    const sched = getSchedule(store, ctx.pathParams.id);
    if (!OPEN.includes(sched.status)) throw invalidRequest(`You cannot cancel a subscription schedule that is currently \`${sched.status}\`.`);
    const invoiceNow = bool(ctx.params, 'invoice_now') ?? true;
    const prev = { status: sched.status };
    sched.status = 'canceled';
    sched.canceled_at = store.now();
    sched.current_phase = null;
    store.emit('subscription_schedule.canceled', sched, prev);
    const sub = store.get('subscription', sched.subscription);
    if (sub && !ENDED.includes(sub.status)) {
      sub.canceled_at = store.now();
      finishCancel(store, sub, store.now(), 'cancellation_requested', invoiceNow);
    }
    return out(ctx, sched);
  });

  router.add('GET', '/v1/subscription_schedules', (ctx) => {
    let items = store.list('subscription_schedule');
    const customer = str(ctx.params, 'customer');
    if (customer) items = items.filter((s) => s.customer === customer);
    if (bool(ctx.params, 'scheduled')) items = items.filter((s) => s.status === 'not_started');
    return listOut(ctx, items);
  });
}
