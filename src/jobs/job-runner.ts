import type { MikroORM } from '@mikro-orm/postgresql';
import { Logger as WorkerLogger, parseCronItems, run, runMigrations, type Runner, type TaskList } from 'graphile-worker';
import { Pool } from 'pg';
import type { Logger } from 'pino';
import { jobRunSeconds, jobWaitSeconds } from '../common/metrics';
import type { AppConfig } from '../config/env';
import { initORM } from '../db/orm';
import type { StripeGateway } from '../stripe/stripe.gateway';
import { EventCatchUpService } from '../webhooks/event-catch-up.service';
import { eventHandlers } from '../webhooks/handlers/handler-registry';
import { StripeEventRepository } from '../webhooks/stripe-event.repository';
import { StripeObjectApplier } from '../webhooks/stripe-object.applier';
import { JobQueueRepository, TASKS, type StripeObjectJob } from './job-queue.repository';
import { RateBudget } from './rate-budget';
import { WorkerLivenessRepository } from './worker-liveness.repository';
import { EventEmitter } from 'node:events';
import type { WorkerEvents } from 'graphile-worker';

/** graphile-worker's log lines into ours. */
function workerLogger(log: Logger): WorkerLogger {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const fields = { ...scope, ...meta };
    if (level === 'error') log.error(fields, message);
    else if (level === 'warning') log.warn(fields, message);
    else if (level === 'info') log.info(fields, message);
    else log.debug(fields, message);
  });
}

/**
 * Creates or upgrades the job engine's schema (`graphile_worker`) in the database. Every app
 * instance runs it at start-up, because the webhook route enqueues with `graphile_worker.add_job`
 * even when no worker runs in the same process; graphile-worker serialises concurrent runs.
 */
export async function installJobQueue(databaseUrl: string, log: Logger): Promise<void> {
  await runMigrations({ connectionString: databaseUrl, logger: workerLogger(log.child({ component: 'jobs' })) });
  const pool = new Pool({ connectionString: databaseUrl, max: 1 });
  try {
    await new WorkerLivenessRepository(pool).ensureSchema();
  } finally {
    await pool.end();
  }
}

/** `*\/N` minutes as a crontab line (hours past 59 minutes). */
function everyMinutes(minutes: number): string {
  return minutes < 60 ? `*/${minutes} * * * *` : `0 */${Math.min(23, Math.floor(minutes / 60))} * * *`;
}

export interface RunningJobs {
  stop(): Promise<void>;
}

/**
 * A worker of the job engine: graphile-worker on the same PostgreSQL, with its own two pools
 * (the queue's and the ORM's for applying), each capped at WORKER_DB_POOL_MAX, so a burst of
 * work can never take the API's connections. Runs inside the app by default and alone as
 * `npm run worker`; any number of them share the queue.
 */
export async function startJobRunner(deps: {
  config: AppConfig;
  databaseUrl: string;
  gateway: StripeGateway;
  log: Logger;
  /** Called after a Stripe object was applied (the in-process API drops its catalog cache). */
  onApplied?: (job: StripeObjectJob) => void;
}): Promise<RunningJobs> {
  const { config, databaseUrl, gateway } = deps;
  const log = deps.log.child({ component: 'jobs' });
  const { worker } = config;
  const pool = new Pool({ connectionString: databaseUrl, max: worker.poolMax });
  // A dropped connection (database restart) must not crash the process: the pool makes a new one.
  pool.on('error', (error) => log.warn({ err: error }, 'job queue connection error'));
  pool.on('connect', (client) => client.on('error', (error) => log.warn({ err: error }, 'job queue connection error')));
  let orm: MikroORM | undefined;
  try {
    orm = await initORM({ url: databaseUrl, poolMax: worker.poolMax, log });
    const events = new StripeEventRepository(new JobQueueRepository(worker.maxAttempts));
    const applier = new StripeObjectApplier({
      orm,
      gateway,
      log,
      events,
      handlers: eventHandlers,
      budget: new RateBudget(worker.stripeRequestsPerSecond),
      onApplied: deps.onApplied,
    });
    const liveness = new WorkerLivenessRepository(pool);
    const catchUp = new EventCatchUpService({
      pool,
      gateway,
      events,
      handlers: eventHandlers,
      log,
      staleAfterSeconds: worker.staleAfterSeconds,
    });

    const timed =
      (task: string, fn: (payload: unknown) => Promise<unknown>): TaskList[string] =>
      async (payload, helpers) => {
        jobWaitSeconds.observe({ task }, Math.max(0, (Date.now() - new Date(helpers.job.run_at).getTime()) / 1000));
        const started = process.hrtime.bigint();
        let outcome = 'failed';
        try {
          await fn(payload);
          outcome = 'done';
        } finally {
          jobRunSeconds.observe({ task, outcome }, Number(process.hrtime.bigint() - started) / 1e9);
        }
      };
    const taskList: TaskList = {
      [TASKS.stripeObject]: timed(TASKS.stripeObject, (payload) => applier.apply(payload as StripeObjectJob)),
      [TASKS.eventsCatchUp]: timed(TASKS.eventsCatchUp, async () => {
        const dead = await liveness.unlockDead(worker.deadAfterSeconds);
        if (dead.length) log.warn({ workers: dead }, 'jobs of workers that stopped answering released');
        await catchUp.run();
      }),
    };

    // The ids of this process's graphile workers, heartbeaten so that other processes can tell
    // it is alive (see WorkerLivenessRepository).
    const workerIds: string[] = [];
    const workerEvents: WorkerEvents = new EventEmitter();
    workerEvents.on('worker:create', ({ worker: w }) => workerIds.push(w.workerId));
    const beat = () =>
      liveness.heartbeat(workerIds).catch((error: unknown) => log.warn({ err: error }, 'worker heartbeat failed'));
    const heartbeat = setInterval(beat, Math.max(1000, (worker.deadAfterSeconds * 1000) / 3));
    heartbeat.unref();

    const runner: Runner = await run({
      pgPool: pool,
      taskList,
      concurrency: worker.concurrency,
      pollInterval: worker.pollIntervalMs,
      noHandleSignals: true,
      logger: workerLogger(log),
      events: workerEvents,
      parsedCronItems: parseCronItems([
        { task: TASKS.eventsCatchUp, match: everyMinutes(worker.catchUpMinutes), identifier: TASKS.eventsCatchUp, options: { backfillPeriod: 0, jobKey: TASKS.eventsCatchUp, maxAttempts: 1 } },
      ]),
    });
    await beat();
    // Catch up at start too: an outage of the endpoint heals as soon as a worker is back.
    await pool.query(`select graphile_worker.add_job($1::text, '{}'::json, job_key => $1::text, max_attempts => 1)`, [TASKS.eventsCatchUp]);
    const ormOfRunner = orm;
    return {
      stop: async () => {
        clearInterval(heartbeat);
        await runner.stop();
        await liveness.forget(workerIds).catch(() => undefined);
        await ormOfRunner.close();
        await pool.end();
      },
    };
  } catch (error) {
    await orm?.close();
    await pool.end();
    throw error;
  }
}
