import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { MeterEventOutcome, StripeGateway } from '../../stripe/stripe.gateway';
import type { AppConfig } from '../../config/env';
import { sendMeterEvents, STRIPE_METER_BATCH } from './meter-event-sender';
import { UsageForwardRepository, type ClaimedUsageRow, type UsageOutcomes } from './usage-forward.repository';
import { usageMetrics } from './usage-metrics';

export interface UsageForwarderOptions {
  /** The ORM whose pool the forwarder uses: the job engine's own, never the API's. */
  orm: MikroORM;
  gateway: StripeGateway;
  log: Logger;
  /**
   * Rows claimed at once (USAGE_FORWARDER_BATCH_SIZE), divided among the lanes: each round
   * claims batchSize / lanes rows (rounded up).
   */
  batchSize?: number;
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
   * that one round's database statements overlap another's Stripe requests. Default 3.
   */
  lanes?: number;
}

export interface ForwardRoundResult {
  claimed: number;
  sent: number;
  retrying: number;
  failed: number;
}

/** How often the lag gauge is refreshed while a backlog is drained. */
const LAG_REFRESH_MS = 1000;

/**
 * Sends pending usage rows to Stripe as Billing Meter events, each with its row id as Stripe's
 * `identifier`, and marks them sent or failed. It has no loop of its own: the job engine runs it
 * (the `forward_usage` task, see src/jobs/usage-forward.task.ts), and `npm run usage:forward --
 * --once` drains once.
 *
 * A round claims due rows (see UsageForwardRepository.claim: a short transaction that commits
 * before any Stripe call), sends them, and records the outcomes in another short transaction.
 * Concurrent forwarders (other processes or hosts on the same database) skip locked rows and
 * then see the lease, so each row is sent by one forwarder. Should a lease expire while its
 * forwarder is still sending (or the forwarder die after Stripe accepted but before marking),
 * the row is sent again with the same identifier and Stripe drops the duplicate: it is counted
 * once either way.
 */
export class UsageForwarder {
  private readonly repository: UsageForwardRepository;
  private readonly gateway: StripeGateway;
  private readonly log: Logger;
  private readonly batchSize: number;
  /** Rows claimed per round: batchSize divided among the lanes. */
  private readonly roundSize: number;
  private readonly leaseMs: number;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly concurrency: number;
  private readonly lanes: number;
  private lagMeasuredAt = -Infinity;
  /** What this instance did since it was created. */
  readonly totals: ForwardRoundResult = { claimed: 0, sent: 0, retrying: 0, failed: 0 };

  /** The forwarder as the configuration describes it (USAGE_FORWARDER_*, the Stripe timeout and retries). */
  static fromConfig(config: AppConfig, deps: { orm: MikroORM; gateway: StripeGateway; log: Logger }): UsageForwarder {
    return new UsageForwarder({
      ...deps,
      log: deps.log.child({ component: 'usage-forwarder' }),
      batchSize: config.usageForwarder.batchSize,
      stripeTimeoutMs: config.stripe.timeoutMs,
      stripeMaxNetworkRetries: config.stripe.maxNetworkRetries,
    });
  }

  constructor(options: UsageForwarderOptions) {
    this.repository = new UsageForwardRepository(options.orm);
    this.gateway = options.gateway;
    this.log = options.log;
    this.batchSize = Math.max(1, Math.floor(options.batchSize ?? 2000));
    this.baseBackoffMs = options.baseBackoffMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 10 * 60_000;
    this.concurrency = options.concurrency ?? 4;
    this.lanes = Math.max(1, Math.floor(options.lanes ?? 3));
    // Rows in flight are held from their claim to their mark, long enough for the garbage
    // collector to move them to the old generation: more, smaller rounds keep that lower than
    // fewer, larger ones at the same drain rate.
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

  /**
   * Rounds (`lanes` at once) until nothing that was due when it started is left, or until
   * `deadline` (a `performance.now()` time) passes; rows that fail meanwhile are scheduled for
   * later and not retried by this call, so it ends during an outage too.
   */
  async drain(options: { deadline?: number } = {}): Promise<ForwardRoundResult> {
    const total: ForwardRoundResult = { claimed: 0, sent: 0, retrying: 0, failed: 0 };
    const now = await this.repository.now();
    const lane = async () => {
      for (;;) {
        const round = await this.forwardOnce(now);
        total.claimed += round.claimed;
        total.sent += round.sent;
        total.retrying += round.retrying;
        total.failed += round.failed;
        if (round.claimed === 0 || (options.deadline !== undefined && performance.now() >= options.deadline)) return;
      }
    };
    await Promise.all(Array.from({ length: this.lanes }, lane));
    return total;
  }

  /** One round: claim due rows (due by `dueBy`, a Date or a timestamp as PostgreSQL writes it; default now), send them, record the outcomes. */
  async forwardOnce(dueBy?: Date | string): Promise<ForwardRoundResult> {
    const rows = await this.repository.claim(dueBy ?? null, this.roundSize, this.leaseMs);
    const result: ForwardRoundResult = { claimed: rows.length, sent: 0, retrying: 0, failed: 0 };
    if (rows.length) {
      const outcomes = classify(rows, await sendMeterEvents({ gateway: this.gateway, log: this.log, concurrency: this.concurrency }, rows));
      await this.repository.mark(outcomes, { baseMs: this.baseBackoffMs, maxMs: this.maxBackoffMs });
      if (outcomes.failed.length) this.log.warn({ count: outcomes.failed.length, first: outcomes.failed[0] }, 'usage events refused by Stripe');
      result.sent = outcomes.sent.length;
      result.retrying = outcomes.retry.length;
      result.failed = outcomes.failed.length;
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
    // than after every round: the query reads every pending row.
    if (rows.length < this.roundSize || performance.now() - this.lagMeasuredAt >= LAG_REFRESH_MS) await this.updateLag();
    return result;
  }

  /** Age in seconds of the oldest pending row (0 when none); also published as a gauge. */
  async updateLag(): Promise<number> {
    this.lagMeasuredAt = performance.now();
    const lag = await this.repository.lagSeconds();
    usageMetrics().lag.set(lag);
    return lag;
  }

  /** When the next pending row falls due (a retry, or a lease that may expire); null when none is pending. */
  nextDueAt(): Promise<Date | null> {
    return this.repository.nextDueAt();
  }
}

/** Sorts the rows by outcome: accepted or duplicate (Stripe has it) is sent; retryable or missing is retried. */
function classify(rows: readonly ClaimedUsageRow[], outcomes: Map<string, MeterEventOutcome>): UsageOutcomes {
  const result: UsageOutcomes = { sent: [], retry: [], failed: [] };
  for (const row of rows) {
    const o = outcomes.get(row.id);
    if (o && (o.status === 'accepted' || o.status === 'duplicate')) result.sent.push(row.id);
    else if (!o || o.retryable) result.retry.push({ id: row.id, error: describe(o) });
    else result.failed.push({ id: row.id, error: describe(o) });
  }
  return result;
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
  const rounds = Math.ceil(Math.ceil(o.batchSize / STRIPE_METER_BATCH) / o.concurrency);
  return perRequest * (rounds + 1) + 5_000;
}

function describe(outcome: MeterEventOutcome | undefined): string {
  if (!outcome) return 'NO_OUTCOME: the gateway returned no outcome for this event';
  return `${outcome.error?.code ?? 'ERROR'}: ${outcome.error?.message ?? 'not delivered'}`.slice(0, 1000);
}
