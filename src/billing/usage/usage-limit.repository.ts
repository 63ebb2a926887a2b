import type { EntityManager } from '@mikro-orm/postgresql';
import { rawQuery } from '../../db/raw-query';
import type { LimitDefinition } from '../entitlements/definitions-cache';
import type { NewLedgerRow } from './usage-ledger.repository';

/** A limit of a subscription's current plan on one meter. */
export interface SubscriptionLimit {
  subscriptionId: string;
  meter: string;
  limit: number;
  kind: 'hard' | 'soft';
}

/**
 * The limits of a customer's subscriptions in the given statuses (all when null), with each
 * subscription's current period. Read on every use, so a plan change applies at once.
 */
const DEFINITIONS_SQL = `
select s.id as subscription_id, l.meter, l."limit", l.kind, s.current_period_start, s.current_period_end
  from subscriptions s
  join prices p on p.id = s.price_id
  join plan_limits l on l.product_id = p.product_id
 where s.customer_id = $1 and ($2::text[] is null or s.status = any($2::text[]))
 order by s.id, l.meter`;

/**
 * Usage of one subscription's meter recorded at or after $3, from the hourly rollup, less what
 * Stripe refused for good (the `usage_used` function of the migrations, which the hard limit's
 * check uses too). Usage dated after the period's end
 * (before the subscription's period has moved on) counts too, so a limit never opens up early.
 */
const USED_SQL = `select usage_used($1, $2, $3) as used`;

/** Recording under a hard limit, in one statement: see the migration that creates `usage_insert_under_limit`. */
const INSERT_UNDER_LIMIT_SQL = `
select row_id, outcome, used_before
  from usage_insert_under_limit($1, $2, $3, $4, $5, $6::uuid[], $7::float8[], $8::timestamptz[], $9::text[], $10::text[])`;

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

  /** The limits of the customer's subscriptions in `statuses` (all when null), with the period each counts. */
  async definitionsOf(customerId: string, statuses: readonly string[] | null): Promise<LimitDefinition[]> {
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
  async used(subscriptionId: string, meter: string, since: Date): Promise<number> {
    const [row] = await rawQuery<{ used: number }>(this.em, USED_SQL, [subscriptionId, meter, since]);
    return Number(row.used);
  }

  /**
   * Records `rows` (one customer, subscription and meter; in input order) under a hard limit, in
   * one statement (autocommit): it locks the counter row of (subscription, meter, period start),
   * so that every writer under this limit waits for the one before it, reads the period's usage,
   * and inserts the rows that fit, in order. A row whose key is recorded already (earlier, or by
   * an earlier row here) is neither counted nor inserted; the caller answers it as a replay.
   */
  async insertUnderLimit(customerId: string, subscriptionId: string, meter: string, periodStart: Date, limit: number, rows: readonly NewLedgerRow[]): Promise<LimitedInsert> {
    const result = await rawQuery<{ row_id: string; outcome: 'inserted' | 'refused'; used_before: number | null }>(this.em, INSERT_UNDER_LIMIT_SQL, [
      customerId,
      subscriptionId,
      meter,
      periodStart,
      limit,
      rows.map((r) => r.id),
      rows.map((r) => r.quantity),
      rows.map((r) => r.occurredAt),
      rows.map((r) => r.idempotencyKey),
      rows.map((r) => r.requestHash),
    ]);
    const inserted = new Set<string>();
    const refused = new Map<string, number>();
    for (const r of result) {
      if (r.outcome === 'inserted') inserted.add(r.row_id);
      else refused.set(r.row_id, Number(r.used_before));
    }
    return { inserted, refused };
  }
}
