import type { ClientBase } from 'pg';

/** The tasks of the job engine, by name (graphile-worker's task identifiers). */
export const TASKS = {
  /** Applies the pending events of one Stripe object. Payload: StripeObjectJob. */
  stripeObject: 'stripe_object',
  /** Lists Stripe's events for deliveries never received, and re-enqueues stale ones. */
  eventsCatchUp: 'stripe_events_catch_up',
  /** Sends pending usage rows to Stripe's meter events (see src/jobs/usage-forward.task.ts). */
  forwardUsage: 'forward_usage',
} as const;

/**
 * The one key and queue of the `forward_usage` job: one job pending at a time, and its queue
 * runs one at a time, so a single forwarding run is in progress across every instance.
 */
export const USAGE_FORWARD_JOB = { key: 'usage:forward', queue: 'usage:forward', maxAttempts: 25 } as const;

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
   * The `add_job` call of a `stripe_object` job as an SQL expression (the job's id), its
   * parameters numbered from `first`: for a caller that enqueues within a statement of its own
   * (see StripeEventRepository).
   *
   * The call is made a second time when the first added nothing. graphile-worker's `add_jobs`
   * first detaches the key from a job already running, then inserts `on conflict (key) do update
   * ... where locked_at is null`; a worker that locks the pending job between those two
   * statements makes the insert wait, then skip the update, and return no job: the event was
   * recorded with no job to apply it, and the job that was just locked may have read the
   * object's pending events before this one committed. It stayed `received` until the catch-up
   * found it minutes later (the long tail that made a backlog look like it drained at about one
   * job a second). The second call sees the job locked, detaches its key and adds a new one.
   */
  stripeObjectJobCall(ref: StripeObjectRef, first: number): { sql: string; values: unknown[] } {
    const payload: StripeObjectJob = { objectType: ref.objectType, objectId: ref.objectId };
    const p = (i: number) => `$${first + i}`;
    const call = `graphile_worker.add_job(${p(0)}::text, ${p(1)}::json, queue_name => ${p(2)}::text, job_key => ${p(3)}::text, max_attempts => ${p(4)}::int, job_key_mode => 'replace')`;
    return {
      // coalesce evaluates its second argument only when the first is null.
      sql: `coalesce((${call}).id, (${call}).id)`,
      values: [TASKS.stripeObject, JSON.stringify(payload), stripeObjectQueue(ref), stripeObjectJobKey(ref), this.maxAttempts],
    };
  }

  /**
   * `add_jobs` of the `stripe_object` jobs of several objects, within a caller's statement: a
   * CTE `specs_name` (one `graphile_worker.job_spec[]` column `a`, null when there is nothing to
   * add) must exist; this gives the CTEs that add them, and add again those the first call left
   * out (see stripeObjectJobCall), and the name of a CTE with one row per job added.
   */
  stripeObjectJobsCtes(specsName: string): { sql: string; added: string } {
    return {
      sql: `jobs_first as (
         select j.key from ${specsName} s cross join lateral graphile_worker.add_jobs(s.a) j where s.a is not null
       ),
       jobs_left as (
         select array_agg(spec) as a from ${specsName} s cross join lateral unnest(s.a) spec
          where s.a is not null and (spec).job_key not in (select key from jobs_first where key is not null)
       ),
       jobs_second as (
         select j.key from jobs_left l cross join lateral graphile_worker.add_jobs(l.a) j where l.a is not null
       ),
       jobs_added as (select key from jobs_first union all select key from jobs_second)`,
      added: 'jobs_added',
    };
  }

  /** The `job_spec` fields of an object's `stripe_object` job: identifier, payload, queue, key, attempts. */
  stripeObjectJobSpec(ref: StripeObjectRef): { payload: string; queue: string; key: string } {
    const payload: StripeObjectJob = { objectType: ref.objectType, objectId: ref.objectId };
    return { payload: JSON.stringify(payload), queue: stripeObjectQueue(ref), key: stripeObjectJobKey(ref) };
  }

  get stripeObjectMaxAttempts(): number {
    return this.maxAttempts;
  }

  /**
   * Wakes the usage forwarding (the `forward_usage` job) at `runAt`, or at once. A job already
   * pending keeps the earlier of its time and this one, so a wake-up is never pushed back by a
   * later retry and a retry never delays a wake-up; while a run is in progress, the job added
   * here runs after it (graphile-worker detaches the key of a running job). Called again when
   * the first call added nothing (see stripeObjectJobCall).
   */
  async addUsageForwardJob(client: ClientBase, runAt: Date | null = null): Promise<void> {
    const { key, queue, maxAttempts } = USAGE_FORWARD_JOB;
    const call = `graphile_worker.add_job($1::text, '{}'::json, queue_name => $2::text, job_key => $3::text, max_attempts => $4::int,
        run_at => least(coalesce($5::timestamptz, now()),
                        (select run_at from graphile_worker._private_jobs where key = $3::text and locked_at is null)),
        job_key_mode => 'replace')`;
    await client.query(`select coalesce((${call}).id, (${call}).id)`, [TASKS.forwardUsage, queue, key, maxAttempts, runAt]);
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
