import type { MikroORM } from '@mikro-orm/postgresql';
import { escapeLiteral } from 'pg';
import { withPoolConnection } from '../../db/raw-query';
import type { Logger } from 'pino';
import type { MeterEventInput, MeterEventOutcome, StripeGateway } from '../../stripe/stripe.gateway';
import { usageMetrics } from './usage-metrics';
import type { AppConfig } from '../../config/env';

export interface UsageForwarderOptions {
  orm: MikroORM;
  gateway: StripeGateway;
  log: Logger;
  /**
   * Rows claimed at once (USAGE_FORWARDER_BATCH_SIZE), divided among the lanes: each round
   * claims batchSize / lanes rows (rounded up).
   */
  batchSize?: number;
  /** Pause between rounds when nothing is due (USAGE_FORWARDER_INTERVAL_MS). */
  intervalMs?: number;
  /**
   * How long a claim keeps other forwarders off the claimed rows; a forwarder that dies holding
   * a claim delays those rows by this long. By default it is derived from the Stripe request
   * budget below, so that it outlasts a round's sends.
   */
  leaseMs?: number;
  /** The gateway's per-request timeout and network retries (STRIPE_TIMEOUT_MS, STRIPE_MAX_NETWORK_RETRIES). */
  stripeTimeoutMs?: number;
  stripeMaxNetworkRetries?: number;
  /** First retry delay of a row after a retryable failure; doubles per attempt up to maxBackoffMs. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Stripe requests (of up to 100 events) in flight at once, per round. */
  concurrency?: number;
  /**
   * Rounds in flight at once through a backlog (each claims, sends and marks its own rows), so
   * that one round's database statements overlap another's Stripe requests. Only one round
   * polls while there is no backlog. Default 3.
   */
  lanes?: number;
}

export interface ForwardRoundResult {
  claimed: number;
  sent: number;
  retrying: number;
  failed: number;
}

interface ClaimedRow {
  id: string;
  meter: string;
  quantity: number;
  occurred_at: Date;
  stripe_customer_id: string | null;
}

/** How often the lag gauge is refreshed while a backlog is drained. */
const LAG_REFRESH_MS = 1000;

/** Stripe's v2 stream takes at most 100 events a request. */
const STRIPE_BATCH = 100;

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

/**
 * Runs the transaction settings and then `sql` as one simple-protocol query on a connection of
 * the ORM's pool: PostgreSQL runs the statements of one such query as one transaction, so it is
 * a single round trip, with no query builder or formatting on the way. Values in `sql` are
 * literals built here (numbers, dates, escaped text). Returns the rows of the last statement.
 */
async function forwarderQuery<T>(orm: MikroORM, sql: string): Promise<T[]> {
  return withPoolConnection(orm, async (connection) => {
    const results = (await connection.query(`${FORWARDER_TRANSACTION_SETTINGS};\n${sql}`)) as unknown as { rows: unknown[] } | { rows: unknown[] }[];
    return (Array.isArray(results) ? results[results.length - 1].rows : results.rows) as T[];
  });
}

/** An integer as a SQL literal. */
function int(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`not a finite number: ${n}`);
  return String(Math.trunc(n));
}

/**
 * Sends pending usage rows to Stripe as Billing Meter events, each with its row id as Stripe's
 * `identifier`, and marks them sent or failed.
 *
 * Claiming: one statement selects due rows `FOR UPDATE SKIP LOCKED` and pushes their
 * `next_attempt_at` forward by a lease, then commits. The Stripe call happens after that commit,
 * so no row lock or transaction is held across the network; concurrent forwarders (other
 * threads, processes or hosts on the same database) skip locked rows and then see the lease, so
 * each row is sent by one forwarder. Should a lease expire while its forwarder is still sending
 * (or the forwarder dies after Stripe accepted but before marking), the row is sent again with
 * the same identifier and Stripe drops the duplicate: it is counted once either way.
 *
 * Through a backlog, several lanes (rounds) run at once, each claiming its own rows the same
 * way, so that the database's work for one round overlaps another's Stripe requests.
 */
export class UsageForwarder {
  private readonly orm: MikroORM;
  private readonly gateway: StripeGateway;
  private readonly log: Logger;
  private readonly batchSize: number;
  /** Rows claimed per round: batchSize divided among the lanes. */
  private readonly roundSize: number;
  private readonly intervalMs: number;
  private readonly leaseMs: number;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly concurrency: number;
  private readonly lanes: number;

  private loop: Promise<void> | null = null;
  private stopping = false;
  /** Wakes sleeping lanes (on stop, and the extra lanes when a backlog appears). */
  private readonly wakers = new Set<() => void>();
  /** The last round was full: the extra lanes run. */
  private backlog = false;
  private lagMeasuredAt = -Infinity;
  /** What this instance did since it was created. */
  readonly totals: ForwardRoundResult = { claimed: 0, sent: 0, retrying: 0, failed: 0 };

  /** The forwarder as the configuration describes it (USAGE_FORWARDER_*, the Stripe timeout and retries). */
  static fromConfig(config: AppConfig, deps: { orm: MikroORM; gateway: StripeGateway; log: Logger }): UsageForwarder {
    return new UsageForwarder({
      ...deps,
      log: deps.log.child({ component: 'usage-forwarder' }),
      batchSize: config.usageForwarder.batchSize,
      intervalMs: config.usageForwarder.intervalMs,
      stripeTimeoutMs: config.stripe.timeoutMs,
      stripeMaxNetworkRetries: config.stripe.maxNetworkRetries,
    });
  }

  constructor(options: UsageForwarderOptions) {
    this.orm = options.orm;
    this.gateway = options.gateway;
    this.log = options.log;
    this.batchSize = Math.max(1, Math.floor(options.batchSize ?? 2000));
    this.intervalMs = options.intervalMs ?? 1000;
    this.baseBackoffMs = options.baseBackoffMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 10 * 60_000;
    this.concurrency = options.concurrency ?? 4;
    this.lanes = Math.max(1, Math.floor(options.lanes ?? 3));
    // Rows in flight are held from their claim to their mark, long enough for the garbage
    // collector to move them to the old generation: more, smaller rounds keep that lower than
    // fewer, larger ones at the same drain rate, now that a round costs one statement each way.
    this.roundSize = Math.ceil(this.batchSize / this.lanes);
    this.leaseMs =
      options.leaseMs ??
      leaseFor({
        batchSize: this.roundSize,
        concurrency: this.concurrency,
        timeoutMs: options.stripeTimeoutMs ?? 20_000,
        maxNetworkRetries: options.stripeMaxNetworkRetries ?? 2,
      });
  }

  get running(): boolean {
    return this.loop !== null;
  }

  /** Starts the background loop (idempotent). */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run().finally(() => {
      this.loop = null;
    });
  }

  /** Stops the loop after the rounds in flight, so nothing is left half-marked. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeAll();
    await this.loop;
  }

  /**
   * Rounds until nothing that was due when it started is left; rows that fail meanwhile are
   * scheduled for later and not retried by this call, so it ends during an outage too.
   * For `--once` and tests.
   */
  async drain(): Promise<ForwardRoundResult> {
    const total: ForwardRoundResult = { claimed: 0, sent: 0, retrying: 0, failed: 0 };
    // The database's own text of the time, to the microsecond (a Date keeps milliseconds).
    const [{ now }] = await this.orm.em.fork().getConnection().execute<{ now: string }[]>('select now()::text as now');
    const lane = async () => {
      for (;;) {
        const round = await this.forwardOnce(now);
        total.claimed += round.claimed;
        total.sent += round.sent;
        total.retrying += round.retrying;
        total.failed += round.failed;
        if (round.claimed === 0) return;
      }
    };
    await Promise.all(Array.from({ length: this.lanes }, lane));
    return total;
  }

  /** One round: claim due rows (due by `dueBy`, a Date or a timestamp as PostgreSQL writes it; default now), send them, record the outcomes. */
  async forwardOnce(dueBy?: Date | string): Promise<ForwardRoundResult> {
    const rows = await this.claim(dueBy ?? null);
    const result: ForwardRoundResult = { claimed: rows.length, sent: 0, retrying: 0, failed: 0 };
    if (rows.length) {
      const outcomes = await this.send(rows);
      await this.markOutcomes(rows, outcomes, result);
      this.totals.claimed += result.claimed;
      this.totals.sent += result.sent;
      this.totals.retrying += result.retrying;
      this.totals.failed += result.failed;
      const metrics = usageMetrics();
      metrics.forwarded.inc({ outcome: 'sent' }, result.sent);
      metrics.forwarded.inc({ outcome: 'retrying' }, result.retrying);
      metrics.forwarded.inc({ outcome: 'failed' }, result.failed);
    }
    // Through a backlog (full rounds, one after another) the lag is measured once a second rather
    // than after every round: the query reads every pending row, and on a 100,000-row backlog it
    // took a fifth of the drain.
    if (rows.length < this.roundSize || performance.now() - this.lagMeasuredAt >= LAG_REFRESH_MS) await this.updateLag();
    return result;
  }

  /** Age in seconds of the oldest pending row (0 when none); also published as a gauge. */
  async updateLag(): Promise<number> {
    this.lagMeasuredAt = performance.now();
    const [row] = await this.orm.em
      .fork()
      .getConnection()
      .execute<{ lag: number | null }[]>(
        `select extract(epoch from (now() - min(created_at)))::float8 as lag from usage_events where state = 'pending'`,
      );
    const lag = Math.max(0, Number(row?.lag ?? 0));
    usageMetrics().lag.set(lag);
    return lag;
  }

  private async run(): Promise<void> {
    this.log.info({ batchSize: this.batchSize, lanes: this.lanes, roundSize: this.roundSize, intervalMs: this.intervalMs }, 'usage forwarder started');
    this.backlog = false;
    await Promise.all(Array.from({ length: this.lanes }, (_, lane) => this.runLane(lane)));
    this.log.info('usage forwarder stopped');
  }

  /**
   * Lane 0 polls every interval; the other lanes sleep until a round comes back full (a backlog)
   * and run back to back with it until a round is not full.
   */
  private async runLane(lane: number): Promise<void> {
    /** Consecutive rounds in which Stripe failed everything: the lane itself backs off too. */
    let outageRounds = 0;
    while (!this.stopping) {
      if (lane > 0 && !this.backlog) {
        await this.sleep(Infinity);
        continue;
      }
      let delay = this.intervalMs;
      try {
        const round = await this.forwardOnce();
        if (round.claimed > 0 && round.sent === 0 && round.failed === 0) {
          // Everything failed with a retryable error: Stripe is down or limiting us. The rows got
          // their own backoff; the lane slows down too rather than hammering with the next rows.
          outageRounds++;
          this.backlog = false;
          delay = Math.min(this.maxBackoffMs, this.intervalMs * 2 ** Math.min(outageRounds, 16));
        } else {
          outageRounds = 0;
          // A full round means there is a backlog: go on at once, with every lane.
          if (round.claimed >= this.roundSize) {
            delay = 0;
            if (!this.backlog) {
              this.backlog = true;
              this.wakeAll();
            }
          } else {
            this.backlog = false;
          }
        }
      } catch (error) {
        // The database is unreachable, most likely: nothing was marked, claims expire with their lease.
        this.log.error({ err: error }, 'usage forwarding round failed');
        this.backlog = false;
        delay = Math.min(this.maxBackoffMs, Math.max(this.intervalMs, 1000));
      }
      if (!this.stopping && delay > 0) await this.sleep(lane > 0 ? Infinity : delay);
    }
  }

  /** Sleeps `ms` (Infinity: until woken), or until stop() or a backlog wakes the lanes. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => wake(), ms) : undefined;
      const wake = () => {
        if (timer) clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      this.wakers.add(wake);
    });
  }

  private wakeAll(): void {
    for (const wake of [...this.wakers]) wake();
  }

  private async claim(dueBy: Date | string | null): Promise<ClaimedRow[]> {
    // One statement in a short transaction: the row locks last only until it commits. The rows
    // are locked and then updated by their physical address (ctid, stable while locked), so
    // the update needs no join against the table.
    const due = dueBy ? `${escapeLiteral(dueBy instanceof Date ? dueBy.toISOString() : dueBy)}::timestamptz` : 'now()';
    return forwarderQuery<ClaimedRow>(
      this.orm,
      `update usage_events u
          set next_attempt_at = now() + (${int(this.leaseMs)} * interval '1 millisecond'), attempts = u.attempts + 1
        where u.ctid = any(array(
                select ctid from usage_events
                 where state = 'pending' and next_attempt_at <= ${due}
                 order by next_attempt_at
                 limit ${int(this.roundSize)}
                 for update skip locked))
      returning u.id, u.meter, u.quantity, u.occurred_at,
                (select c.stripe_customer_id from customers c where c.id = u.customer_id) as stripe_customer_id`,
    );
  }

  private async send(rows: ClaimedRow[]): Promise<Map<string, MeterEventOutcome>> {
    const outcomes = new Map<string, MeterEventOutcome>();
    const events: MeterEventInput[] = [];
    for (const row of rows) {
      if (!row.stripe_customer_id) {
        outcomes.set(row.id, {
          identifier: row.id,
          status: 'failed',
          retryable: false,
          error: { code: 'NO_STRIPE_CUSTOMER', message: 'The customer has no Stripe customer' },
        });
        continue;
      }
      events.push({
        eventName: row.meter,
        stripeCustomerId: row.stripe_customer_id,
        value: Number(row.quantity),
        identifier: row.id,
        timestamp: new Date(row.occurred_at),
      });
    }
    const chunks: MeterEventInput[][] = [];
    for (let i = 0; i < events.length; i += STRIPE_BATCH) chunks.push(events.slice(i, i + STRIPE_BATCH));
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const batch = chunks[next++];
        try {
          const sent = await this.gateway.sendMeterEvents(batch);
          for (const o of sent.outcomes) outcomes.set(o.identifier, o);
        } catch (error) {
          // The gateway reports Stripe failures as outcomes; a throw is unexpected (a bug or a
          // validation refusal), so these rows are retried later rather than marked failed.
          this.log.error({ err: error, count: batch.length }, 'sending meter events threw');
          const message = error instanceof Error ? error.message : String(error);
          for (const e of batch) outcomes.set(e.identifier, { identifier: e.identifier, status: 'failed', retryable: true, error: { code: 'SEND_ERROR', message } });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, chunks.length) }, worker));
    return outcomes;
  }

  private async markOutcomes(rows: ClaimedRow[], outcomes: Map<string, MeterEventOutcome>, result: ForwardRoundResult): Promise<void> {
    const sent: string[] = [];
    const retry: { id: string; error: string }[] = [];
    const failed: { id: string; error: string }[] = [];
    for (const row of rows) {
      const o = outcomes.get(row.id);
      if (o && (o.status === 'accepted' || o.status === 'duplicate')) sent.push(row.id);
      else if (!o || o.retryable) retry.push({ id: row.id, error: describe(o) });
      else failed.push({ id: row.id, error: describe(o) });
    }
    // One transaction for the round's outcomes. Each update only touches rows still pending: a
    // row another forwarder marked meanwhile (after a lease expiry) keeps its state.
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
            set next_attempt_at = now() + least(${int(this.maxBackoffMs)}::float8, ${int(this.baseBackoffMs)}::float8 * power(2, least(u.attempts, 30) - 1)) * (0.8 + random() * 0.4) * interval '1 millisecond',
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
    if (statements.length) await forwarderQuery(this.orm, statements.join(';\n'));
    if (failed.length) this.log.warn({ count: failed.length, first: failed[0] }, 'usage events refused by Stripe');
    result.sent = sent.length;
    result.retrying = retry.length;
    result.failed = failed.length;
  }
}

/**
 * A lease long enough for one round: each Stripe request may take its timeout once per try plus
 * the gateway's rate-limit waits (at most 5 s each), the stream session is created first, and the
 * round's requests run `concurrency` at a time. A send that still outlasts it (the one-by-one v1
 * fallback after a rejected batch, say) is harmless: another forwarder may then send those rows
 * again, with the same identifiers, and Stripe drops the duplicates.
 */
export function leaseFor(o: { batchSize: number; concurrency: number; timeoutMs: number; maxNetworkRetries: number }): number {
  const perRequest = o.timeoutMs * (o.maxNetworkRetries + 1) + o.maxNetworkRetries * 5_000;
  const rounds = Math.ceil(Math.ceil(o.batchSize / STRIPE_BATCH) / o.concurrency);
  return perRequest * (rounds + 1) + 5_000;
}

function describe(outcome: MeterEventOutcome | undefined): string {
  if (!outcome) return 'NO_OUTCOME: the gateway returned no outcome for this event';
  return `${outcome.error?.code ?? 'ERROR'}: ${outcome.error?.message ?? 'not delivered'}`.slice(0, 1000);
}

/** A PostgreSQL array literal as a SQL string literal; values are quoted and escaped, so any text is safe in it. */
function pgArray(values: string[]): string {
  return escapeLiteral(`{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`);
}
