/**
 * The retry schedule for failed subscription payments (Stripe's "custom retry schedule" in the
 * Billing settings) and the invoice fields it drives: `attempt_count` and `next_payment_attempt`.
 */
import type { Obj, Store } from '../store';

/** What happens to the subscription once the last retry failed (Stripe's "subscription status" setting). */
export type AfterLastRetry = 'cancel' | 'unpaid' | 'past_due';

export interface DunningSettings {
  /** Days after the previous attempt at which each retry runs; its length is the number of retries. */
  retryDays: number[];
  afterLast: AfterLastRetry;
}

/**
 * Stripe's default custom schedule: the first attempt and three retries 3, 5 and 7 days after
 * the previous one (four attempts over fifteen days), then the subscription is canceled.
 */
export const DEFAULT_DUNNING: DunningSettings = { retryDays: [3, 5, 7], afterLast: 'cancel' };

const settingsOf = new WeakMap<Store, DunningSettings>();

export function setDunning(store: Store, settings: Partial<DunningSettings> | undefined): void {
  const retryDays = settings?.retryDays ?? DEFAULT_DUNNING.retryDays;
  if (!retryDays.every((d) => Number.isFinite(d) && d > 0)) throw new Error('dunning.retryDays must be positive numbers of days');
  const afterLast = settings?.afterLast ?? DEFAULT_DUNNING.afterLast;
  if (!['cancel', 'unpaid', 'past_due'].includes(afterLast)) throw new Error(`dunning.afterLast must be cancel, unpaid or past_due, not ${String(afterLast)}`);
  settingsOf.set(store, { retryDays: [...retryDays], afterLast });
}

export function dunningOf(store: Store): DunningSettings {
  return settingsOf.get(store) ?? DEFAULT_DUNNING;
}

/** Invoices the schedule retries: a subscription's renewals and updates, charged automatically. */
export function isRetried(inv: Obj): boolean {
  return (
    inv.collection_method === 'charge_automatically' &&
    !!inv.parent?.subscription_details &&
    inv.billing_reason !== 'subscription_create' &&
    !inv._pending_update
  );
}

/**
 * Records a failed attempt on the invoice, as Stripe counts them: the first attempt (automatic or
 * not) and each automatic retry add one to `attempt_count`; a manual attempt after the first
 * leaves the count and the schedule alone. Schedules the next retry in `next_payment_attempt`,
 * or clears it (and marks the schedule exhausted) after the last.
 */
export function recordFailedAttempt(store: Store, inv: Obj, manual: boolean): void {
  inv.attempted = true;
  if (manual && inv.attempt_count > 0) return;
  inv.attempt_count += 1;
  if (!isRetried(inv)) return;
  const { retryDays } = dunningOf(store);
  const retry = inv.attempt_count - 1;
  if (retry < retryDays.length) {
    inv.next_payment_attempt = store.now() + Math.round(retryDays[retry] * 86400);
  } else {
    inv.next_payment_attempt = null;
    inv._retries_exhausted = true;
  }
}
