import type { ClientBase } from 'pg';

/** The tasks of the job engine, by name (graphile-worker's task identifiers). */
export const TASKS = {
  /** Applies the pending events of one Stripe object. Payload: StripeObjectJob. */
  stripeObject: 'stripe_object',
  /** Lists Stripe's events for deliveries never received, and re-enqueues stale ones. */
  eventsCatchUp: 'stripe_events_catch_up',
} as const;

/** What a `stripe_object` job is about. */
export interface StripeObjectJob {
  objectType: string;
  objectId: string;
}

export interface StripeObjectRef extends StripeObjectJob {
  /** The Stripe customer the object belongs to: its work runs one job at a time. */
  customerId: string | null;
}

/**
 * The job key: one pending job per Stripe object. A burst of events for one object replaces the
 * pending job instead of adding one per event, so the burst costs one refetch. A job already
 * running keeps running; graphile-worker then adds a new one for what arrived meanwhile.
 */
export function stripeObjectJobKey(ref: StripeObjectJob): string {
  return `stripe:${ref.objectType}:${ref.objectId}`;
}

/**
 * The named queue: graphile-worker runs the jobs of one queue one at a time, so one customer's
 * events apply in series while different customers' run in parallel. Catalog objects share one.
 */
export function stripeObjectQueue(ref: StripeObjectRef): string {
  if (ref.customerId) return `stripe:customer:${ref.customerId}`;
  return ref.objectType === 'product' || ref.objectType === 'price' ? 'stripe:catalog' : `stripe:${ref.objectType}`;
}

/**
 * Enqueues on the job engine with plain SQL (`graphile_worker.add_job`), on a connection the
 * caller holds: inside the caller's transaction, the job exists exactly when the caller's rows
 * commit, and the worker is woken by NOTIFY at commit.
 */
export class JobQueueRepository {
  constructor(private readonly maxAttempts: number) {}

  async addStripeObjectJob(client: ClientBase, ref: StripeObjectRef): Promise<void> {
    const call = this.stripeObjectJobCall(ref, 1);
    await client.query(`select ${call.sql}`, call.values);
  }

  /**
   * The `add_job` call of a `stripe_object` job as an SQL expression, its parameters numbered from
   * `first`: for a caller that enqueues within a statement of its own (see StripeEventRepository).
   */
  stripeObjectJobCall(ref: StripeObjectRef, first: number): { sql: string; values: unknown[] } {
    const payload: StripeObjectJob = { objectType: ref.objectType, objectId: ref.objectId };
    const p = (i: number) => `$${first + i}`;
    return {
      sql: `graphile_worker.add_job(${p(0)}::text, ${p(1)}::json, queue_name => ${p(2)}::text, job_key => ${p(3)}::text, max_attempts => ${p(4)}::int, job_key_mode => 'replace')`,
      values: [TASKS.stripeObject, JSON.stringify(payload), stripeObjectQueue(ref), stripeObjectJobKey(ref), this.maxAttempts],
    };
  }

  /**
   * Jobs waiting, running or due for a retry, by task (the queue depth in `/metrics`); jobs
   * that used up their attempts are counted apart as `failed`.
   */
  async depth(client: ClientBase): Promise<{ task: string; state: 'waiting' | 'running' | 'failed'; count: number }[]> {
    const { rows } = await client.query<{ task: string; state: 'waiting' | 'running' | 'failed'; count: number }>(
      `select task_identifier as task,
              case when locked_at is not null then 'running' when attempts >= max_attempts then 'failed' else 'waiting' end as state,
              count(*)::int as count
         from graphile_worker.jobs
        group by 1, 2`,
    );
    return rows;
  }

  /** True when no job is running or due now (jobs waiting for a later retry do not count). */
  async idle(client: ClientBase, tasks: string[]): Promise<boolean> {
    const { rows } = await client.query<{ busy: boolean }>(
      `select exists (
         select 1 from graphile_worker.jobs
          where task_identifier = any($1::text[])
            and (locked_at is not null or (run_at <= now() and attempts < max_attempts))
       ) as busy`,
      [tasks],
    );
    return !rows[0].busy;
  }
}
