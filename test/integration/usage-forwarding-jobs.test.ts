import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import type { MikroORM } from '@mikro-orm/postgresql';
import { loadCatalogFile } from '../../src/billing/catalog/catalog-file';
import { CatalogSyncService } from '../../src/billing/catalog/catalog-sync.service';
import { createLogger } from '../../src/common/logger';
import { jobRunSeconds } from '../../src/common/metrics';
import { projectRoot } from '../../src/common/paths';
import { initORM, migrate } from '../../src/db/orm';
import { startEmulator, type RunningEmulator } from '../../src/emulator';
import { startServer, type RunningServer } from '../../src/server';
import { StripeSdkGateway } from '../../src/stripe/stripe-sdk.gateway';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { authHeader, postGraphQL, testConfig } from '../helpers/test-server';

/*
 * Usage forwarding on the job engine, end to end: recordUsage over HTTP to the real app, the
 * forward_usage job run by the app's worker (its own pool), meter events counted by the
 * emulator through the real SDK. Two app instances share one database and one Stripe, as
 * production instances behind a load balancer do.
 */

const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id } }`;
const START = `mutation { startSubscription(input: { plan: "pro", trialDays: 14 }) { subscription { id } } }`;

let db: TestDatabase;
let orm: MikroORM;
let emulator: RunningEmulator;
let dataDir: string;
const instances: RunningServer[] = [];

/** An app instance in connected mode on the shared database and emulator. */
async function startInstance(): Promise<RunningServer> {
  const config = testConfig({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    STRIPE_SECRET_KEY: 'sk_test_usage_jobs',
    STRIPE_WEBHOOK_SECRET: 'whsec_usage_jobs',
    STRIPE_API_BASE: emulator.url,
    STRIPE_MAX_NETWORK_RETRIES: '0',
    STRIPE_TIMEOUT_MS: '5000',
    USAGE_FORWARDER_INTERVAL_MS: '20',
    RATE_LIMIT_USAGE_PER_MINUTE: '0',
  });
  const server = await startServer(config, { log: createLogger({ level: 'silent' }), databaseUrl: db.url });
  instances.push(server);
  return server;
}

async function sql<T = any>(query: string, params: unknown[] = []): Promise<T[]> {
  return orm.em.fork().getConnection().execute(query, params);
}

/** Waits for a condition the system must reach by itself; the bound only keeps a broken run from hanging. */
async function eventually(what: string, check: () => Promise<boolean>, boundMs = 30_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Records `count` events over HTTP, spread over `servers` in turn; returns the usage row ids. */
async function recordOver(servers: RunningServer[], user: string, subscriptionId: string, count: number, tag: string): Promise<string[]> {
  const headers = await authHeader(user);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const server = servers[i % servers.length];
    const res = await postGraphQL(`${server.url}/graphql`, RECORD, { input: { subscriptionId, quantity: 1, idempotencyKey: `${tag}-${i}` } }, headers);
    expect(res.errors).toBeUndefined();
    ids.push(res.data.recordUsage.id);
  }
  return ids;
}

async function states(ids: string[]): Promise<Record<string, number>> {
  const rows = await sql<{ state: string; n: number }>(
    `select state, count(*)::int as n from usage_events where id in (select unnest(?::uuid[])) group by state`,
    [`{${ids.join(',')}}`],
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

/** Every row reached Stripe once: received once, accepted once (no duplicate sent). */
function expectForwardedOnceEach(ids: string[]): void {
  const stats = emulator.meterEventStats();
  const wrong = ids.filter((id) => stats.by_identifier[id]?.received !== 1 || stats.by_identifier[id]?.accepted !== 1);
  expect(wrong).toEqual([]);
}

async function subscribe(server: RunningServer, user: string): Promise<string> {
  const res = await postGraphQL(`${server.url}/graphql`, START, {}, await authHeader(user));
  expect(res.errors).toBeUndefined();
  return res.data.startSubscription.subscription.id;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-usage-jobs-'));
  db = await createTestDatabase();
  orm = await initORM({ url: db.url });
  await migrate(orm);
  emulator = await startEmulator({ port: 0 });
  // Connected mode does not seed the catalog: do what `npm run catalog:sync` would.
  const gateway = new StripeSdkGateway({ secretKey: 'sk_test_usage_jobs', apiBase: emulator.url, maxNetworkRetries: 0 });
  await new CatalogSyncService(gateway, orm.em.fork()).sync(await loadCatalogFile(path.join(projectRoot(), 'catalog/default.json')));
}, 60_000);

afterAll(async () => {
  for (const server of instances) await server.close();
  await orm?.close();
  await emulator?.close();
  await db?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('usage forwarding on the job engine', () => {
  let a: RunningServer;
  let b: RunningServer;
  let subscriptionId: string;
  const USER = 'usage-jobs-user';

  beforeAll(async () => {
    a = await startInstance();
    b = await startInstance();
    subscriptionId = await subscribe(a, USER);
  }, 60_000);

  afterEach(() => emulator.faults.clear());

  it('forwards usage recorded over HTTP to Stripe meter events, by the worker, once each', async () => {
    const ids = await recordOver([a], USER, subscriptionId, 25, 'one');
    await eventually('the usage is sent', async () => (await states(ids)).sent === ids.length);
    expectForwardedOnceEach(ids);
    // The forwarding ran as the job engine's task, not inside any request.
    const jobs = await sql<{ n: number }>(`select count(*)::int as n from graphile_worker._private_tasks where identifier = 'forward_usage'`);
    expect(jobs[0].n).toBe(1);
  });

  it('sends each event once when two app instances record and forward on one database', async () => {
    // Concurrent clients on both instances: each instance wakes the one shared job.
    const batches = await Promise.all(
      Array.from({ length: 6 }, (_, client) => recordOver([a, b], USER, subscriptionId, 40, `pair-${client}`)),
    );
    const ids = batches.flat();
    await eventually('the usage is sent', async () => (await states(ids)).sent === ids.length);
    expectForwardedOnceEach(ids);
    const totals = instances.map((s) => s.jobs!.usageForwarder!.totals);
    // What the two workers claimed adds up to what was recorded: no row was claimed twice.
    const recordedSoFar = (await sql<{ n: number }>(`select count(*)::int as n from usage_events`))[0].n;
    expect(totals[0].claimed + totals[1].claimed).toBe(recordedSoFar);
  });

  it('retries with backoff after Stripe answers 500, and loses nothing', async () => {
    const sentBefore = emulator.meterEventStats().total_accepted;
    // Every meter event request fails (the v2 stream and its session, and v1) until cleared.
    emulator.faults.add({ status: 500, count: 100_000, path: '/v2/billing' });
    emulator.faults.add({ status: 500, count: 100_000, path: '/v1/billing/meter_events' });
    const ids = await recordOver([a, b], USER, subscriptionId, 30, 'fault');
    const list = `{${ids.join(',')}}`;
    await eventually('every row failed once', async () => {
      const [row] = await sql<{ n: number }>(`select count(*)::int as n from usage_events where id in (select unnest(?::uuid[])) and state = 'pending' and last_error is not null`, [list]);
      return row.n === ids.length;
    });
    // The job puts itself off until the rows' retry time (a backoff from 1 s, doubling), not a
    // busy loop: over the next 2 s it runs a handful of times, however slow the machine.
    const runs = async () =>
      (await jobRunSeconds.get()).values.filter((v) => v.metricName === 'tollgate_job_run_seconds_count' && v.labels.task === 'forward_usage').reduce((n, v) => n + v.value, 0);
    const runsBefore = await runs();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await runs()) - runsBefore).toBeLessThanOrEqual(6);
    const [{ attempts }] = await sql<{ attempts: number }>(`select max(attempts)::int as attempts from usage_events where id in (select unnest(?::uuid[]))`, [list]);
    expect(attempts).toBeLessThanOrEqual(4);
    expect(emulator.meterEventStats().total_accepted).toBe(sentBefore);

    emulator.faults.clear();
    // Nothing is recorded any more: only the scheduled retry can send them now.
    await eventually('the usage is sent once Stripe is back', async () => (await states(ids)).sent === ids.length, 15_000);
    expectForwardedOnceEach(ids);
    expect(emulator.meterEventStats().total_accepted - sentBefore).toBe(ids.length);
  });
});
