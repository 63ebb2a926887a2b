import { createHash } from 'node:crypto';
import { usageRecorded } from './usage-recorded.signal';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { LedgerRow } from './usage-ledger.repository';
import { GroupCommit } from '../../common/group-commit';
import { poolLender } from '../../db/raw-query';

/**
 * The common case of `recordUsage` in one SQL statement for many callers at once (group commit).
 *
 * Each request names the caller by user id; the statement finds the customer, the subscription
 * (the caller's own, in a billing status, with a metered item on the requested meter or on its
 * only meter) and inserts the event, `on conflict (customer_id, idempotency_key) do nothing`.
 * Requests that arrive while a statement is running wait for the next one, so under load one
 * round trip to PostgreSQL carries many events. The statement runs on its own (autocommit): a
 * caller is answered only after it has committed, exactly as with one insert per request.
 *
 * Every request gets its own outcome: its row was inserted, or a row with its key already
 * exists (the caller compares request hashes; such rows are read by a second, small query, run
 * only when a request of a known customer inserted nothing), or nothing matched ("miss"), or the
 * statement failed ("failed"). After a miss or a failure the caller takes the general path, which finds
 * the exact reason (unknown or foreign subscription, no or several meters, canceled, ...) and
 * its error code. The statement never decides an error. Usage on a meter with a hard limit in
 * the subscription's plan is left to the general path too (a miss), which records it under the
 * limit's lock; a retry of such an event is still answered here from its row.
 *
 * Rows are inserted in (customer, key) order, the same in every statement, so statements of
 * several instances that share keys wait for one another instead of deadlocking; within one
 * statement the first request with a key wins and the others with that key get its row.
 */

/** The statuses in which the statement accepts usage; the same list as the service's. */
export type BillingStatuses = readonly string[];

export interface BatchRequest {
  /** The new row's id (also Stripe's identifier for the meter event). */
  id: string;
  userId: string;
  subscriptionId: string | null;
  meter: string | null;
  quantity: number;
  occurredAt: Date;
  idempotencyKey: string;
  requestHash: string;
}


export type BatchOutcome =
  /** This request's row was inserted and is committed. */
  | { kind: 'inserted'; subscriptionId: string; meter: string }
  /** A row with this request's key exists already (committed earlier, or by another request of the same statement). */
  | { kind: 'existing'; row: LedgerRow }
  /** Nothing was written for this request; the general path decides. */
  | { kind: 'miss' }
  /** The statement failed: most likely nothing was written, but a connection lost after the commit leaves it open. */
  | { kind: 'failed' };

/** What the statement needs from a database connection. */
export interface QueryClient {
  query<R>(config: { name?: string; text: string; values: unknown[] }): Promise<{ rows: R[] }>;
}

/** Lends connections of the application's pool. */
export interface ConnectionLender {
  acquire(): Promise<QueryClient>;
  release(client: QueryClient): void;
}

export interface UsageBatcherOptions {
  statuses: BillingStatuses;
  /** Told when a statement fails (its requests then take the general path). */
  log?: { warn(obj: object, msg?: string): void };
  /** Requests per statement at most. */
  maxBatch?: number;
  /** Statements running at once at most; requests arriving meanwhile wait for the next one. */
  maxInFlight?: number;
}

const BATCH_SQL = `
with params as (
  select $1::uuid[] as ids, $2::text[] as user_ids, $3::uuid[] as subscription_ids, $4::text[] as meters, $5::float8[] as quantities,
         $6::timestamptz[] as occurred_ats, $7::text[] as idempotency_keys, $8::text[] as request_hashes, $9::text[] as statuses
  offset 0
),
input as (
  select t.*
    from params p
   cross join lateral unnest(p.ids, p.user_ids, p.subscription_ids, p.meters, p.quantities, p.occurred_ats, p.idempotency_keys, p.request_hashes)
         with ordinality as t(id, user_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, ord)
),
owner as (
  select i.ord, c.id as customer_id
    from input i
    join customers c on c.user_id = i.user_id
),
resolved as (
  select o.ord, o.customer_id, r.subscription_id, r.meter
    from input i
    join owner o on o.ord = i.ord
    cross join params p
    cross join lateral (
      select s.id as subscription_id, s.price_id,
             coalesce(i.meter, (select min(x ->> 'meter') from jsonb_array_elements(s.items) x where coalesce(x ->> 'meter', '') <> '')) as meter,
             count(*) over () as candidates
        from subscriptions s
       where s.customer_id = o.customer_id
         and s.status = any(p.statuses)
         and (i.subscription_id is not null or i.meter is not null)
         and (i.subscription_id is null or s.id = i.subscription_id)
         and case
               when i.meter is null
                 then (select count(distinct x ->> 'meter') from jsonb_array_elements(s.items) x where coalesce(x ->> 'meter', '') <> '') = 1
               else s.items @> jsonb_build_array(jsonb_build_object('meter', i.meter))
             end
       limit 2
    ) r
   where r.candidates = 1
     and not exists (
       select 1 from prices pr join plan_limits l on l.product_id = pr.product_id
        where pr.id = r.price_id and l.meter = r.meter and l.kind = 'hard'
     )
),
inserted as (
  insert into usage_events
    (id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, state, attempts, next_attempt_at, created_at)
  select i.id, r.customer_id, r.subscription_id, r.meter, i.quantity, i.occurred_at, i.idempotency_key, i.request_hash, 'pending', 0, now(), now()
    from resolved r
    join input i on i.ord = r.ord
   order by r.customer_id, i.idempotency_key, r.ord
  on conflict (customer_id, idempotency_key) do nothing
  returning id, subscription_id, meter
)
select i.ord, o.customer_id, n.id is not null as own, n.subscription_id, n.meter
  from input i
  left join owner o on o.ord = i.ord
  left join inserted n on n.id = i.id
 order by i.ord`;

/**
 * The statement is prepared once per connection under this name; the name changes with the text.
 *
 * It is also planned once per connection. PostgreSQL plans a prepared statement again for each
 * execution while a plan for the actual parameters looks cheaper than its generic plan, and with
 * the arrays in plain sight (`unnest($1)`) it always does, since it then knows their length;
 * planning this statement costs about as much as running it for a few rows. The `params` CTE
 * hides the values from the estimates, so both plans cost the same and the generic plan is kept
 * after the fifth execution. A generic plan is only as good as the statistics it was made with:
 * so the statement reads no table that grows fast (it never reads usage_events, whose rows the
 * insert's conflict check finds through the unique index), only customers, subscriptions and
 * the small catalog tables prices and plan_limits,
 * and PostgreSQL plans it again whenever their statistics are updated (ANALYZE, autovacuum).
 */
const BATCH_STATEMENT = `tollgate_usage_batch_${createHash('sha256').update(BATCH_SQL).digest('hex').slice(0, 12)}`;

/**
 * The rows already recorded under some (customer, key) pairs: those of requests the statement
 * did not insert. Run only when there are such requests (retries, mostly), and planned for the
 * actual values each time, through the unique index.
 */
const EXISTING_SQL = `
select e.id, e.subscription_id, e.meter, e.quantity, e.occurred_at, e.idempotency_key, e.request_hash, e.customer_id
  from unnest($1::uuid[], $2::text[]) as k(customer_id, idempotency_key)
  join usage_events e on e.customer_id = k.customer_id and e.idempotency_key = k.idempotency_key`;

/** Runs one statement for `requests` and returns one outcome per request, in order. */
export async function runBatch(client: QueryClient, requests: readonly BatchRequest[], statuses: BillingStatuses): Promise<BatchOutcome[]> {
  const n = requests.length;
  const ids = new Array<string>(n);
  const users = new Array<string>(n);
  const subscriptions = new Array<string | null>(n);
  const meters = new Array<string | null>(n);
  const quantities = new Array<number>(n);
  const times = new Array<Date>(n);
  const keys = new Array<string>(n);
  const hashes = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const r = requests[i];
    ids[i] = r.id;
    users[i] = r.userId;
    subscriptions[i] = r.subscriptionId;
    meters[i] = r.meter;
    quantities[i] = r.quantity;
    times[i] = r.occurredAt;
    keys[i] = r.idempotencyKey;
    hashes[i] = r.requestHash;
  }
  type BatchRow = { ord: string | number; customer_id: string | null; own: boolean; subscription_id: string; meter: string };
  let rows: BatchRow[];
  try {
    ({ rows } = await client.query<BatchRow>({ name: BATCH_STATEMENT, text: BATCH_SQL, values: [ids, users, subscriptions, meters, quantities, times, keys, hashes, statuses] }));
  } catch (error) {
    // The server no longer knows the statement (DEALLOCATE, a pooler in between): the client's
    // record of it goes too, so that the next use prepares it again.
    if ((error as { code?: string }).code === '26000') {
      delete (client as { connection?: { parsedStatements?: Record<string, unknown> } }).connection?.parsedStatements?.[BATCH_STATEMENT];
    }
    throw error;
  }
  const outcomes = new Array<BatchOutcome>(n).fill({ kind: 'miss' });
  // Requests of a known customer that inserted nothing: their key may be taken (a retry, or an
  // earlier request of the same statement with the same key).
  const taken: { index: number; customerId: string }[] = [];
  for (const row of rows) {
    const index = Number(row.ord) - 1;
    if (!(index >= 0 && index < n) || row.customer_id === null) continue;
    if (row.own) outcomes[index] = { kind: 'inserted', subscriptionId: row.subscription_id, meter: row.meter };
    else taken.push({ index, customerId: row.customer_id });
  }
  if (taken.length === 0) return outcomes;
  let existing: (LedgerRow & { customer_id: string })[];
  try {
    ({ rows: existing } = await client.query<LedgerRow & { customer_id: string }>({ text: EXISTING_SQL, values: [taken.map((t) => t.customerId), taken.map((t) => keys[t.index])] }));
  } catch {
    // The inserts are committed; only these requests are left open, for the general path.
    for (const { index } of taken) outcomes[index] = { kind: 'failed' };
    return outcomes;
  }
  const byKey = new Map(existing.map((row) => [`${row.customer_id}\u0000${row.idempotency_key}`, row]));
  for (const { index, customerId } of taken) {
    const row = byKey.get(`${customerId}\u0000${keys[index]}`);
    if (row) outcomes[index] = { kind: 'existing', row };
  }
  return outcomes;
}

/**
 * Gathers concurrent requests into statements: a request waits only while `maxInFlight`
 * statements are running already (and for the end of the current turn of the event loop).
 */
export class UsageBatcher {
  private readonly statements: GroupCommit<BatchRequest, BatchOutcome>;
  /** Counts since start: statements run, failed, and requests answered by outcome. */
  readonly stats = { statements: 0, failedStatements: 0, inserted: 0, existing: 0, miss: 0, failed: 0 };

  constructor(
    private readonly lender: ConnectionLender,
    private readonly options: UsageBatcherOptions,
  ) {
    this.statements = new GroupCommit((requests) => this.runShared(requests), {
      maxBatch: options.maxBatch ?? 256,
      maxInFlight: options.maxInFlight ?? 1,
      gatherTurn: true,
    });
  }

  /**
   * The outcome of `request`, once the statement that carried it has committed. A statement that
   * fails answers "failed" to all its requests: the general path then retries each under the
   * same key, so a row that was committed after all is found, not written twice.
   */
  async submit(request: BatchRequest): Promise<BatchOutcome> {
    const outcome = await this.statements.submit(request);
    this.stats[outcome.kind]++;
    return outcome;
  }

  private async runShared(requests: BatchRequest[]): Promise<BatchOutcome[]> {
    this.stats.statements++;
    try {
      const client = await this.lender.acquire();
      try {
        const outcomes = await runBatch(client, requests, this.options.statuses);
        if (outcomes.some((o) => o.kind === 'inserted')) usageRecorded();
        return outcomes;
      } finally {
        this.lender.release(client);
      }
    } catch (error) {
      this.stats.failedStatements++;
      this.warn(error, requests.length);
      return requests.map((): BatchOutcome => ({ kind: 'failed' }));
    }
  }

  private lastWarning = 0;
  private unreported = 0;

  /** At most one warning in 10 s: a database that refuses the statement for a while would otherwise flood the log. */
  private warn(error: unknown, requests: number): void {
    this.unreported++;
    const now = Date.now();
    if (!this.options.log || now - this.lastWarning < 10_000) return;
    this.options.log.warn({ err: error, requests, failedStatements: this.unreported }, 'shared usage statement failed; its requests took the general path');
    this.lastWarning = now;
    this.unreported = 0;
  }
}

const batchers = new WeakMap<object, UsageBatcher>();

/**
 * The batcher of the connection pool behind `em` (one per pool: forks of an EntityManager
 * share it). Statements borrow the pool's connections one at a time, like any other query.
 */
export function batcherFor(em: EntityManager, statuses: BillingStatuses, log?: UsageBatcherOptions['log']): UsageBatcher {
  const connection = em.getConnection();
  let batcher = batchers.get(connection);
  if (!batcher) {
    batcher = new UsageBatcher(poolLender(em), { statuses, log });
    batchers.set(connection, batcher);
  }
  return batcher;
}
