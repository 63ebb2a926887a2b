import type { EntityManager } from '@mikro-orm/postgresql';
import { rawQuery } from '../../db/raw-query';

/** A ledger row as the statements here return it. */
export interface LedgerRow {
  id: string;
  subscription_id: string;
  meter: string;
  quantity: number;
  occurred_at: Date | string;
  idempotency_key: string;
  request_hash: string;
}

/** A row to insert; its subscription and meter are resolved already. */
export interface NewLedgerRow {
  id: string;
  customerId: string;
  subscriptionId: string;
  meter: string;
  quantity: number;
  occurredAt: Date;
  idempotencyKey: string;
  requestHash: string;
}

export interface LedgerTotals {
  /** Recorded usage in the range, failed events excluded, per UTC day (YYYY-MM-DD). */
  byDay: Map<string, number>;
  pending: number;
  failed: number;
  oldestPending: Date | null;
}


/**
 * Any number of rows in one statement. Rows are inserted in (customer, key) order, the same in
 * every statement (the shared statement of usage-batch.ts uses it too), so concurrent statements
 * that share keys wait for one another instead of deadlocking; of several rows with one key in a
 * statement, the first in input order wins. The `usage_hourly` rollup is kept by a statement
 * trigger on `usage_events` (see the migration), inside this same statement.
 */
export const INSERT_SQL = `
insert into usage_events
  (id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, state, attempts, next_attempt_at, created_at)
select t.id, t.customer_id, t.subscription_id, t.meter, t.quantity, t.occurred_at, t.idempotency_key, t.request_hash, 'pending', 0, now(), now()
  from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::float8[], $6::timestamptz[], $7::text[], $8::text[])
       with ordinality as t(id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, ord)
 order by t.customer_id, t.idempotency_key, t.ord
on conflict (customer_id, idempotency_key) do nothing
returning id`;

const BY_KEYS_SQL = `
select e.id, e.subscription_id, e.meter, e.quantity, e.occurred_at, e.idempotency_key, e.request_hash
  from unnest($2::text[]) as k(idempotency_key)
  join usage_events e on e.customer_id = $1 and e.idempotency_key = k.idempotency_key`;

/**
 * The summary in one statement. Usage per UTC day over [from, to) ($5, $6): the rollup's hours
 * that touch the range ([$3, $4), `from` rounded down and `to` rounded up to the hour), less the
 * rows of those hours outside the range, less what Stripe refused for good. The rows read are
 * those just outside the range: before a period began and after it ends (or after now), which
 * are few, rather than those of the range's own first and last hours, which for a period that
 * began within the hour are all of its events. Pending and failed rows are few while the
 * forwarder keeps up; each kind has its partial index, and the pending rows are read once for
 * both their sum and their age.
 */
const TOTALS_SQL = `
with parts as (
  select h.hour as at, h.quantity
    from usage_hourly h
   where h.subscription_id = $1 and h.meter = $2 and h.hour >= $3 and h.hour < $4
  union all
  select e.occurred_at, -e.quantity
    from usage_events e
   where e.subscription_id = $1 and e.meter = $2
     and ((e.occurred_at >= $3 and e.occurred_at < $5) or (e.occurred_at >= $6 and e.occurred_at < $4))
  union all
  select e.occurred_at, -e.quantity
    from usage_events e
   where e.state = 'failed' and e.subscription_id = $1 and e.meter = $2 and e.occurred_at >= $5 and e.occurred_at < $6
),
days as (
  select to_char(at at time zone 'UTC', 'YYYY-MM-DD') as day, sum(quantity)::float8 as total from parts group by 1
),
pending_rows as (
  select coalesce(sum(quantity) filter (where occurred_at >= $5 and occurred_at < $6), 0)::float8 as pending, min(created_at) as oldest_pending
    from usage_events
   where state = 'pending' and subscription_id = $1 and meter = $2
)
select (select coalesce(json_object_agg(day, total), '{}') from days) as days,
       pending_rows.pending,
       pending_rows.oldest_pending,
       (select coalesce(sum(quantity), 0)::float8 from usage_events
         where state = 'failed' and subscription_id = $1 and meter = $2 and occurred_at >= $5 and occurred_at < $6) as failed
  from pending_rows`;

const HOUR_MS = 3600_000;

/** What the ledger's rules need of a subscription. */
export interface MeteredSubscription {
  id: string;
  status: string;
  items: { meter: string | null }[];
  currentPeriodStart: Date | null;
  currentPeriodEnd: Date | null;
}

const SUBSCRIPTIONS_SQL = `
select id, status, items, current_period_start, current_period_end
  from subscriptions
 where customer_id = $1 and ($2::uuid is null or id = $2)
 order by created_at desc, id`;

/** The usage ledger's SQL: inserts, lookups by key and the summary's reads. */
export class UsageLedgerRepository {
  constructor(private readonly em: EntityManager) {}

  /** The customer's subscription `subscriptionId`, or all its subscriptions, newest first. */
  async subscriptionsOf(customerId: string, subscriptionId: string | null): Promise<MeteredSubscription[]> {
    // Timestamps come back as text on the ORM's connections (its driver turns off pg's parsing).
    const rows = await rawQuery<{ id: string; status: string; items: { meter: string | null }[] | null; current_period_start: string | Date | null; current_period_end: string | Date | null }>(
      this.em,
      SUBSCRIPTIONS_SQL,
      [customerId, subscriptionId],
    );
    return rows.map((r) => ({
      id: r.id,
      status: r.status,
      items: r.items ?? [],
      currentPeriodStart: r.current_period_start === null ? null : new Date(r.current_period_start),
      currentPeriodEnd: r.current_period_end === null ? null : new Date(r.current_period_end),
    }));
  }

  /** Inserts `rows` in one statement (autocommit: durable when it returns); the ids of the rows inserted. */
  async insert(rows: readonly NewLedgerRow[]): Promise<Set<string>> {
    if (rows.length === 0) return new Set();
    const inserted = await rawQuery<{ id: string }>(this.em, INSERT_SQL, [
      rows.map((r) => r.id),
      rows.map((r) => r.customerId),
      rows.map((r) => r.subscriptionId),
      rows.map((r) => r.meter),
      rows.map((r) => r.quantity),
      rows.map((r) => r.occurredAt),
      rows.map((r) => r.idempotencyKey),
      rows.map((r) => r.requestHash),
    ]);
    return new Set(inserted.map((r) => r.id));
  }

  /** Whether the subscription has any usage on `meter` (also one its plan no longer bills). */
  async hasUsage(subscriptionId: string, meter: string): Promise<boolean> {
    const rows = await rawQuery<{ one: number }>(this.em, 'select 1 as one from usage_hourly where subscription_id = $1 and meter = $2 limit 1', [subscriptionId, meter]);
    return rows.length > 0;
  }

  /** The rows of `customerId` recorded under `keys`, by key. */
  async findByKeys(customerId: string, keys: readonly string[]): Promise<Map<string, LedgerRow>> {
    if (keys.length === 0) return new Map();
    const rows = await rawQuery<LedgerRow>(this.em, BY_KEYS_SQL, [customerId, [...new Set(keys)]]);
    return new Map(rows.map((r) => [r.idempotency_key, r]));
  }

  async findByKey(customerId: string, key: string): Promise<LedgerRow | null> {
    return (await this.findByKeys(customerId, [key])).get(key) ?? null;
  }

  /** Totals of one subscription's meter over [from, to), in one statement whose cost does not grow with the row count. */
  async totals(subscriptionId: string, meter: string, from: Date, to: Date): Promise<LedgerTotals> {
    const firstHour = Math.floor(from.getTime() / HOUR_MS) * HOUR_MS;
    const endHour = Math.ceil(to.getTime() / HOUR_MS) * HOUR_MS;
    const [row] = await rawQuery<{ days: Record<string, number>; pending: number; failed: number; oldest_pending: Date | string | null }>(this.em, TOTALS_SQL, [
      subscriptionId,
      meter,
      new Date(firstHour),
      new Date(endHour),
      from,
      to,
    ]);
    return {
      byDay: new Map(Object.entries(row.days).map(([day, total]) => [day, Number(total)])),
      pending: Number(row.pending),
      failed: Number(row.failed),
      oldestPending: row.oldest_pending ? new Date(row.oldest_pending) : null,
    };
  }
}
