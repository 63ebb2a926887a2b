import type { EntityManager } from '@mikro-orm/postgresql';
import type { ClientBase } from 'pg';
import { rawQuery, withPoolConnection } from '../../db/raw-query';
import type { LimitDefinition } from '../entitlements/definitions-cache';
import type { LedgerRow, NewLedgerRow } from './usage-ledger.repository';
import { INSERT_SQL } from './usage-ledger.repository';

/** A limit of a subscription's current plan on one meter. */
export interface SubscriptionLimit {
  subscriptionId: string;
  meter: string;
  limit: number;
  kind: 'hard' | 'soft';
}

/** The limits of the subscriptions' current plans (read on every use, so a plan change applies at once). */
const LIMITS_SQL = `
select s.id as subscription_id, l.meter, l."limit", l.kind
  from subscriptions s
  join prices p on p.id = s.price_id
  join plan_limits l on l.product_id = p.product_id
 where s.id = any($1::uuid[])
 order by s.id, l.meter`;

/** The limits of a customer's subscriptions in the given statuses, with each subscription's current period. */
const DEFINITIONS_SQL = `
select s.id as subscription_id, l.meter, l."limit", l.kind, s.current_period_start, s.current_period_end
  from subscriptions s
  join prices p on p.id = s.price_id
  join plan_limits l on l.product_id = p.product_id
 where s.customer_id = $1 and s.status = any($2::text[])
 order by s.id, l.meter`;

/**
 * Usage of one subscription's meter recorded at or after $3 ($5 is $3 rounded up to the hour):
 * whole hours from the rollup, the partial hour from the rows, less what Stripe refused for good.
 * Usage dated after the period's end (before the subscription's period has moved on) counts
 * too, so a limit never opens up early.
 */
const USED_SQL = `
select (coalesce((select sum(h.quantity) from usage_hourly h where h.subscription_id = $1 and h.meter = $2 and h.hour >= $4), 0)
      + coalesce((select sum(e.quantity) from usage_events e where e.subscription_id = $1 and e.meter = $2 and e.occurred_at >= $3 and e.occurred_at < $4), 0)
      - coalesce((select sum(e.quantity) from usage_events e where e.state = 'failed' and e.subscription_id = $1 and e.meter = $2 and e.occurred_at >= $3), 0))::float8 as used`;

const KEYS_SQL = `
select e.id, e.subscription_id, e.meter, e.quantity, e.occurred_at, e.idempotency_key, e.request_hash
  from unnest($2::text[]) as k(idempotency_key)
  join usage_events e on e.customer_id = $1 and e.idempotency_key = k.idempotency_key`;

const HOUR_MS = 3600_000;

async function usedOn(client: ClientBase | null, em: EntityManager, subscriptionId: string, meter: string, since: Date): Promise<number> {
  const firstHour = new Date(Math.ceil(since.getTime() / HOUR_MS) * HOUR_MS);
  const values = [subscriptionId, meter, since, firstHour];
  const rows = client ? (await client.query<{ used: number }>(USED_SQL, values)).rows : await rawQuery<{ used: number }>(em, USED_SQL, values);
  return Number(rows[0].used);
}

/** The outcome of recording rows under a hard limit. */
export interface LimitedInsert {
  /** Ids of the rows inserted. */
  inserted: Set<string>;
  /** Ids of the rows refused, with the usage of the period when each was refused. */
  refused: Map<string, number>;
}

/** The SQL of usage limits: the plans' limits, usage of a period, and recording under a hard limit. */
export class UsageLimitRepository {
  constructor(private readonly em: EntityManager) {}

  async limitsOf(subscriptionIds: readonly string[]): Promise<SubscriptionLimit[]> {
    if (subscriptionIds.length === 0) return [];
    const rows = await rawQuery<{ subscription_id: string; meter: string; limit: number; kind: 'hard' | 'soft' }>(this.em, LIMITS_SQL, [[...new Set(subscriptionIds)]]);
    return rows.map((r) => ({ subscriptionId: r.subscription_id, meter: r.meter, limit: Number(r.limit), kind: r.kind }));
  }

  /** The limits of the customer's subscriptions in `statuses`' plans, with the period each counts. */
  async definitionsOf(customerId: string, statuses: readonly string[]): Promise<LimitDefinition[]> {
    // Timestamps come back as text on the ORM's connections (its driver turns off pg's parsing).
    const rows = await rawQuery<{ subscription_id: string; meter: string; limit: number; kind: 'hard' | 'soft'; current_period_start: string | Date | null; current_period_end: string | Date | null }>(
      this.em,
      DEFINITIONS_SQL,
      [customerId, statuses],
    );
    return rows.map((r) => ({
      subscriptionId: r.subscription_id,
      meter: r.meter,
      limit: Number(r.limit),
      kind: r.kind,
      periodStart: r.current_period_start === null ? null : new Date(r.current_period_start),
      periodEnd: r.current_period_end === null ? null : new Date(r.current_period_end),
    }));
  }

  /** Usage of the subscription's meter since `since` (the start of its billing period). */
  used(subscriptionId: string, meter: string, since: Date): Promise<number> {
    return usedOn(null, this.em, subscriptionId, meter, since);
  }

  /**
   * Records `rows` (one customer, subscription and meter; in input order) under a hard limit, in
   * one short transaction: locks the counter row of (subscription, meter, period start), so that
   * every writer under this limit waits for the one before it, reads the period's usage, and
   * inserts the rows that fit, in order. A row whose key is recorded already (earlier, or by an
   * earlier row here) is neither counted nor inserted; the caller answers it as a replay.
   */
  async insertUnderLimit(customerId: string, subscriptionId: string, meter: string, periodStart: Date, limit: number, rows: readonly NewLedgerRow[]): Promise<LimitedInsert> {
    return withPoolConnection(this.em, async (client) => {
      await client.query('begin');
      try {
        await client.query(
          'insert into usage_limit_counters (subscription_id, meter, period_start, created_at) values ($1, $2, $3, now()) on conflict do nothing',
          [subscriptionId, meter, periodStart],
        );
        await client.query('select 1 from usage_limit_counters where subscription_id = $1 and meter = $2 and period_start = $3 for update', [subscriptionId, meter, periodStart]);
        const taken = new Set((await client.query<LedgerRow>(KEYS_SQL, [customerId, [...new Set(rows.map((r) => r.idempotencyKey))]])).rows.map((r) => r.idempotency_key));
        let used = await usedOn(client, this.em, subscriptionId, meter, periodStart);
        const accepted: NewLedgerRow[] = [];
        const refused = new Map<string, number>();
        for (const row of rows) {
          if (taken.has(row.idempotencyKey)) continue;
          if (used + row.quantity > limit) {
            refused.set(row.id, used);
            continue;
          }
          taken.add(row.idempotencyKey);
          accepted.push(row);
          used += row.quantity;
        }
        let inserted = new Set<string>();
        if (accepted.length) {
          const result = await client.query<{ id: string }>(INSERT_SQL, [
            accepted.map((r) => r.id),
            accepted.map((r) => r.customerId),
            accepted.map((r) => r.subscriptionId),
            accepted.map((r) => r.meter),
            accepted.map((r) => r.quantity),
            accepted.map((r) => r.occurredAt),
            accepted.map((r) => r.idempotencyKey),
            accepted.map((r) => r.requestHash),
          ]);
          inserted = new Set(result.rows.map((r) => r.id));
        }
        await client.query('commit');
        return { inserted, refused };
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      }
    });
  }
}
