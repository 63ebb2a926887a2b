import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { UsageForwarder } from '../billing/usage/usage-forwarder';
import type { JobQueueRepository } from './job-queue.repository';

/** Longest one forwarding run goes on through a backlog before it hands over to the next job. */
const RUN_BUDGET_MS = 20_000;

/**
 * The `forward_usage` task: sends the usage rows due now (see UsageForwarder.drain, batches of up
 * to 100 events on the meter-event stream, on the worker's own pool), then schedules the next
 * run for when the next pending row falls due: at once when rows arrived during the run or the
 * run's budget ran out, at a row's retry time after Stripe failed (so the retries back off with
 * the rows), and not at all when nothing is pending (a recording wakes it; a schedule checks
 * every minute). The job's key and named queue let one run at a time across every instance.
 * A throw (the database gone) makes the job engine retry the job with its own backoff.
 */
export function forwardUsageTask(deps: { forwarder: UsageForwarder; jobs: JobQueueRepository; pool: Pool; log: Logger }): () => Promise<void> {
  const { forwarder, jobs, pool, log } = deps;
  return async () => {
    const deadline = performance.now() + RUN_BUDGET_MS;
    const result = await forwarder.drain({ deadline });
    const next = performance.now() >= deadline && result.claimed > 0 ? new Date() : await forwarder.nextDueAt();
    if (next) {
      const client = await pool.connect();
      try {
        await jobs.addUsageForwardJob(client, next);
      } finally {
        client.release();
      }
    }
    if (result.claimed) log.debug({ ...result, next }, 'usage forwarded');
  };
}
