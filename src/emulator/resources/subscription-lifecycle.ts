/**
 * What the clock and payments drive: activation when an invoice is paid, past_due when it
 * fails, pending updates applied on payment (or expired), renewals, trial ends, scheduled
 * cancellations, incomplete expiry and subscription schedule phase transitions.
 */
import { periodAt } from '../periods';
import type { Obj, Store } from '../store';
import { diff } from './customers';
import type { LineSpec } from './invoice-lines';
import { attemptInvoicePayment } from './invoice-payments';
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
import { dunningOf } from './dunning-settings';

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
  if (inv.billing_reason === 'subscription_create') return;
  // A renewal in progress reports the failure in its own customer.subscription.updated.
  if (sub._renewing) {
    sub._renewalFailed = inv.id;
    return;
  }
  if (sub.status === 'active' || sub.status === 'trialing') {
    const prev = { status: sub.status };
    sub.status = 'past_due';
    store.emit('customer.subscription.updated', sub, prev);
  }
  afterLastRetry(store, sub, inv);
}

/** The retry schedule ran out on the subscription's latest invoice: cancel, unpaid, or left past_due (settings). */
function afterLastRetry(store: Store, sub: Obj, inv: Obj): void {
  if (!inv._retries_exhausted || sub.latest_invoice !== inv.id || ENDED.includes(sub.status)) return;
  delete inv._retries_exhausted;
  const { afterLast } = dunningOf(store);
  if (afterLast === 'cancel') {
    sub.cancellation_details = { ...sub.cancellation_details, reason: 'payment_failed' };
    finishCancel(store, sub, store.now(), 'payment_failed', false);
  } else if (afterLast === 'unpaid' && sub.status !== 'unpaid') {
    const prev = { status: sub.status };
    sub.status = 'unpaid';
    store.emit('customer.subscription.updated', sub, prev);
  }
}

/**
 * Runs a renewal or trial end: the invoice's events come first, then one
 * customer.subscription.updated with every change (new period, and past_due when the payment
 * failed), then what the retry schedule says when it has run out.
 */
function renewing(store: Store, sub: Obj, before: Obj, fn: () => void): void {
  sub._renewing = true;
  try {
    fn();
  } finally {
    delete sub._renewing;
  }
  const failed = sub._renewalFailed ? store.get('invoice', sub._renewalFailed) : undefined;
  delete sub._renewalFailed;
  if (failed && (sub.status === 'active' || sub.status === 'trialing')) sub.status = 'past_due';
  if (!ENDED.includes(sub.status)) {
    const prev = diff(before, store.render(sub));
    if (Object.keys(prev).length) store.emit('customer.subscription.updated', sub, prev);
  }
  if (failed) afterLastRetry(store, sub, failed);
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
  renewing(store, sub, before, () => startCycle(store, sub, at, 'subscription_cycle'));
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
    renewing(store, sub, before, () => {
      const inv = invoiceFor(store, sub, lines, 'subscription_cycle', next, sub.status === 'unpaid');
      if (inv.status === 'open' && sub.status !== 'unpaid') attemptInvoicePayment(store, inv, defaultPaymentMethod(store, sub));
    });
  }
}

settlements.subscriptionInvoicePaid = onSubscriptionInvoicePaid;
settlements.subscriptionInvoiceFailed = onSubscriptionInvoiceFailed;

/**
 * The first moment at which something happens to the subscription by itself (what
 * advanceSubscription acts on): a renewal, trial_will_end, a cancellation, a schedule phase, an
 * expiry. Null when nothing ever will.
 */
export function nextDueAt(store: Store, sub: Obj): number | null {
  if (ENDED.includes(sub.status) || sub.status === 'paused') return null;
  if (sub.status === 'incomplete') return sub.created + INCOMPLETE_WINDOW;
  const times = [currentPeriod(sub).end];
  if (sub.status === 'trialing' && !sub._trialWillEndSent && sub.trial_end) times.push(sub.trial_end - 3 * 86400);
  if (sub.cancel_at) times.push(sub.cancel_at);
  if (sub.pending_update) times.push(sub.pending_update.expires_at);
  const boundary = dueScheduleBoundary(store, sub, Number.MAX_SAFE_INTEGER);
  if (boundary !== null) times.push(boundary);
  return Math.min(...times);
}
