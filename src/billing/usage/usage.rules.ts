import { createHash, randomUUID } from 'node:crypto';
import { BillingError, ErrorCode } from '../../common/errors';
import { assertId } from '../../common/ids';
import type { LedgerRow, MeteredSubscription } from './usage-ledger.repository';

/**
 * The rules of the usage ledger, free of I/O: what a usage event may be, which subscription and
 * meter it is recorded on, and what a retry answers. `recordUsage` and `recordUsageBatch` both
 * go through these, so an event gets the same answer whichever way it is sent.
 */

/** Statuses in which Stripe bills metered usage on a subscription. */
export const BILLING_STATUSES = ['active', 'trialing', 'past_due'];

/** Far above any real per-event quantity; stops typos such as a timestamp sent as quantity. */
export const MAX_USAGE_QUANTITY = 1e9;
/** Stripe accepts meter events up to 35 days old ... */
export const MAX_USAGE_AGE_MS = 35 * 24 * 3600_000;
/** ... and up to 5 minutes in the future. */
export const MAX_USAGE_AHEAD_MS = 5 * 60_000;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;
/** Daily buckets are returned for every day of the period, so the period is bounded. */
export const MAX_SUMMARY_DAYS = 400;
/** Events in one recordUsageBatch request at most. */
export const MAX_BATCH_EVENTS = 1000;

export interface RecordUsageInput {
  subscriptionId?: string | null;
  meter?: string | null;
  quantity: number;
  occurredAt?: Date | null;
  idempotencyKey?: string | null;
}

export interface UsageRecord {
  id: string;
  subscriptionId: string;
  meter: string;
  quantity: number;
  occurredAt: Date;
  idempotencyKey: string;
}

/** A request after its checks, with the key it is recorded under. */
export interface PreparedUsage {
  subscriptionId: string | null;
  meter: string | null;
  quantity: number;
  occurredAt: Date;
  key: string;
  /** Whether a row may exist under `key` already: the caller's own key, or a shared statement that failed. */
  keyMayExist: boolean;
  requestHash: string;
}

export function checkQuantity(quantity: number): number {
  if (typeof quantity !== 'number' || !Number.isFinite(quantity) || quantity <= 0 || quantity > MAX_USAGE_QUANTITY) {
    throw BillingError.badInput(`quantity must be a positive number of at most ${MAX_USAGE_QUANTITY}`, 'quantity');
  }
  return quantity;
}

export function checkOccurredAt(occurredAt: Date, now: Date): void {
  const t = occurredAt.getTime();
  if (!Number.isFinite(t)) throw BillingError.badInput('occurredAt is not a valid time', 'occurredAt');
  if (t < now.getTime() - MAX_USAGE_AGE_MS) throw BillingError.badInput('occurredAt may be at most 35 days ago', 'occurredAt');
  if (t > now.getTime() + MAX_USAGE_AHEAD_MS) throw BillingError.badInput('occurredAt may be at most 5 minutes ahead', 'occurredAt');
}

export function hashRequest(value: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/**
 * Checks the input (throws BAD_USER_INPUT) and fixes what a retry of this request must reuse:
 * the key (the caller's, else `generatedKey`, else a new one) and the hash.
 */
export function prepareUsage(input: RecordUsageInput, now: Date, generatedKey?: string): PreparedUsage {
  const quantity = checkQuantity(input.quantity);
  const occurredAt = input.occurredAt ?? now;
  checkOccurredAt(occurredAt, now);
  if (input.subscriptionId) assertId(input.subscriptionId, 'subscriptionId');
  const meter = input.meter ?? null;
  if (meter !== null && (meter.length < 1 || meter.length > 100)) throw BillingError.badInput('meter must be 1 to 100 characters', 'meter');
  const clientKey = input.idempotencyKey ?? null;
  if (clientKey !== null && (clientKey.length < 1 || clientKey.length > MAX_IDEMPOTENCY_KEY_LENGTH)) {
    throw BillingError.badInput(`idempotencyKey must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`, 'idempotencyKey');
  }
  // PostgreSQL text cannot hold NUL; the key is stored, so it is refused here rather than by the database.
  if (clientKey !== null && clientKey.includes('\u0000')) throw BillingError.badInput('idempotencyKey may not contain NUL characters', 'idempotencyKey');
  // The hash covers the input as the caller sent it: a retry that again leaves occurredAt out
  // is the same request, although "now" has moved on.
  const requestHash = hashRequest({
    subscriptionId: input.subscriptionId ?? null,
    meter,
    quantity,
    occurredAt: input.occurredAt ? input.occurredAt.toISOString() : null,
  });
  return {
    subscriptionId: input.subscriptionId || null,
    meter,
    quantity,
    occurredAt,
    // Without a key from the caller, one is generated here, once: when the shared statement
    // failed without telling whether it committed, the general path retries under the same
    // key and finds the row instead of writing a second one.
    key: clientKey ?? generatedKey ?? randomUUID(),
    keyMayExist: clientKey !== null || generatedKey !== undefined,
    requestHash,
  };
}

/**
 * The subscription and meter a request is about, among `subscriptions` (all of the caller's, or
 * the one with the requested id; newest first). With an id: that subscription (else NOT_FOUND)
 * and its metered item on `meter` (or its only metered item). With a meter only: the caller's
 * one subscription that has it (in a billing status when `billingOnly`).
 */
export function resolveMetered<S extends MeteredSubscription>(
  subscriptions: readonly S[],
  subscriptionId: string | null,
  meter: string | null,
  billingOnly: boolean,
): { subscription: S; meter: string } {
  if (subscriptionId) {
    const subscription = subscriptions.find((s) => s.id === subscriptionId);
    if (!subscription) throw BillingError.notFound('Subscription');
    const meters = [...new Set(subscription.items.map((i) => i.meter).filter((m): m is string => Boolean(m)))];
    if (meter !== null) {
      if (!meters.includes(meter)) throw BillingError.badInput(`This subscription has no metered price on "${meter}"`, 'meter');
      return { subscription, meter };
    }
    if (meters.length === 0) throw BillingError.badInput('This subscription has no metered price', 'subscriptionId');
    if (meters.length > 1) throw BillingError.badInput(`This subscription has several meters (${meters.join(', ')}): give meter`, 'meter');
    return { subscription, meter: meters[0] };
  }
  if (meter === null) throw BillingError.badInput('Give a subscriptionId or a meter', 'subscriptionId');
  const candidates = billingOnly ? subscriptions.filter((s) => BILLING_STATUSES.includes(s.status)) : subscriptions;
  let matching = candidates.filter((s) => s.items.some((i) => i.meter === meter));
  if (!billingOnly && matching.length > 1) {
    // For reading, prefer the subscription that bills now over past ones.
    const live = matching.filter((s) => BILLING_STATUSES.includes(s.status));
    matching = live.length ? live : matching.slice(0, 1);
  }
  if (matching.length === 0) throw new BillingError(ErrorCode.NOT_FOUND, `No subscription with a metered price on "${meter}" found`);
  if (matching.length > 1) throw BillingError.badInput(`Several subscriptions bill "${meter}": give subscriptionId`, 'subscriptionId');
  return { subscription: matching[0], meter };
}

/** As resolveMetered, for recording: the subscription must bill usage right now. */
export function resolveBillable<S extends MeteredSubscription>(subscriptions: readonly S[], subscriptionId: string | null, meter: string | null) {
  const resolved = resolveMetered(subscriptions, subscriptionId, meter, true);
  if (!BILLING_STATUSES.includes(resolved.subscription.status)) {
    throw new BillingError(ErrorCode.CONFLICT, `Usage cannot be recorded on a ${resolved.subscription.status} subscription`);
  }
  return resolved;
}

/** The answer to a retry: the first result, or IDEMPOTENCY_CONFLICT when the key was used for other input. */
export function replay(row: LedgerRow, requestHash: string): UsageRecord {
  if (row.request_hash !== requestHash) {
    throw new BillingError(ErrorCode.IDEMPOTENCY_CONFLICT, 'This idempotencyKey was already used for different usage');
  }
  return toRecord(row);
}

export function toRecord(row: Omit<LedgerRow, 'request_hash'>): UsageRecord {
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    meter: row.meter,
    quantity: Number(row.quantity),
    occurredAt: new Date(row.occurred_at),
    idempotencyKey: row.idempotency_key,
  };
}

/** The billing period a limit counts: the subscription's current one, or the UTC calendar month when it has none. */
export function limitPeriod(subscription: Pick<MeteredSubscription, 'currentPeriodStart' | 'currentPeriodEnd'>, now: Date): { start: Date; end: Date } {
  if (subscription.currentPeriodStart && subscription.currentPeriodEnd) return { start: subscription.currentPeriodStart, end: subscription.currentPeriodEnd };
  return { start: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)), end: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)) };
}
