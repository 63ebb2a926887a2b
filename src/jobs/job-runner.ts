import { EventEmitter } from 'node:events';
import type { MikroORM } from '@mikro-orm/postgresql';
import {
  Logger as WorkerLogger,
  parseCronItems,
  run,
  runMigrations,
  type Runner,
  type TaskList,
  type WorkerEvents,
  type WorkerPool,
} from 'graphile-worker';
import { Pool } from 'pg';
import type { Logger } from 'pino';
import { jobRunSeconds, jobWaitSeconds } from '../common/metrics';
import type { AppConfig } from '../config/env';
import { initORM } from '../db/orm';
import { definitionsCacheFor } from '../billing/entitlements/definitions-invalidation';
import type { StripeGateway } from '../stripe/stripe.gateway';
import { EventCatchUpService } from '../webhooks/event-catch-up.service';
import { eventHandlers } from '../webhooks/handlers/handler-registry';
import { StripeEventRepository } from '../webhooks/stripe-event.repository';
import { StripeObjectApplier } from '../webhooks/stripe-object.applier';
import { UsageForwarder } from '../billing/usage/usage-forwarder';
import { JobQueueRepository, TASKS, USAGE_FORWARD_JOB, type StripeObjectJob } from './job-queue.repository';
import { forwardUsageTask } from './usage-forward.task';
import { RateBudget } from './rate-budget';
import { WorkerLivenessRepository } from './worker-liveness.repository';

/** graphile-worker's log lines into ours. */
function workerLogger(log: Logger): WorkerLogger {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const fields = { ...scope, ...meta };
    if (level === 'error') log.error(fields, message);
    else if (level === 'warning') log.warn(fields, message);
    // One line per finished job is what /metrics counts: at info it would flood the console.
    else if (level === 'info' && !message.startsWith('Completed task')) log.info(fields, message);
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

/** Wakes up to `count` workers of the pool that wait for their next poll (see startJobRunner). */
function wakeIdleWorkers(pool: WorkerPool | null, count: number): void {
  if (!pool || pool._shuttingDown || pool._forcefulShuttingDown || !pool._active) return;
  try {
    pool.nudge(count);
  } catch {
    // A worker that ended meanwhile (shutdown): nothing to wake.
  }
}

/** How long a stop waits for job fetches still in flight before it closes the pool. */
const FETCH_DRAIN_MS = 5_000;

/** Pause before a worker stopped by a database outage is started again. */
const RESTART_DELAY_MS = 5_000;
/**
 * How long a pool that began shutting down on its own (it could not record a job's end) may take
 * to finish before it is given up and a new one started: a shutdown that meets the database still
 * down can wait on it indefinitely, and the process would run no job meanwhile.
 */
const SHUTDOWN_GIVE_UP_MS = 15_000;

/** `*\/N` minutes as a crontab line (hours past 59 minutes). */
function everyMinutes(minutes: number): string {
  return minutes < 60 ? `*/${minutes} * * * *` : `0 */${Math.min(23, Math.floor(minutes / 60))} * * *`;
}

/**
 * graphile-worker 0.17 records a job's end in the background and, when it cannot (the database
 * went away), shuts its pool down with a promise nobody awaits: unhandled, that rejection would
 * end the whole process. Batching the records (delay 0) routes the failure to the pool's own
 * handler, and these middlewares keep the shutdown's own rejection from escaping; the runner is
 * then started again (see startJobRunner).
 */
function survivableShutdown(log: Logger): GraphileConfig.Preset {
  const logged = (what: string) => (error: unknown) => log.warn({ err: error }, `job worker ${what} shutdown failed`);
  return {
    worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 },
    plugins: [
      {
        name: 'TollgateSurvivableShutdown',
        version: '1.0.0',
        worker: {
          middleware: {
            poolGracefulShutdown: (next) => Promise.resolve(next()).catch(logged('graceful')),
            poolForcefulShutdown: (next) =>
              Promise.resolve(next()).catch((error: unknown) => {
                logged('forceful')(error);
                return { forceFailedJobs: [] };
              }),
          },
        },
      },
    ],
  };
}

export interface RunningJobs {
  /** The usage forwarding of this worker (absent when USAGE_FORWARDER_ENABLED is off): what it sent. */
  usageForwarder?: UsageForwarder;
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
  /** `usage`: only the usage forwarding (`npm run usage:forward`); default: every task. */
  only?: 'usage';
  /** For tests of the runner's own recovery: graphile-worker's `run` and how long a stuck shutdown is waited for. */
  engine?: { run?: typeof run; shutdownGiveUpMs?: number };
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
    // Hooks this ORM's writes of subscriptions and plans to the notifications API instances cache by.
    definitionsCacheFor(orm.em);
    const jobQueue = new JobQueueRepository(worker.maxAttempts);
    const events = new StripeEventRepository(jobQueue);
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
    const webhooks = deps.only !== 'usage';
    // Usage forwarding on this worker's own ORM (its pool, apart from the API's).
    const usageForwarder = config.usageForwarder.enabled ? UsageForwarder.fromConfig(config, { orm, gateway, log }) : undefined;
    const taskList: TaskList = {
      ...(webhooks
        ? {
            [TASKS.stripeObject]: timed(TASKS.stripeObject, (payload) => applier.apply(payload as StripeObjectJob)),
            [TASKS.eventsCatchUp]: timed(TASKS.eventsCatchUp, async () => {
              await catchUp.run();
            }),
          }
        : {}),
      ...(usageForwarder
        ? { [TASKS.forwardUsage]: timed(TASKS.forwardUsage, forwardUsageTask({ forwarder: usageForwarder, jobs: jobQueue, pool, log })) }
        : {}),
    };

    // The id of this process's worker pool (graphile-worker locks jobs and queues under it),
    // heartbeaten so that other processes can tell it is alive (see WorkerLivenessRepository).
    let poolId: string | null = null;
    const workerEvents: WorkerEvents = new EventEmitter();
    let currentPool: WorkerPool | null = null;
    workerEvents.on('pool:create', ({ workerPool }) => {
      poolId = workerPool.id;
      currentPool = workerPool;
    });
    // A job's end wakes the pool's idle workers. graphile-worker wakes them on NOTIFY when a job
    // is added, and otherwise polls every pollInterval; with named queues, two workers asking for
    // a job at the same moment collide (one locks every free queue while it looks, the other
    // finds nothing) and the loser slept a whole poll interval while a backlog waited. Waking
    // them when a job ends (the moment a queue frees up) makes a backlog drain at the speed of
    // the jobs; when nothing is left, each wake-up costs one empty fetch.
    workerEvents.on('job:complete', () => setImmediate(() => wakeIdleWorkers(currentPool, worker.concurrency)));
    // Job fetches in flight: a worker woken just as its pool stops may still be fetching once
    // the runner's stop resolved; the pg pool is ended only after that fetch is over.
    let fetching = 0;
    let fetchesDone: (() => void) | null = null;
    const fetchEnded = () => {
      fetching = Math.max(0, fetching - 1);
      if (fetching === 0) fetchesDone?.();
    };
    workerEvents.on('worker:getJob:start', () => void fetching++);
    workerEvents.on('worker:getJob:empty', fetchEnded);
    workerEvents.on('worker:getJob:error', fetchEnded);
    workerEvents.on('job:start', fetchEnded);
    const liveIds = () => (poolId ? [poolId] : []);
    // Each beat also frees what silent workers hold: a worker killed while it held a named queue
    // (a customer's, or the usage forwarding's) would otherwise block it until the next catch-up.
    const beat = async () => {
      try {
        await liveness.heartbeat(liveIds());
        const dead = await liveness.unlockDead(worker.deadAfterSeconds);
        if (dead.length) log.warn({ workers: dead }, 'jobs of workers that stopped answering released');
      } catch (error) {
        log.warn({ err: error }, 'worker heartbeat failed');
      }
    };
    const heartbeat = setInterval(() => void beat(), Math.max(1000, (worker.deadAfterSeconds * 1000) / 3));
    heartbeat.unref();

    const options = {
      preset: survivableShutdown(log),
      pgPool: pool,
      taskList,
      concurrency: worker.concurrency,
      pollInterval: worker.pollIntervalMs,
      noHandleSignals: true,
      logger: workerLogger(log),
      events: workerEvents,
      parsedCronItems: parseCronItems([
        ...(webhooks
          ? [
              {
                task: TASKS.eventsCatchUp,
                match: everyMinutes(worker.catchUpMinutes),
                identifier: TASKS.eventsCatchUp,
                options: { backfillPeriod: 0, jobKey: TASKS.eventsCatchUp, maxAttempts: 1 },
              },
            ]
          : []),
        // The usage forwarding's safety net: a wake-up lost with a killed process, rows left
        // behind by a forwarder that died holding their lease. A run finding nothing due is cheap.
        ...(usageForwarder
          ? [
              {
                task: TASKS.forwardUsage,
                match: everyMinutes(1),
                identifier: TASKS.forwardUsage,
                options: {
                  backfillPeriod: 0,
                  jobKey: USAGE_FORWARD_JOB.key,
                  queueName: USAGE_FORWARD_JOB.queue,
                  maxAttempts: USAGE_FORWARD_JOB.maxAttempts,
                },
              },
            ]
          : []),
      ]),
    };

    // graphile-worker stops its pool when it cannot record a job's end (the database went away):
    // the runner is started again after a pause, for as long as this process runs, and the jobs
    // it held are released by the liveness check. A pool whose shutdown does not finish (a job
    // whose end was being recorded when the database went away can wait for it forever) is given
    // up after SHUTDOWN_GIVE_UP_MS and replaced the same way; its jobs are released and run again.
    let runner: Runner | null = null;
    let stopping = false;
    let restartTimer: NodeJS.Timeout | null = null;
    /** Pools of this process that stopped: what they still lock is released before a new one starts. */
    const deadPools: string[] = [];
    /** Runners given up while still shutting down: stopped again (briefly) with the process. */
    const abandoned: Runner[] = [];
    const giveUpMs = deps.engine?.shutdownGiveUpMs ?? SHUTDOWN_GIVE_UP_MS;
    /** Told when a pool begins shutting down (see the 'pool:gracefulShutdown' listener below). */
    let onPoolShutdown: ((id: string) => void) | null = null;
    const launch = async (): Promise<void> => {
      if (deadPools.length) {
        await pool.query(`select graphile_worker.force_unlock_workers($1::text[])`, [deadPools]);
        await liveness.forget(deadPools.splice(0));
      }
      const started = await (deps.engine?.run ?? run)(options);
      runner = started;
      const startedPool = poolId;
      let over = false;
      const ended = (error?: unknown) => {
        if (over) return;
        over = true;
        if (runner === started) runner = null;
        if (stopping) return;
        if (startedPool) deadPools.push(startedPool);
        log.error({ err: error }, 'job worker stopped; starting it again');
        scheduleRestart();
      };
      started.promise.then(() => ended(), ended);
      onPoolShutdown = (id) => {
        if (id !== startedPool || stopping) return;
        setTimeout(() => {
          if (over || stopping) return;
          // Its schedule (cron) stops now; its pool's shutdown is left to finish whenever it can.
          abandoned.push(started);
          void started.stop().catch(() => undefined);
          ended(new Error(`job worker pool ${id} did not finish shutting down within ${giveUpMs} ms`));
        }, giveUpMs).unref();
      };
    };
    workerEvents.on('pool:gracefulShutdown', ({ workerPool }) => onPoolShutdown?.(workerPool.id));
    const scheduleRestart = () => {
      if (stopping || restartTimer) return;
      restartTimer = setTimeout(() => {
        restartTimer = null;
        if (stopping) return;
        launch().catch((error: unknown) => {
          log.warn({ err: error }, 'job worker could not start; trying again');
          scheduleRestart();
        });
      }, RESTART_DELAY_MS);
      restartTimer.unref();
    };

    await launch();
    await beat();
    // Catch up at start too: an outage of the endpoint heals as soon as a worker is back; and
    // forward what is pending (recorded while no worker ran).
    if (webhooks) await pool.query(`select graphile_worker.add_job($1::text, '{}'::json, job_key => $1::text, max_attempts => 1)`, [TASKS.eventsCatchUp]);
    if (usageForwarder) {
      const client = await pool.connect();
      try {
        await jobQueue.addUsageForwardJob(client);
      } finally {
        client.release();
      }
    }
    const ormOfRunner = orm;
    let stopped: Promise<void> | null = null;
    const stopAll = async () => {
      stopping = true;
      // No more wake-ups: a worker nudged while its pool shuts down would fetch on a closed pg pool.
      currentPool = null;
      clearInterval(heartbeat);
      if (restartTimer) clearTimeout(restartTimer);
      const current = runner as Runner | null;
      if (current) await current.stop().catch((error: unknown) => log.warn({ err: error }, 'job worker did not stop cleanly'));
      // A pool given up on may still be finishing its shutdown: a short wait, never an endless one.
      await Promise.all(
        abandoned.map((given) =>
          Promise.race([given.stop().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]),
        ),
      );
      await liveness.forget([...liveIds(), ...deadPools]).catch(() => undefined);
      if (fetching > 0) {
        await new Promise<void>((resolve) => {
          fetchesDone = resolve;
          setTimeout(resolve, FETCH_DRAIN_MS).unref();
        });
      }
      await ormOfRunner.close();
      await pool.end();
    };
    // Idempotent: a second stop (the server's closers after a caller stopped it) waits for the first.
    return { usageForwarder, stop: () => (stopped ??= stopAll()) };
  } catch (error) {
    await orm?.close();
    await pool.end();
    throw error;
  }
}
