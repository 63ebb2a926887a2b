import type { MikroORM } from '@mikro-orm/postgresql';
import { escapeLiteral } from 'pg';
import { withPoolConnection } from '../../db/raw-query';

/** A pending usage row claimed for sending, with the Stripe customer its meter event names. */
export interface ClaimedUsageRow {
  id: string;
  meter: string;
  quantity: number;
  occurred_at: Date;
  stripe_customer_id: string | null;
}

/** What became of the claimed rows: sent, to retry later (with the error), refused for good. */
export interface UsageOutcomes {
  sent: string[];
  retry: { id: string; error: string }[];
  failed: { id: string; error: string }[];
}

/**
 * Settings of the claim and mark transactions. The claim must walk the pending index in
 * `next_attempt_at` order and stop after a batch: right after a burst the table's statistics
 * still say few rows are pending, and the planner then reads every due row through a bitmap and
 * sorts them all (on disk past work_mem) for each batch; with fresh statistics it hash-joins the
 * claimed ids against a scan of the whole table instead. Neither scan nor bitmap is of any use
 * to these statements. Commits need not wait for the WAL flush: a claim or mark lost in a
 * database crash only means a row is sent again, with the same identifier, and Stripe drops it.
 */
const FORWARDER_TRANSACTION_SETTINGS = `select set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
  set_config('synchronous_commit', 'off', true)`;

/** An integer as a SQL literal. */
function int(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`not a finite number: ${n}`);
  return String(Math.trunc(n));
}

/** A PostgreSQL array literal as a SQL string literal; values are quoted and escaped, so any text is safe in it. */
function pgArray(values: string[]): string {
  return escapeLiteral(`{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`);
}

/**
 * The forwarder's SQL on the usage ledger, on the pool of the ORM it is given (the job engine's
 * own, apart from the API's). Each call is one short transaction; none is held across a Stripe
 * request.
 */
export class UsageForwardRepository {
  constructor(private readonly orm: MikroORM) {}

  /**
   * Claims up to `limit` due rows: selects them `FOR UPDATE SKIP LOCKED` and pushes their
   * `next_attempt_at` forward by `leaseMs`, in one statement that commits at once. Concurrent
   * claimers skip the locked rows and then see the lease, so each row goes to one of them. The
   * rows are locked and updated by their physical address (ctid, stable while locked), so the
   * update needs no join against the table.
   */
  claim(dueBy: Date | string | null, limit: number, leaseMs: number): Promise<ClaimedUsageRow[]> {
    const due = dueBy ? `${escapeLiteral(dueBy instanceof Date ? dueBy.toISOString() : dueBy)}::timestamptz` : 'now()';
    return this.query<ClaimedUsageRow>(
      `update usage_events u
          set next_attempt_at = now() + (${int(leaseMs)} * interval '1 millisecond'), attempts = u.attempts + 1
        where u.ctid = any(array(
                select ctid from usage_events
                 where state = 'pending' and next_attempt_at <= ${due}
                 order by next_attempt_at
                 limit ${int(limit)}
                 for update skip locked))
      returning u.id, u.meter, u.quantity, u.occurred_at,
                (select c.stripe_customer_id from customers c where c.id = u.customer_id) as stripe_customer_id`,
    );
  }

  /**
   * Records a round's outcomes in one transaction. Each update only touches rows still pending:
   * a row another forwarder marked meanwhile (after a lease expiry) keeps its state. Rows to
   * retry get an exponential backoff from their attempts, with jitter.
   */
  async mark(outcomes: UsageOutcomes, backoff: { baseMs: number; maxMs: number }): Promise<void> {
    const { sent, retry, failed } = outcomes;
    const statements: string[] = [];
    if (sent.length) {
      statements.push(
        `update usage_events set state = 'sent', sent_at = now(), last_error = null
          where id in (select unnest(${pgArray(sent)}::uuid[])) and state = 'pending'`,
      );
    }
    if (retry.length) {
      statements.push(
        `update usage_events u
            set next_attempt_at = now() + least(${int(backoff.maxMs)}::float8, ${int(backoff.baseMs)}::float8 * power(2, least(u.attempts, 30) - 1)) * (0.8 + random() * 0.4) * interval '1 millisecond',
                last_error = r.error
           from (select unnest(${pgArray(retry.map((r) => r.id))}::uuid[]) as id, unnest(${pgArray(retry.map((r) => r.error))}::text[]) as error) r
          where u.id = r.id and u.state = 'pending'`,
      );
    }
    if (failed.length) {
      statements.push(
        `update usage_events u set state = 'failed', last_error = r.error
           from (select unnest(${pgArray(failed.map((r) => r.id))}::uuid[]) as id, unnest(${pgArray(failed.map((r) => r.error))}::text[]) as error) r
          where u.id = r.id and u.state = 'pending'`,
      );
    }
    if (statements.length) await this.query(statements.join(';\n'));
  }

  /** The database's own text of the time, to the microsecond (a Date keeps milliseconds). */
  async now(): Promise<string> {
    const [{ now }] = await this.query<{ now: string }>('select now()::text as now');
    return now;
  }

  /** Age in seconds of the oldest pending row (0 when none). */
  async lagSeconds(): Promise<number> {
    const [row] = await this.query<{ lag: number | null }>(
      `select extract(epoch from (now() - min(created_at)))::float8 as lag from usage_events where state = 'pending'`,
    );
    return Math.max(0, Number(row?.lag ?? 0));
  }

  /** When the next pending row falls due (its retry or the end of its lease); null when none is pending. */
  async nextDueAt(): Promise<Date | null> {
    const [row] = await this.query<{ next: Date | null }>(`select min(next_attempt_at) as next from usage_events where state = 'pending'`);
    return row?.next ?? null;
  }

  /**
   * Runs the transaction settings and then `sql` as one simple-protocol query: PostgreSQL runs
   * the statements of one such query as one transaction, so it is a single round trip, with no
   * query builder or formatting on the way. Values in `sql` are literals built here (numbers,
   * dates, escaped text). Returns the rows of the last statement.
   */
  private query<T>(sql: string): Promise<T[]> {
    return withPoolConnection(this.orm, async (connection) => {
      const results = (await connection.query(`${FORWARDER_TRANSACTION_SETTINGS};\n${sql}`)) as unknown as { rows: unknown[] } | { rows: unknown[] }[];
      return (Array.isArray(results) ? results[results.length - 1].rows : results.rows) as T[];
    });
  }
}
