import type { Runner, WorkerEvents } from 'graphile-worker';
import { Client } from 'pg';
import { createLogger } from '../../src/common/logger';
import { loadConfig } from '../../src/config/env';
import { initORM, migrate } from '../../src/db/orm';
import { installJobQueue, startJobRunner } from '../../src/jobs/job-runner';
import { DisabledStripeGateway } from '../../src/stripe/disabled.gateway';
import { createTestDatabase, type TestDatabase } from '../helpers/database';

const silent = createLogger({ level: 'silent' });

/**
 * The job runner's recovery when graphile-worker's pool begins shutting down on its own (it could
 * not record a job's end: the database went away) and that shutdown never finishes. The engine
 * is a stand-in whose pool does exactly that; the queue, its locks and the runner are real.
 */
describe('job runner: a worker pool whose shutdown never finishes', () => {
  let db: TestDatabase;
  let client: Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    const orm = await initORM({ url: db.url });
    await migrate(orm);
    await orm.close();
    await installJobQueue(db.url, silent);
    client = new Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('is given up: a new pool starts, and the jobs the stuck one held are released to run again', async () => {
    const pools: string[] = [];
    const stops: string[] = [];
    let events: WorkerEvents | undefined;
    // Each start makes a pool that announces itself as graphile-worker's does and never ends.
    const run = (async (options: { events?: WorkerEvents }) => {
      events = options.events;
      const id = `stuck-pool-${pools.length + 1}`;
      pools.push(id);
      events!.emit('pool:create', { workerPool: { id } } as never);
      return { promise: new Promise<void>(() => undefined), stop: async () => void stops.push(id) } as unknown as Runner;
    }) as never;
    const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: db.url, USAGE_FORWARDER_ENABLED: 'false' } as NodeJS.ProcessEnv, { envFiles: [] });
    const jobs = await startJobRunner({ config, databaseUrl: db.url, gateway: new DisabledStripeGateway(), log: silent, engine: { run, shutdownGiveUpMs: 200 } });
    try {
      expect(pools).toEqual(['stuck-pool-1']);
      // A job the first pool had taken when it began to shut down.
      const { rows } = await client.query<{ id: string }>(`select id from graphile_worker.add_job('stripe_events_catch_up', '{}'::json, job_key => 'held')`);
      await client.query(`update graphile_worker._private_jobs set locked_at = now(), locked_by = 'stuck-pool-1' where id = $1`, [rows[0].id]);
      events!.emit('pool:gracefulShutdown', { workerPool: { id: 'stuck-pool-1' }, message: 'Could not completeJobs' } as never);

      // Given up after 200 ms, then started again after the runner's usual pause.
      const deadline = Date.now() + 15_000;
      while (pools.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(pools).toEqual(['stuck-pool-1', 'stuck-pool-2']);
      expect(stops).toContain('stuck-pool-1');
      const held = await client.query(`select locked_by from graphile_worker._private_jobs where id = $1`, [rows[0].id]);
      expect(held.rows).toEqual([{ locked_by: null }]);
    } finally {
      await jobs.stop();
    }
  }, 30_000);
});
