/**
 * What the clock and payments drive: activation when an invoice is paid, past_due when it
 * fails, pending updates applied on payment (or expired), renewals, trial ends, scheduled
 * cancellations, incomplete expiry and subscription schedule phase transitions.
 */
import { periodAt } from '../periods';
import type { Obj, Store } from '../store';
import { diff } from './customers';
import { attemptInvoicePayment, type LineSpec } from './invoices';
import { settlements } from './settlements';
import { cancelScheduleOf, dueScheduleBoundary, transitionSchedule } from './subscription-schedules';
import {
  currentPeriod,
  cycleOf,
  defaultPaymentMethod,
  ENDED,
  INCOMPLETE_WINDOW,
  invoiceFor,
  isMeteredLine,
  licensedLines,
  setPeriod,
  usageLines,
} from './subscription-model';
import { applyPendingUpdate, discardPendingUpdate } from './subscription-update';

/** Called when an invoice is paid: activates an incomplete or past_due subscription, applies a pending update. */
export function onSubscriptionInvoicePaid(store: Store, inv: Obj, pi: Obj | null): void {
  const id = inv.parent?.subscription_details?.subscription;
  const sub = id ? store.get('subscription', id) : undefined;
  if (!sub || ENDED.includes(sub.status)) return;
  const before = store.render(sub);
  if (pi?.payment_method && !sub.default_payment_method && sub.payment_settings.save_default_payment_method === 'on_subscription') {
    sub.default_payment_method = pi.payment_method;
  }
  if ((sub.status === 'incomplete' || sub.status === 'past_due' || sub.status === 'unpaid') && sub.latest_invoice === inv.id) {
    sub.status = sub.trial_end && sub.trial_end > store.now() ? 'trialing' : 'active';
  }
  if (sub._creating) return;
  applyPendingUpdate(store, sub, inv);
  const prev = diff(before, store.render(sub));
  if (Object.keys(prev).length) store.emit('customer.subscription.updated', sub, prev);
}

/** Called when an invoice payment fails: a renewal or update failure makes the subscription past_due. */
export function onSubscriptionInvoiceFailed(store: Store, inv: Obj): void {
  const id = inv.parent?.subscription_details?.subscription;
  const sub = id ? store.get('subscription', id) : undefined;
  if (!sub || sub._creating || ENDED.includes(sub.status)) return;
  // A pending update's invoice leaves the subscription as it was: it keeps cycling unchanged.
  if (inv._pending_update) return;
  if (inv.billing_reason !== 'subscription_create' && (sub.status === 'active' || sub.status === 'trialing')) {
    const prev = { status: sub.status };
    sub.status = 'past_due';
    store.emit('customer.subscription.updated', sub, prev);
  }
}

/** Starts a new billing cycle at `start` (trial end, trial_end=now, resume): invoice and charge it. */
export function startCycle(store: Store, sub: Obj, start: number, reason: string, extraLines: LineSpec[] = []): Obj {
  const { interval, count } = cycleOf(store, sub);
  sub._anchor = start;
  sub._cycle = 0;
  sub.billing_cycle_anchor = start;
  const period = periodAt(start, interval, count, 0);
  setPeriod(sub, period);
  const lines = [...extraLines, ...sub._pending, ...licensedLines(store, sub, period, false)];
  sub._pending = [];
  const inv = invoiceFor(store, sub, lines, reason, period);
  if (inv.status === 'open') attemptInvoicePayment(store, inv, defaultPaymentMethod(store, sub));
  return inv;
}

function endTrial(store: Store, sub: Obj, at: number): void {
  const before = store.render(sub);
  const pm = defaultPaymentMethod(store, sub);
  const behavior = sub.trial_settings?.end_behavior?.missing_payment_method ?? 'create_invoice';
  if (!pm && behavior === 'pause') {
    sub.status = 'paused';
    store.emit('customer.subscription.paused', sub);
    store.emit('customer.subscription.updated', sub, diff(before, store.render(sub)));
    return;
  }
  if (!pm && behavior === 'cancel') {
    finishCancel(store, sub, at, 'cancellation_requested');
    return;
  }
  sub.status = 'active';
  startCycle(store, sub, at, 'subscription_cycle');
  const prev = diff(before, store.render(sub));
  if (Object.keys(prev).length) store.emit('customer.subscription.updated', sub, prev);
}

export function finishCancel(store: Store, sub: Obj, at: number, reason: string, finalInvoice = true): void {
  discardPendingUpdate(store, sub, null);
  if (finalInvoice) {
    const period = currentPeriod(sub);
    const lines = [...sub._pending, ...usageLines(store, sub, { start: period.start, end: Math.min(period.end, at) })].filter((l) => l.amount !== 0);
    sub._pending = [];
    if (lines.length) {
      const inv = invoiceFor(store, sub, lines, 'subscription_cycle', { start: period.start, end: at });
      if (inv.status === 'open') attemptInvoicePayment(store, inv, defaultPaymentMethod(store, sub));
    }
  }
  const prev = { status: sub.status };
  sub.status = 'canceled';
  sub.ended_at = at;
  sub.canceled_at = sub.canceled_at ?? at;
  sub.cancel_at = sub.cancel_at ?? null;
  sub.cancellation_details = { ...sub.cancellation_details, reason: sub.cancellation_details.reason ?? reason };
  store.emit('customer.subscription.deleted', sub, prev);
  // A schedule cannot outlive its subscription.
  cancelScheduleOf(store, sub);
}

/** Moves one subscription forward to the emulator's current time. */
export function advanceSubscription(store: Store, sub: Obj): void {
  const now = store.now();
  for (let guard = 0; guard < 1000; guard++) {
    if (ENDED.includes(sub.status) || sub.status === 'paused') return;
    if (sub.status === 'incomplete') {
      if (now >= sub.created + INCOMPLETE_WINDOW) {
        const inv = sub.latest_invoice ? store.get('invoice', sub.latest_invoice) : undefined;
        if (inv && inv.status === 'open') {
          inv.status = 'void';
          inv.status_transitions.voided_at = now;
          store.emit('invoice.voided', inv, { status: 'open' });
        }
        const prev = { status: sub.status };
        sub.status = 'incomplete_expired';
        sub.ended_at = now;
        store.emit('customer.subscription.updated', sub, prev);
      }
      return;
    }
    if (sub.status === 'trialing' && !sub._trialWillEndSent && sub.trial_end && now >= sub.trial_end - 3 * 86400) {
      sub._trialWillEndSent = true;
      store.emit('customer.subscription.trial_will_end', sub);
    }
    const period = currentPeriod(sub);
    if (sub.cancel_at && sub.cancel_at <= now && sub.cancel_at <= period.end) {
      finishCancel(store, sub, sub.cancel_at, 'cancellation_requested');
      return;
    }
    if (sub.pending_update && sub.pending_update.expires_at <= now) {
      discardPendingUpdate(store, sub, 'customer.subscription.pending_update_expired');
    }
    const boundary = dueScheduleBoundary(store, sub, now);
    if (boundary !== null && boundary < period.end) {
      // A phase that ends mid-period: its successor's items apply then, prorated.
      const before = store.render(sub);
      transitionSchedule(store, sub, boundary, true);
      const prev = diff(before, store.render(sub));
      if (Object.keys(prev).length) store.emit('customer.subscription.updated', sub, prev);
      continue;
    }
    if (period.end > now) return;
    if (sub.status === 'trialing' && sub.trial_end && sub.trial_end <= now) {
      // A phase ending with the trial: the paid period starts on the next phase's items.
      if (boundary !== null && boundary === period.end) transitionSchedule(store, sub, boundary, false);
      endTrial(store, sub, sub.trial_end);
      continue;
    }
    // Renewal: licensed items in advance for the new period, metered usage in arrears for the old one.
    // A schedule phase ending with the period swaps the items first (no proration: nothing of
    // the new period was billed yet); usage of the old items is still billed at their prices.
    const before = store.render(sub);
    const usage = usageLines(store, sub, period);
    const cycleBefore = cycleOf(store, sub);
    if (boundary !== null && boundary === period.end) transitionSchedule(store, sub, boundary, false);
    const { interval, count } = cycleOf(store, sub);
    if (interval !== cycleBefore.interval || count !== cycleBefore.count) {
      sub._anchor = period.end;
      sub._cycle = 0;
      sub.billing_cycle_anchor = period.end;
    } else {
      sub._cycle += 1;
    }
    const next = periodAt(sub._anchor, interval, count, sub._cycle);
    setPeriod(sub, next);
    const lines = [...sub._pending, ...licensedLines(store, sub, next, false).filter((l) => !isMeteredLine(l)), ...usage];
    sub._pending = [];
    const inv = invoiceFor(store, sub, lines, 'subscription_cycle', next);
    store.emit('customer.subscription.updated', sub, diff(before, store.render(sub)));
    if (inv.status === 'open') attemptInvoicePayment(store, inv, defaultPaymentMethod(store, sub));
  }
}

settlements.subscriptionInvoicePaid = onSubscriptionInvoicePaid;
settlements.subscriptionInvoiceFailed = onSubscriptionInvoiceFailed;

/** Moves every subscription forward to the emulator's current time. */
export function advanceAllSubscriptions(store: Store): void {
  for (const sub of [...store.table('subscription').values()]) advanceSubscription(store, sub);
}

