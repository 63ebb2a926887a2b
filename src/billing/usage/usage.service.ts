import { randomUUID } from 'node:crypto';
import { usageRecorded } from './usage-recorded.signal';
import type { EntityManager } from '@mikro-orm/postgresql';
import { BillingError, ErrorCode } from '../../common/errors';
import { KeyedGroupCommit } from '../../common/group-commit';
import { assertId } from '../../common/ids';
import type { Customer } from '../customers/customer.entity';
import { batcherFor, type UsageBatcher } from './usage-batch';
import { UsageLedgerRepository, type MeteredSubscription, type NewLedgerRow } from './usage-ledger.repository';
import { UsageLimitRepository, type SubscriptionLimit } from './usage-limit.repository';
import {
  BILLING_STATUSES,
  limitPeriod,
  MAX_BATCH_EVENTS,
  MAX_SUMMARY_DAYS,
  prepareUsage,
  replay,
  resolveBillable,
  resolveMetered,
  toRecord,
  type PreparedUsage,
  type RecordUsageInput,
  type UsageRecord,
} from './usage.rules';

export {
  BILLING_STATUSES,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MAX_SUMMARY_DAYS,
  MAX_USAGE_AGE_MS,
  MAX_USAGE_AHEAD_MS,
  MAX_USAGE_QUANTITY,
  checkOccurredAt,
  checkQuantity,
  hashRequest,
  type PreparedUsage,
  type RecordUsageInput,
  type UsageRecord,
} from './usage.rules';

const DAY_MS = 24 * 3600_000;

/** What routing a request needs to know of a limit. */
type LimitHint = Pick<SubscriptionLimit, 'subscriptionId' | 'meter' | 'kind'>;

/**
 * Whether a hard limit among `limits` may apply to the request. Only a shortcut: the shared
 * statement itself passes on usage under a hard limit, and the general path decides everything
 * again from the database.
 */
function mayBeHardLimited(request: PreparedUsage, limits: readonly LimitHint[]): boolean {
  return limits.some((l) => l.kind === 'hard' && (request.subscriptionId ? l.subscriptionId === request.subscriptionId : l.meter === request.meter));
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

/** The outcome of one event of a batch: its record (new or replayed), or why it was refused. */
export type BatchEventResult =
  | { index: number; status: 'recorded' | 'replayed'; record: UsageRecord }
  | { index: number; status: 'failed'; error: BillingError };

/** The outcome of recording one event. */
type RecordOutcome = { status: 'recorded' | 'replayed'; record: UsageRecord } | { status: 'failed'; error: BillingError };

/** The customer usage is recorded for: only its id is needed. */
export type CustomerRef = Pick<Customer, 'id'>;

/** A single event on its way through the general path, with the time it was received in. */
interface GeneralRequest {
  customer: CustomerRef;
  request: PreparedUsage;
  now: Date;
}

const generalPaths = new WeakMap<object, KeyedGroupCommit<GeneralRequest, RecordOutcome>>();

/**
 * The general path of single events, shared by the concurrent requests of one customer (one per
 * connection pool, like the shared statement): requests that arrive while one of the customer's
 * groups is being recorded wait and go together in the next, through the same code as a
 * `recordUsageBatch` of them, so they cost one read of the customer's subscriptions and, under a
 * hard limit, one locked transaction instead of one each. Each request is answered as if sent
 * alone, in arrival order.
 */
export function generalPathFor(em: EntityManager): KeyedGroupCommit<GeneralRequest, RecordOutcome> {
  const connection = em.getConnection();
  let path = generalPaths.get(connection);
  if (!path) {
    // Its own EntityManager, for the pool only (the ledger's statements are plain SQL): never a request's.
    const own = em.fork({ clear: true });
    path = new KeyedGroupCommit(
      (_customerId, items) => new UsageService(own, () => items[0].now).recordGroup(items[0].customer, items.map((i) => i.request)),
      { maxInFlight: 1, maxBatch: MAX_BATCH_EVENTS, gatherTurn: true },
    );
    generalPaths.set(connection, path);
  }
  return path;
}

/**
 * The usage ledger. Recording writes rows and answers only once they are committed; it never
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
    /** The general path of single events; by default the one of `em`'s connection pool. */
    private readonly generalPath?: KeyedGroupCommit<GeneralRequest, RecordOutcome>,
  ) {
    this.emSource = em;
  }

  private get em(): EntityManager {
    if (typeof this.emSource === 'function') this.emSource = this.emSource();
    return this.emSource;
  }

  private get ledger(): UsageLedgerRepository {
    return new UsageLedgerRepository(this.em);
  }

  /**
   * Records usage for the customer of user `userId` (the caller acting for itself). The common
   * case (a new event, or a retry of a recorded one) is one statement shared with concurrent
   * callers (see usage-batch.ts); anything else goes the general way of `record`, with the
   * customer from `loadCustomer`, so every refusal and its code are the same as there.
   *
   * `generatedKey` is the key to record under when the input has none, given by a caller that
   * already tried the shared statement under it: a row written then is found again, never
   * written twice.
   */
  async recordForUser(
    userId: string,
    input: RecordUsageInput,
    options: {
      loadCustomer: () => Promise<CustomerRef | null>;
      /**
       * The limits of the customer's plans as far as known (a cache; at once when it holds them):
       * usage that a hard limit may apply to skips the shared statement, which would only pass it on.
       */
      limits?: () => readonly LimitHint[] | Promise<readonly LimitHint[]>;
      generatedKey?: string;
    },
  ): Promise<UsageRecord> {
    const request = this.prepare(input, options.generatedKey);
    const limits = options.limits?.();
    if (!(limits && mayBeHardLimited(request, limits instanceof Promise ? await limits : limits))) {
      const shared = await this.recordShared(userId, request);
      if (shared) return shared;
    }
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

  async record(customer: CustomerRef | null, input: RecordUsageInput): Promise<UsageRecord> {
    return this.recordPrepared(customer, this.prepare(input));
  }

  /** See prepareUsage. */
  prepare(input: RecordUsageInput, generatedKey?: string): PreparedUsage {
    return prepareUsage(input, this.now(), generatedKey);
  }

  /**
   * A single event is recorded as one of a batch: the same checks, statement and answers, in a
   * group with the customer's other events of the moment (generalPathFor).
   */
  private async recordPrepared(customer: CustomerRef | null, request: PreparedUsage): Promise<UsageRecord> {
    const result = customer
      ? await (this.generalPath ?? generalPathFor(this.em)).submit(customer.id, { customer, request, now: this.now() })
      : (await this.recordAll(null, [request]))[0];
    if (result.status === 'failed') throw result.error;
    return result.record;
  }

  /** Records single events of one customer together, each answered as if sent alone, in order. */
  recordGroup(customer: CustomerRef, requests: readonly PreparedUsage[]): Promise<RecordOutcome[]> {
    return this.recordAll(customer, requests);
  }

  /**
   * Records up to MAX_BATCH_EVENTS events in one insert statement. Each event gets its own
   * result, in input order: recorded, replayed (its key was recorded with the same input,
   * earlier or by an earlier event of this batch), or failed with the code the same event would
   * get from recordUsage. A bad event never fails the others; an event either is in the ledger
   * or is answered with an error, never half.
   */
  async recordBatch<T extends RecordUsageInput>(
    customer: CustomerRef | null,
    inputs: readonly T[],
    /** A caller's own check of each event (an error refuses that event only). */
    refuse: (input: T) => BillingError | null = () => null,
  ): Promise<BatchEventResult[]> {
    if (inputs.length === 0) throw BillingError.badInput('events may not be empty', 'events');
    if (inputs.length > MAX_BATCH_EVENTS) throw BillingError.badInput(`At most ${MAX_BATCH_EVENTS} events a batch`, 'events');
    const now = this.now();
    const results = new Array<BatchEventResult>(inputs.length);
    const prepared: { index: number; request: PreparedUsage }[] = [];
    inputs.forEach((input, index) => {
      try {
        const refusal = refuse(input);
        if (refusal) throw refusal;
        prepared.push({ index, request: prepareUsage(input, now) });
      } catch (error) {
        if (!(error instanceof BillingError)) throw error;
        results[index] = { index, status: 'failed', error };
      }
    });
    const outcomes = await this.recordAll(
      customer,
      prepared.map((p) => p.request),
    );
    outcomes.forEach((outcome, i) => {
      const index = prepared[i].index;
      results[index] = { ...outcome, index };
    });
    return results;
  }

  /**
   * Reads the customer's subscriptions (only the one every request names, if they all name one)
   * and the limits of all its subscriptions' plans, both at once; resolves each request among those subscriptions,
   * inserts the resolvable ones in one statement (those under a hard limit through
   * recordUnderLimits), and answers the rest from the rows already under their keys.
   */
  private async recordAll(customer: CustomerRef | null, requests: readonly PreparedUsage[]): Promise<RecordOutcome[]> {
    const named = new Set(requests.map((r) => r.subscriptionId));
    const [subscriptions, limits] =
      customer && requests.length
        ? await Promise.all([
            this.subscriptionsOf(customer, named.size === 1 ? [...named][0] : null),
            new UsageLimitRepository(this.em).definitionsOf(customer.id, null),
          ])
        : [[], []];
    const outcomes = new Array<RecordOutcome>(requests.length);
    const rows: (NewLedgerRow | null)[] = requests.map((request, i) => {
      try {
        const { subscription, meter } = resolveBillable(subscriptions, request.subscriptionId, request.meter);
        return {
          id: randomUUID(),
          customerId: customer!.id,
          subscriptionId: subscription.id,
          meter,
          quantity: request.quantity,
          occurredAt: request.occurredAt,
          idempotencyKey: request.key,
          requestHash: request.requestHash,
        };
      } catch (error) {
        if (!(error instanceof BillingError)) throw error;
        outcomes[i] = { status: 'failed', error };
        return null;
      }
    });
    const ledger = this.ledger;
    const refused = await this.recordUnderLimits(customer, subscriptions, rows, outcomes, limits);
    const inserted = await ledger.insert(rows.filter((r): r is NewLedgerRow => r !== null && !refused.limited.has(r.id)));
    for (const id of refused.inserted) inserted.add(id);
    if (inserted.size) usageRecorded();
    // The statement runs on its own (autocommit): when it returns, the rows are durable.
    // Requests that inserted nothing may have a row under their key: a retry, an earlier event of
    // this batch with the same key, or (for a request that failed to resolve) an event that was
    // acknowledged before its subscription changed, which is answered with its first result.
    const open = requests
      .map((request, i) => ({ request, i, row: rows[i] }))
      .filter(({ request, row }) => (row ? !inserted.has(row.id) : request.keyMayExist));
    const insertedAt = new Map<string, number>();
    rows.forEach((row, i) => {
      if (row && inserted.has(row.id)) insertedAt.set(row.id, i);
    });
    const existing = customer && open.length ? await ledger.findByKeys(customer.id, open.map((o) => o.request.key)) : new Map();
    requests.forEach((request, i) => {
      const row = rows[i];
      if (refused.indexes.has(i)) return;
      if (row && inserted.has(row.id)) {
        outcomes[i] = { status: 'recorded', record: toRecord({ id: row.id, subscription_id: row.subscriptionId, meter: row.meter, quantity: row.quantity, occurred_at: row.occurredAt, idempotency_key: row.idempotencyKey }) };
        return;
      }
      const found = existing.get(request.key);
      // Events are answered as if sent one by one in input order: a row a later event of this
      // batch wrote did not exist yet for this one.
      if (!row && found && (insertedAt.get(found.id) ?? -1) > i) return;
      if (!found) {
        if (row) outcomes[i] = { status: 'failed', error: new BillingError(ErrorCode.INTERNAL_SERVER_ERROR, 'Usage event vanished after an idempotency conflict') };
        return;
      }
      try {
        outcomes[i] = { status: 'replayed', record: replay(found, request.requestHash) };
      } catch (error) {
        if (!(error instanceof BillingError)) throw error;
        outcomes[i] = { status: 'failed', error };
      }
    });
    return outcomes;
  }

  /**
   * Records the rows on a meter with a hard limit in their subscription's current plan, each
   * (subscription, meter) in its own short locked transaction (see UsageLimitRepository), and
   * fails the events that do not fit with USAGE_LIMIT_EXCEEDED. Returns which rows it handled
   * (the caller inserts the others the usual way), which it inserted, and the indexes it refused.
   */
  private async recordUnderLimits(
    customer: CustomerRef | null,
    subscriptions: readonly MeteredSubscription[],
    rows: readonly (NewLedgerRow | null)[],
    outcomes: RecordOutcome[],
    /** The limits of the customer's plans. */
    limits: readonly SubscriptionLimit[],
  ): Promise<{ limited: Set<string>; inserted: Set<string>; indexes: Set<number> }> {
    const result = { limited: new Set<string>(), inserted: new Set<string>(), indexes: new Set<number>() };
    const present = rows.filter((r): r is NewLedgerRow => r !== null);
    if (!customer || present.length === 0) return result;
    const repository = new UsageLimitRepository(this.em);
    const hard = limits.filter((l) => l.kind === 'hard');
    if (hard.length === 0) return result;
    const now = this.now();
    const groups = new Map<string, { limit: SubscriptionLimit; items: { row: NewLedgerRow; index: number }[] }>();
    rows.forEach((row, index) => {
      if (!row) return;
      const limit = hard.find((l) => l.subscriptionId === row.subscriptionId && l.meter === row.meter);
      if (!limit) return;
      result.limited.add(row.id);
      const key = `${row.subscriptionId}\u0000${row.meter}`;
      const group = groups.get(key) ?? { limit, items: [] };
      group.items.push({ row, index });
      groups.set(key, group);
    });
    for (const { limit, items } of groups.values()) {
      const subscription = subscriptions.find((s) => s.id === limit.subscriptionId)!;
      const period = limitPeriod(subscription, now);
      // Usage is counted from the period's start: an event dated earlier would land in a closed
      // period and escape the limit, so it is refused.
      const inPeriod = items.filter(({ row, index }) => {
        if (row.occurredAt >= period.start) return true;
        result.indexes.add(index);
        outcomes[index] = { status: 'failed', error: BillingError.badInput(`occurredAt is before the current billing period, which the limit on "${row.meter}" counts`, 'occurredAt') };
        return false;
      });
      const done = await repository.insertUnderLimit(customer.id, limit.subscriptionId, limit.meter, period.start, limit.limit, inPeriod.map((i) => i.row));
      for (const id of done.inserted) result.inserted.add(id);
      for (const { row, index } of inPeriod) {
        const used = done.refused.get(row.id);
        if (used === undefined) continue;
        result.indexes.add(index);
        outcomes[index] = {
          status: 'failed',
          error: new BillingError(ErrorCode.USAGE_LIMIT_EXCEEDED, `The plan allows ${limit.limit} of "${limit.meter}" per billing period; ${used} used, ${row.quantity} more would exceed it`, {
            limit: limit.limit,
            used,
            resetsAt: period.end.toISOString(),
          }),
        };
      }
    }
    return result;
  }

  /** As resolveMetered for reading; a meter the plan had before a change stays readable while it has usage. */
  private async resolveForReading(subscriptions: MeteredSubscription[], subscriptionId: string | null, meter: string | null) {
    const byId = subscriptionId ? subscriptions.find((s) => s.id === subscriptionId) : undefined;
    if (byId && meter !== null && !byId.items.some((i) => i.meter === meter) && (await this.ledger.hasUsage(byId.id, meter))) {
      return { subscription: byId, meter };
    }
    return resolveMetered(subscriptions, subscriptionId, meter, false);
  }

  async summary(customer: Customer | null, input: UsageSummaryInput): Promise<UsageSummary> {
    if (input.subscriptionId) assertId(input.subscriptionId, 'subscriptionId');
    const subscriptionId = input.subscriptionId ?? null;
    const subscriptions = customer ? await this.subscriptionsOf(customer, subscriptionId) : [];
    const { subscription, meter } = await this.resolveForReading(subscriptions, subscriptionId, input.meter ?? null);
    const now = this.now();
    const to = input.to ?? (input.from ? null : subscription.currentPeriodEnd) ?? now;
    const from = input.from ?? (input.to ? null : subscription.currentPeriodStart) ?? new Date(to.getTime() - 30 * DAY_MS);
    if (!(from < to)) throw BillingError.badInput('from must be before to', 'from');
    if (to.getTime() - from.getTime() > MAX_SUMMARY_DAYS * DAY_MS) {
      throw BillingError.badInput(`The period may span at most ${MAX_SUMMARY_DAYS} days`, 'from');
    }

    const totals = await this.ledger.totals(subscription.id, meter, from, to);
    const buckets: { date: string; total: number }[] = [];
    let total = 0;
    for (let day = startOfUtcDay(from); day < to.getTime(); day += DAY_MS) {
      const date = new Date(day).toISOString().slice(0, 10);
      const dayTotal = totals.byDay.get(date) ?? 0;
      total += dayTotal;
      buckets.push({ date, total: dayTotal });
    }
    return {
      subscriptionId: subscription.id,
      meter,
      from,
      to,
      total,
      pending: totals.pending,
      failed: totals.failed,
      lagSeconds: totals.oldestPending ? Math.max(0, (now.getTime() - totals.oldestPending.getTime()) / 1000) : null,
      buckets,
    };
  }

  /** The customer's subscription `subscriptionId`, or all its subscriptions, newest first. */
  private subscriptionsOf(customer: CustomerRef, subscriptionId: string | null): Promise<MeteredSubscription[]> {
    return this.ledger.subscriptionsOf(customer.id, subscriptionId);
  }

}

function startOfUtcDay(date: Date): number {
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
}
