import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { loadCatalogFile } from '../../src/billing/catalog/catalog-file';
import { CatalogSyncService } from '../../src/billing/catalog/catalog-sync.service';
import { createLogger } from '../../src/common/logger';
import { startEmulator, type RunningEmulator } from '../../src/emulator';
import { startServer, type RunningServer } from '../../src/server';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { stripeEvent, stripeSignature } from '../helpers/stripe-signature';
import { authHeader, postGraphQL, testConfig } from '../helpers/test-server';

/*
 * Several processes on one database, as deployed: app instances that only record, and a
 * standalone worker (`npm run worker`, a real child process) that applies. Stripe is an emulator
 * in this process; it and PostgreSQL outlive the processes that are killed.
 */

const ROOT = path.resolve(__dirname, '../..');
const SECRET = 'whsec_tollgate_workers_test_0123456789';
const STRIPE_KEY = 'sk_test_tollgate_workers_test';
const COUNTER = 100_000;
const START = `mutation { startSubscription(input: { plan: "starter" }) { subscription { id } } }`;

let dir: string;
let emu: RunningEmulator;
let db: TestDatabase;
const apps: RunningServer[] = [];
const workers = new Set<ChildProcess>();

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    STRIPE_SECRET_KEY: STRIPE_KEY,
    STRIPE_API_BASE: emu.url,
    STRIPE_WEBHOOK_SECRET: SECRET,
    RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
    WORKER_DEAD_AFTER_SECONDS: '3',
    ...extra,
  };
}

async function startApp(extra: Record<string, string>): Promise<RunningServer> {
  const app = await startServer(testConfig({ ...env(extra), DATA_DIR: path.join(dir, `app-${apps.length}`) }), {
    log: createLogger({ level: 'silent' }),
    databaseUrl: db.url,
  });
  apps.push(app);
  return app;
}

/** `npm run worker` as a child process; resolves once it works the queue. */
function startWorker(): Promise<ChildProcess> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|STRIPE_|AUTH_|TEST_DATABASE_URL|TOLLGATE_|NODE_ENV|PORT|DATA_DIR|WORKER_|WEBHOOK_)/.test(k)),
  ) as Record<string, string>;
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/run.cjs'), path.join(ROOT, 'src/cli/worker.ts')], {
    cwd: dir,
    env: { ...clean, ...env(), AUTH_JWT_SECRET: 'workers-test-secret-0123456789abcdefghij', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers.add(child);
  child.once('exit', () => workers.delete(child));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${out}`)), 30_000);
    child.stdout!.on('data', () => {
      if (out.includes('"worker started"')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}:\n${out}`));
    });
  });
}

function stopWorker(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

async function sql<T = any>(query: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query(query, params)).rows as T[];
  } finally {
    await client.end();
  }
}

async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function subscribe(app: RunningServer, user: string): Promise<string> {
  const res = await postGraphQL(`http://127.0.0.1:${app.port}/graphql`, START, {}, await authHeader(user));
  expect(res.errors).toBeUndefined();
  const [row] = await sql(`select stripe_subscription_id from subscriptions where id = $1`, [res.data.startSubscription.subscription.id]);
  return row.stripe_subscription_id;
}

const eventsOf = (stripeSubscriptionId: string) =>
  sql<{ stripe_event_id: string; status: string; attempts: number }>(
    `select stripe_event_id, status, attempts from stripe_events where object_type = 'subscription' and object_id = $1 order by stripe_event_id`,
    [stripeSubscriptionId],
  );

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-workers-'));
  await chmod(dir, 0o755);
  emu = await startEmulator({ port: 0, deliveryRetryDelaysMs: [300, 1_000, 2_000] });
  db = await createTestDatabase('tollgate_workers');
  // The first app records only: nothing is applied until a worker runs.
  const first = await startApp({ WORKER_ENABLED: 'false' });
  emu.addWebhookEndpoint({ url: `http://127.0.0.1:${first.port}/webhooks/stripe`, secret: SECRET });
  await new CatalogSyncService(first.gateway!, first.orm.em.fork()).sync(await loadCatalogFile(path.join(ROOT, 'catalog/default.json')));
}, 60_000);

afterAll(async () => {
  await Promise.all([...workers].map((w) => stopWorker(w, 'SIGKILL')));
  for (const app of apps.reverse()) await app.close();
  await emu?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the job engine across processes', () => {
  it('applies an event exactly once when its worker is killed with SIGKILL in the middle of applying it', async () => {
    const id = await subscribe(apps[0], 'killed-mid-apply');
    await emu.waitForWebhooks();
    const recorded = await eventsOf(id);
    expect(recorded.length).toBeGreaterThan(0);
    expect(recorded.every((e) => e.status === 'received')).toBe(true);

    // Stripe takes 5 s to answer the refetch: the worker is killed while it waits.
    const slow = emu.faults.add({ delayMs: 5_000, count: COUNTER, path: '/v1/subscriptions/', method: 'GET' });
    const doomed = await startWorker();
    await eventually(async () => emu.faults.list().find((f) => f.id === slow.id)?.remaining ?? 0, (left) => left < COUNTER);
    await stopWorker(doomed, 'SIGKILL');
    expect((await eventsOf(id)).map((e) => e.status)).toEqual(recorded.map(() => 'received'));
    emu.faults.clear();

    // A new worker, once the dead one's locks are older than WORKER_DEAD_AFTER_SECONDS, frees its job.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    await startWorker();
    const applied = await eventually(() => eventsOf(id), (rows) => rows.every((e) => e.status === 'processed'));
    expect(applied).toEqual(recorded.map((e) => ({ ...e, status: 'processed', attempts: 1 })));
    const stripeNow = await apps[0].gateway!.retrieveSubscription(id);
    expect(await sql(`select status from subscriptions where stripe_subscription_id = $1`, [id])).toEqual([{ status: stripeNow.status }]);
  }, 120_000);

  it('applies each event once with two app instances and a standalone worker on one database', async () => {
    // The second instance runs a worker inside, beside the standalone one started above.
    const second = await startApp({ WORKER_ENABLED: 'true', WORKER_CONCURRENCY: '4' });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await subscribe(apps[i % 2], `shared-${i}`));
    await emu.waitForWebhooks();

    // Every event reaches both instances (Stripe redelivers, a load balancer spreads them).
    const objects = await Promise.all(
      ids.map(async (id) => (await fetch(`${emu.url}/v1/subscriptions/${id}`, { headers: { authorization: `Bearer ${STRIPE_KEY}` } })).json()),
    );
    const events = objects.flatMap((object) => Array.from({ length: 10 }, () => stripeEvent('customer.subscription.updated', object)));
    const post = (port: number, event: object) => {
      const body = JSON.stringify(event);
      return fetch(`http://127.0.0.1:${port}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(body, SECRET) },
        body,
      });
    };
    const statuses = await Promise.all(events.flatMap((e) => [post(apps[0].port, e), post(second.port, e)].map(async (r) => (await r).status)));
    expect(statuses).toEqual(Array(events.length * 2).fill(200));

    const rows = await eventually(
      () => sql(`select stripe_event_id, status, attempts from stripe_events where stripe_event_id = any($1::text[])`, [events.map((e) => e.id)]),
      (r) => r.length === events.length && r.every((e) => e.status === 'processed'),
    );
    expect(rows).toHaveLength(events.length);
    expect(rows.filter((r) => r.status !== 'processed' || r.attempts !== 1)).toEqual([]);
    expect(await sql(`select count(*)::int as n from subscriptions where stripe_subscription_id = any($1::text[])`, [ids])).toEqual([{ n: 6 }]);
  }, 120_000);
});
