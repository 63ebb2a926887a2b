import { createHash, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { BillingError, ErrorCode } from '../../common/errors';
import { assertId } from '../../common/ids';
import type { Customer } from '../customers/customer.entity';
import { Subscription } from '../subscriptions/subscription.entity';
import { batcherFor, type UsageBatcher } from './usage-batch';

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
const DAY_MS = 24 * 3600_000;

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

export interface UsageSummaryInput {
  subscriptionId?: string | null;
  meter?: string | null;
  from?: Date | null;
  to?: Date | null;
}

export interface UsageSummary {
  subscriptionId: string;
  meter: string;
  from: Date;
  to: Date;
  total: number;
  pending: number;
  failed: number;
  lagSeconds: number | null;
  buckets: { date: string; total: number }[];
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

interface UsageRow {
  id: string;
  subscription_id: string;
  meter: string;
  quantity: number;
  occurred_at: Date;
  idempotency_key: string;
  request_hash: string;
}

/**
 * The usage ledger. `record` writes one row and answers only once it is committed; it never
 * talks to Stripe (the forwarder does, later), so a Stripe outage never loses or delays an
 * acknowledged event. Idempotency is enforced by the unique (customer, idempotency_key) index,
 * not by process memory, so it holds across instances and races.
 */
export class UsageService {
  private emSource: EntityManager | (() => EntityManager);

  constructor(
    /** The EntityManager, or a function that makes it on first use (the shared statement needs none). */
    em: EntityManager | (() => EntityManager),
    private readonly now: () => Date = () => new Date(),
    /** The shared statement for `recordForUser`; by default the one of `em`'s connection pool. */
    private readonly batcher?: UsageBatcher,
  ) {
    this.emSource = em;
  }

  private get em(): EntityManager {
    if (typeof this.emSource === 'function') this.emSource = this.emSource();
    return this.emSource;
  }

  /**
   * Records usage for the customer of user `userId` (the caller acting for itself). The common
   * case (a new event, or a retry of a recorded one) is one statement shared with concurrent
   * callers (see usage-batch.ts); anything else goes the general way of `record`, with the
   * customer from `loadCustomer`, so every refusal and its code are the same as there.
   *
   * `generatedKey` is the key to record under when the input has none, given by a caller that
   * already tried the shared statement under it (the HTTP fast path): a row written then is
   * found again, never written twice.
   */
  async recordForUser(
    userId: string,
    input: RecordUsageInput,
    options: { loadCustomer: () => Promise<Customer | null>; generatedKey?: string },
  ): Promise<UsageRecord> {
    const request = this.prepare(input, options.generatedKey);
    const shared = await this.recordShared(userId, request);
    if (shared) return shared;
    return this.recordPrepared(await options.loadCustomer(), request);
  }

  /**
   * The shared statement alone: the record, or null when the general path has to decide (nothing
   * was written; or the statement failed, and `request.keyMayExist` is then set). Throws only
   * IDEMPOTENCY_CONFLICT, for a key recorded earlier with different input.
   */
  async recordShared(userId: string, request: PreparedUsage): Promise<UsageRecord | null> {
    // A NUL character would fail the shared statement for every request in it; the general path
    // refuses such a meter on its own (no subscription has it) and never sends it to the database.
    const shareable = (request.subscriptionId !== null || request.meter !== null) && !request.meter?.includes('\u0000') && !userId.includes('\u0000');
    if (!shareable) return null;
    const id = randomUUID();
    const outcome = await (this.batcher ?? batcherFor(this.em, BILLING_STATUSES)).submit({
      id,
      userId,
      subscriptionId: request.subscriptionId,
      meter: request.meter,
      quantity: request.quantity,
      occurredAt: request.occurredAt,
      idempotencyKey: request.key,
      requestHash: request.requestHash,
    });
    if (outcome.kind === 'inserted') {
      return {
        id,
        subscriptionId: outcome.subscriptionId,
        meter: outcome.meter,
        quantity: request.quantity,
        occurredAt: request.occurredAt,
        idempotencyKey: request.key,
      };
    }
    if (outcome.kind === 'existing') return replay(outcome.row, request.requestHash);
    if (outcome.kind === 'failed') request.keyMayExist = true;
    return null;
  }

  async record(customer: Customer | null, input: RecordUsageInput): Promise<UsageRecord> {
    return this.recordPrepared(customer, this.prepare(input));
  }

  /**
   * Checks the input (throws BAD_USER_INPUT) and fixes what a retry of this request must reuse:
   * the key (the caller's, else `generatedKey`, else a new one) and the hash.
   */
  prepare(input: RecordUsageInput, generatedKey?: string): PreparedUsage {
    const quantity = checkQuantity(input.quantity);
    const now = this.now();
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

  private async recordPrepared(customer: Customer | null, request: PreparedUsage): Promise<UsageRecord> {
    const { quantity, occurredAt, key, requestHash } = request;
    // A new event (the common case) costs no lookup of its key first: the insert below finds a
    // retry through its conflict and answers with the first result.
    let billable: { subscription: Subscription; meter: string };
    try {
      billable = await this.resolveBillable(customer, request.subscriptionId, request.meter);
    } catch (error) {
      // A retry of a recorded event answers with the first result even when the subscription has
      // changed since (canceled, say): the event was acknowledged then.
      if (customer && request.keyMayExist) {
        const existing = await this.findByKey(customer.id, key);
        if (existing) return replay(existing, requestHash);
      }
      throw error;
    }
    const { subscription, meter: resolvedMeter } = billable;
    const inserted = await this.em.getConnection().execute<UsageRow[]>(
      `insert into usage_events
         (id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, state, attempts, next_attempt_at, created_at)
       values (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, now(), now())
       on conflict (customer_id, idempotency_key) do nothing
       returning id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash`,
      [randomUUID(), customer!.id, subscription.id, resolvedMeter, quantity, occurredAt, key, requestHash],
    );
    // The statement runs on its own (autocommit): when it returns, the row is durable.
    if (inserted.length) return toRecord(inserted[0]);

    // A concurrent request with the same key won the insert; answer with its row.
    const winner = await this.findByKey(customer!.id, key);
    if (!winner) throw new BillingError(ErrorCode.INTERNAL_SERVER_ERROR, 'Usage event vanished after an idempotency conflict');
    return replay(winner, requestHash);
  }

  async summary(customer: Customer | null, input: UsageSummaryInput): Promise<UsageSummary> {
    if (input.subscriptionId) assertId(input.subscriptionId, 'subscriptionId');
    const { subscription, meter } = await this.resolveMetered(customer, input.subscriptionId ?? null, input.meter ?? null, false);
    const now = this.now();
    const to = input.to ?? (input.from ? null : subscription.currentPeriodEnd) ?? now;
    const from = input.from ?? (input.to ? null : subscription.currentPeriodStart) ?? new Date(to.getTime() - 30 * DAY_MS);
    if (!(from < to)) throw BillingError.badInput('from must be before to', 'from');
    if (to.getTime() - from.getTime() > MAX_SUMMARY_DAYS * DAY_MS) {
      throw BillingError.badInput(`The period may span at most ${MAX_SUMMARY_DAYS} days`, 'from');
    }

    const conn = this.em.getConnection();
    const [totals] = await conn.execute<{ total: number; pending: number; failed: number; oldest_pending: Date | null }[]>(
      `select coalesce(sum(quantity) filter (where state <> 'failed' and occurred_at >= ? and occurred_at < ?), 0)::float8 as total,
              coalesce(sum(quantity) filter (where state = 'pending' and occurred_at >= ? and occurred_at < ?), 0)::float8 as pending,
              coalesce(sum(quantity) filter (where state = 'failed' and occurred_at >= ? and occurred_at < ?), 0)::float8 as failed,
              min(created_at) filter (where state = 'pending') as oldest_pending
         from usage_events where subscription_id = ? and meter = ?`,
      [from, to, from, to, from, to, subscription.id, meter],
    );
    const days = await conn.execute<{ day: string; total: number }[]>(
      `select to_char(date_trunc('day', occurred_at at time zone 'UTC'), 'YYYY-MM-DD') as day, sum(quantity)::float8 as total
         from usage_events
        where subscription_id = ? and meter = ? and state <> 'failed' and occurred_at >= ? and occurred_at < ?
        group by 1`,
      [subscription.id, meter, from, to],
    );
    const byDay = new Map(days.map((d) => [d.day, Number(d.total)]));
    const buckets: { date: string; total: number }[] = [];
    for (let day = startOfUtcDay(from); day < to.getTime(); day += DAY_MS) {
      const date = new Date(day).toISOString().slice(0, 10);
      buckets.push({ date, total: byDay.get(date) ?? 0 });
    }
    const oldest = totals.oldest_pending ? new Date(totals.oldest_pending) : null;
    return {
      subscriptionId: subscription.id,
      meter,
      from,
      to,
      total: Number(totals.total),
      pending: Number(totals.pending),
      failed: Number(totals.failed),
      lagSeconds: oldest ? Math.max(0, (now.getTime() - oldest.getTime()) / 1000) : null,
      buckets,
    };
  }

  // ---- helpers ------------------------------------------------------------------------------

  private async findByKey(customerId: string, key: string): Promise<UsageRow | null> {
    const rows = await this.em.getConnection().execute<UsageRow[]>(
      `select id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash
         from usage_events where customer_id = ? and idempotency_key = ?`,
      [customerId, key],
    );
    return rows[0] ?? null;
  }

  /** A subscription of `customer` that bills usage on the meter right now. */
  private async resolveBillable(customer: Customer | null, subscriptionId: string | null, meter: string | null) {
    const resolved = await this.resolveMetered(customer, subscriptionId, meter, true);
    if (!BILLING_STATUSES.includes(resolved.subscription.status)) {
      throw new BillingError(ErrorCode.CONFLICT, `Usage cannot be recorded on a ${resolved.subscription.status} subscription`);
    }
    return resolved;
  }

  private async hasUsage(subscriptionId: string, meter: string): Promise<boolean> {
    const rows = await this.em.execute(`select 1 from usage_events where subscription_id = ? and meter = ? limit 1`, [subscriptionId, meter]);
    return rows.length > 0;
  }

  /**
   * The subscription and meter a request is about. With an id: that subscription (the caller's,
   * else NOT_FOUND) and its metered item on `meter` (or its only metered item). With a meter
   * only: the caller's one subscription in a billing status that has it.
   */
  private async resolveMetered(
    customer: Customer | null,
    subscriptionId: string | null,
    meter: string | null,
    billingOnly: boolean,
  ): Promise<{ subscription: Subscription; meter: string }> {
    if (subscriptionId) {
      const subscription = customer ? await this.em.findOne(Subscription, { id: subscriptionId, customer: customer.id }) : null;
      if (!subscription) throw BillingError.notFound('Subscription');
      const meters = [...new Set(subscription.items.map((i) => i.meter).filter((m): m is string => Boolean(m)))];
      if (meter !== null) {
        // Reading keeps working for a meter the plan had before a change: its usage stays visible.
        const known = meters.includes(meter) || (!billingOnly && (await this.hasUsage(subscription.id, meter)));
        if (!known) throw BillingError.badInput(`This subscription has no metered price on "${meter}"`, 'meter');
        return { subscription, meter };
      }
      if (meters.length === 0) throw BillingError.badInput('This subscription has no metered price', 'subscriptionId');
      if (meters.length > 1) throw BillingError.badInput(`This subscription has several meters (${meters.join(', ')}): give meter`, 'meter');
      return { subscription, meter: meters[0] };
    }
    if (meter === null) throw BillingError.badInput('Give a subscriptionId or a meter', 'subscriptionId');
    const candidates = customer
      ? await this.em.find(
          Subscription,
          { customer: customer.id, ...(billingOnly ? { status: { $in: BILLING_STATUSES } } : {}) },
          { orderBy: { createdAt: 'desc', id: 'asc' } },
        )
      : [];
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

function replay(row: Omit<UsageRow, 'occurred_at'> & { occurred_at: Date | string }, requestHash: string): UsageRecord {
  if (row.request_hash !== requestHash) {
    throw new BillingError(ErrorCode.IDEMPOTENCY_CONFLICT, 'This idempotencyKey was already used for different usage');
  }
  return toRecord(row);
}

function toRecord(row: Omit<UsageRow, 'occurred_at'> & { occurred_at: Date | string }): UsageRecord {
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    meter: row.meter,
    quantity: Number(row.quantity),
    occurredAt: new Date(row.occurred_at),
    idempotencyKey: row.idempotency_key,
  };
}

function startOfUtcDay(date: Date): number {
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
}
