import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import { loadCatalogFile } from '../../src/billing/catalog/catalog-file';
import { CatalogSyncService } from '../../src/billing/catalog/catalog-sync.service';
import { SubscriptionService } from '../../src/billing/subscriptions/subscription.service';
import { UsageForwarder } from '../../src/billing/usage/usage-forwarder';
import { Client } from 'pg';
import { createLogger } from '../../src/common/logger';
import { loadConfig } from '../../src/config/env';
import { JobQueueRepository } from '../../src/jobs/job-queue.repository';
import { installJobQueue, startJobRunner } from '../../src/jobs/job-runner';
import { projectRoot } from '../../src/common/paths';
import { initORM, migrate } from '../../src/db/orm';
import { startEmulator, type RunningEmulator } from '../../src/emulator';
import { StripeSdkGateway } from '../../src/stripe/stripe-sdk.gateway';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { authHeader, postGraphQL, TEST_JWT_SECRET } from '../helpers/test-server';

/**
 * The forwarder under concurrency and failure: several forwarders on one database (in one
 * process with separate connection pools, and as separate processes), Stripe failing for a
 * while, and the server killed with SIGKILL in the middle of a burst of recordUsage. The
 * database and the emulator are shared the way production instances share PostgreSQL and Stripe.
 */

const ROOT = projectRoot();
const silent = createLogger({ level: 'silent' });
const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id idempotencyKey } }`;

let db: TestDatabase;
let orm: MikroORM;
let emulator: RunningEmulator;
let subscriptionId: string;
let customerId: string;
let workDir: string;
const USER = 'forwarding-user';
/** Every process a test started, so a failing test cannot leave one behind. */
const children = new Set<ChildProcess>();

function newGateway(): StripeSdkGateway {
  return new StripeSdkGateway({ secretKey: 'sk_test_x', apiBase: emulator.url, maxNetworkRetries: 0, timeoutMs: 5000 });
}

async function sql<T = any>(query: string, params: unknown[] = []): Promise<T[]> {
  return orm.em.fork().getConnection().execute(query, params);
}

/** `n` pending rows for the test subscription, as recordUsage would have written them. */
async function insertBacklog(n: number, tag: string): Promise<string[]> {
  const rows = await sql<{ id: string }>(
    `insert into usage_events (id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, next_attempt_at, created_at)
     select gen_random_uuid(), ?, ?, 'api_calls', 1, now(), ? || g, 'backlog', now(), now() from generate_series(1, ?) g
     returning id`,
    [customerId, subscriptionId, `${tag}-`, n],
  );
  return rows.map((r) => r.id);
}

async function states(ids: string[]): Promise<Record<string, number>> {
  const rows = await sql<{ state: string; n: number }>(
    `select state, count(*)::int as n from usage_events where id in (select unnest(?::uuid[])) group by state`,
    [`{${ids.join(',')}}`],
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

/** Waits for a condition the system must reach by itself; the bound only keeps a broken run from hanging. */
async function eventually(what: string, check: () => Promise<boolean>, boundMs = 60_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Wakes the forward_usage job, as recording usage does. */
async function wake(): Promise<void> {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  try {
    await new JobQueueRepository(12).addUsageForwardJob(client);
  } finally {
    await client.end();
  }
}

function expectSentOnceEach(ids: string[]): void {
  const stats = emulator.meterEventStats();
  const wrong = ids.filter((id) => stats.by_identifier[id]?.received !== 1 || stats.by_identifier[id]?.accepted !== 1);
  expect(wrong).toEqual([]);
}

/** The environment of a connected-mode process on the test database and the shared emulator. */
function processEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|STRIPE_|AUTH_|TEST_DATABASE_URL|TOLLGATE_|NODE_ENV|PORT|DATA_DIR|USAGE_)/.test(k)),
  );
  return {
    ...clean,
    NODE_ENV: 'test',
    DATABASE_URL: db.url,
    STRIPE_SECRET_KEY: 'sk_test_x',
    STRIPE_WEBHOOK_SECRET: 'whsec_x',
    STRIPE_API_BASE: emulator.url,
    STRIPE_TIMEOUT_MS: '2000',
    STRIPE_MAX_NETWORK_RETRIES: '0',
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'warn',
    PORT: '0',
    DATA_DIR: path.join(workDir, 'data'),
    // The bursts here are far above one user's request budget; limits are not under test.
    RATE_LIMIT_USAGE_PER_MINUTE: '0',
    ...extra,
  };
}

interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Spawns `node scripts/run.cjs <entry>` and resolves once its output matches `ready`. */
function spawnTs(entry: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<Spawned & { match: RegExpExecArray }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/run.cjs'), path.join(ROOT, entry), ...args], {
    cwd: workDir, // no .env files here
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${entry} not ready:\n${out}`)), 45_000);
    const onData = () => {
      const match = ready.exec(out);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve({ child, output: () => out, exited, match });
      }
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited with ${code} before it was ready:\n${out}`));
    });
  });
}

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-usage-'));
  await chmod(workDir, 0o755);
  db = await createTestDatabase();
  orm = await initORM({ url: db.url });
  await migrate(orm);
  emulator = await startEmulator({ port: 0 });
  // Connected mode does not seed the catalog: do what `npm run catalog:sync` would.
  const gateway = newGateway();
  const catalog = await loadCatalogFile(path.join(ROOT, 'catalog/default.json'));
  await new CatalogSyncService(gateway, orm.em.fork()).sync(catalog);
  const started = await new SubscriptionService(orm.em.fork(), gateway, { priceMap: {} }).start(
    { userId: USER, email: 'forwarding@example.com', roles: [], isAdmin: false },
    { plan: 'pro', trialDays: 14 },
  );
  subscriptionId = started.subscription.id;
  customerId = started.subscription.customer.id;
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await orm?.close();
  await emulator?.close();
  await db?.drop();
  await rm(workDir, { recursive: true, force: true });
});

describe(UsageForwarder.name, () => {
  describe('two forwarders on one backlog', () => {
    it.each([
      { name: 'one lane each', batchSize: 50, lanes: undefined },
      { name: 'three lanes each', batchSize: 40, lanes: 3 },
    ])('sends every row exactly once when two forwarders with their own connection pools drain it together ($name)', async ({ batchSize, lanes }) => {
      const ids = await insertBacklog(2000, `pair-${lanes ?? 1}`);
      const orms = await Promise.all([initORM({ url: db.url }), initORM({ url: db.url })]);
      try {
        const [a, b] = orms.map((o) => new UsageForwarder({ orm: o, gateway: newGateway(), log: silent, batchSize, lanes }));
        const [ra, rb] = await Promise.all([a.drain(), b.drain()]);
        // Claims never overlap: together they claimed each row once.
        expect(ra.claimed + rb.claimed).toBe(ids.length);
        expect(ra.sent + rb.sent).toBe(ids.length);
      } finally {
        await Promise.all(orms.map((o) => o.close()));
      }
      expect(await states(ids)).toEqual({ sent: ids.length });
      expectSentOnceEach(ids);
    });

    it('runs its lanes together through a backlog as the job engine\'s forward_usage job, and stops with nothing half-marked', async () => {
      const config = loadConfig(processEnv({ USAGE_FORWARDER_BATCH_SIZE: '50' }), { envFiles: [] });
      await installJobQueue(db.url, silent);
      const jobs = await startJobRunner({ config, databaseUrl: db.url, gateway: newGateway(), log: silent, only: 'usage' });
      const forwarder = jobs.usageForwarder!;
      try {
        const ids = await insertBacklog(3000, 'loop');
        await wake();
        await eventually('the backlog is sent', async () => (await states(ids)).sent === ids.length);
        expectSentOnceEach(ids);
        // Every row was claimed once, by one lane.
        expect(forwarder.totals).toMatchObject({ claimed: ids.length, sent: ids.length, retrying: 0, failed: 0 });
        // Then a few rows at a time, woken as recordUsage wakes the job.
        const more = await insertBacklog(7, 'loop-more');
        await wake();
        await eventually('the new rows are sent', async () => (await states(more)).sent === more.length);
        expectSentOnceEach(more);
      } finally {
        await jobs.stop();
      }
      const [{ n }] = await sql<{ n: number }>(`select count(*)::int as n from usage_events where state = 'pending'`);
      expect(n).toBe(0);
      // Stopped: no forwarding run is left locked in the queue.
      const [{ locked }] = await sql<{ locked: number }>(`select count(*)::int as locked from graphile_worker._private_jobs where locked_at is not null`);
      expect(locked).toBe(0);
    });

    it('sends every row exactly once when two `npm run usage:forward` processes drain it together', async () => {
      const env = processEnv({ USAGE_FORWARDER_BATCH_SIZE: '25', USAGE_FORWARDER_INTERVAL_MS: '20' });
      const forwarders = await Promise.all([0, 1].map(() => spawnTs('src/cli/usage-forward.ts', [], env, /usage forwarder running/)));
      try {
        // Both are workers of the job engine before the backlog appears; whichever takes the job
        // (one run at a time across both) sends it, the other takes the next runs.
        const ids = await insertBacklog(1500, 'procs');
        for (let i = 0; i < 3; i++) await wake();
        await eventually('the backlog is sent', async () => (await states(ids)).sent === ids.length);
        expectSentOnceEach(ids);
      } finally {
        for (const f of forwarders) f.child.kill('SIGTERM');
      }
      expect(await Promise.all(forwarders.map((f) => f.exited))).toEqual([0, 0]);
      // Each prints what it did on stop: together they claimed every row once, never twice.
      const totals = forwarders.map((f) => JSON.parse(f.output().trim().split('\n').pop()!));
      expect(totals[0].claimed + totals[1].claimed).toBe(1500);
      expect(totals[0].sent + totals[1].sent).toBe(1500);
    });

    it('drains what is due and exits with --once', async () => {
      const ids = await insertBacklog(120, 'once');
      const run = await spawnTs('src/cli/usage-forward.ts', ['--once'], processEnv(), /"claimed":\d+/);
      expect(await run.exited).toBe(0);
      expect(JSON.parse(run.output().trim().split('\n').pop()!)).toMatchObject({ claimed: 120, sent: 120, retrying: 0, failed: 0 });
      expect(await states(ids)).toEqual({ sent: ids.length });
      expectSentOnceEach(ids);
    });
  });

  describe('when Stripe is down', () => {
    afterEach(() => emulator.faults.clear());

    it('keeps rows pending with their error while meter event requests fail, then drains them once Stripe is back', async () => {
      const ids = await insertBacklog(300, 'outage');
      // Every meter event request answers 500 (the stream and its sessions, and v1).
      const res = await fetch(`${emulator.url}/_emulator/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ status: 500, count: 10_000, path: '/v2/billing' }),
      });
      expect(res.status).toBe(200);
      emulator.faults.add({ status: 500, count: 10_000, path: '/v1/billing/meter_events' });
      const before = emulator.meterEventStats().total_accepted;
      const forwarder = new UsageForwarder({ orm, gateway: newGateway(), log: silent, batchSize: 100, baseBackoffMs: 5, maxBackoffMs: 20 });

      for (let round = 0; round < 5; round++) {
        await forwarder.drain();
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(await states(ids)).toEqual({ pending: ids.length });
      expect(emulator.meterEventStats().total_accepted).toBe(before);
      const [row] = await sql(`select attempts, last_error from usage_events where id = ?`, [ids[0]]);
      expect(row.attempts).toBeGreaterThan(1);
      expect(row.last_error).toMatch(/PAYMENT_PROVIDER_ERROR/);
      expect(await forwarder.updateLag()).toBeGreaterThan(0);

      emulator.faults.clear();
      await eventually('the backlog drains', async () => {
        await forwarder.forwardOnce();
        return (await states(ids)).sent === ids.length;
      });
      for (const id of ids) expect(emulator.meterEventCount(id)).toBe(1);
    });

    it('marks a row that cannot be sent as failed, with the error, and sends the others', async () => {
      // A customer row that never got a Stripe customer: no meter event can name it.
      const [orphan] = await sql<{ id: string }>(
        `insert into customers (id, user_id, livemode, created_at, updated_at) values (gen_random_uuid(), ?, false, now(), now()) returning id`,
        [`orphan-${randomUUID()}`],
      );
      const good = await insertBacklog(3, 'mixed');
      const [bad] = await sql<{ id: string }>(
        `update usage_events set customer_id = ? where id = ? returning id`,
        [orphan.id, good.pop()],
      );
      const round = await new UsageForwarder({ orm, gateway: newGateway(), log: silent }).drain();
      expect(round.failed).toBe(1);
      expect(await states(good)).toEqual({ sent: 2 });
      const [row] = await sql(`select state, last_error from usage_events where id = ?`, [bad.id]);
      expect(row).toEqual({ state: 'failed', last_error: expect.stringMatching(/no Stripe customer/) });
      expect(emulator.meterEventCount(bad.id)).toBe(0);
      expectSentOnceEach(good);
    });
  });

  describe('a server killed with SIGKILL during a burst of recordUsage', () => {
    // A worker killed mid-run holds the forwarding's queue until it is found dead: after 3 s here.
    const serverEnv = () =>
      processEnv({ HOST: '127.0.0.1', USAGE_FORWARDER_INTERVAL_MS: '20', USAGE_FORWARDER_BATCH_SIZE: '20', WORKER_DEAD_AFTER_SECONDS: '3' });
    const startApp = () => spawnTs('src/main.ts', [], serverEnv(), /GraphQL\s+(http:\/\/\S+)\/graphql[\s\S]*Press Ctrl-C/);

    it('keeps every acknowledged event, and after the restart forwards each exactly once', async () => {
      const headers = await authHeader(USER);
      const input = (key: string) => ({ subscriptionId, quantity: 1, idempotencyKey: key });
      const first = await startApp();
      const endpoint = `${first.match[1]}/graphql`;
      const acknowledged = new Set<string>();
      const unknown = new Set<string>();
      let killed = false;
      let firstError: Error | undefined;
      // 16 clients send events one after another; once 150 are acknowledged the server is killed
      // with requests in flight and its forwarder mid-round.
      await Promise.all(
        Array.from({ length: 16 }, async (_, worker) => {
          for (let i = 0; ; i++) {
            const key = `kill-${worker}-${i}`;
            try {
              const res = await postGraphQL(endpoint, RECORD, { input: input(key) }, headers);
              if (res.errors) throw new Error(JSON.stringify(res.errors));
              acknowledged.add(key);
            } catch (error) {
              unknown.add(key); // no answer: the client cannot know whether it was recorded
              if (!killed) firstError ??= error as Error;
              return;
            }
            if (acknowledged.size >= 150 && !killed) {
              killed = true;
              first.child.kill('SIGKILL');
            }
          }
        }),
      );
      if (!killed) first.child.kill('SIGKILL');
      expect(firstError).toBeUndefined();
      expect(await first.exited).toBe(-1);
      expect(acknowledged.size).toBeGreaterThanOrEqual(150);
      const [{ n: recorded }] = await sql(`select count(*)::int as n from usage_events where idempotency_key like 'kill-%'`);
      expect(recorded).toBeGreaterThanOrEqual(acknowledged.size);

      const second = await startApp();
      try {
        // A client retries what got no answer, with the same keys: each is recorded at most once.
        const retryEndpoint = `${second.match[1]}/graphql`;
        for (const key of unknown) {
          const res = await postGraphQL(retryEndpoint, RECORD, { input: input(key) }, headers);
          expect(res.errors).toBeUndefined();
          acknowledged.add(key);
        }
        const ledger = async () =>
          sql<{ id: string; idempotency_key: string; state: string }>(`select id, idempotency_key, state from usage_events where idempotency_key like 'kill-%'`);
        await eventually('the restarted server forwards the backlog', async () => (await ledger()).every((r) => r.state === 'sent'));
        const rows = await ledger();
        expect(rows.map((r) => r.idempotency_key).sort()).toEqual([...acknowledged].sort());
        const wrong = rows.filter((r) => emulator.meterEventCount(r.id) !== 1);
        expect(wrong).toEqual([]);
      } finally {
        second.child.kill('SIGTERM');
      }
      expect(await second.exited).toBe(0);
    }, 120_000);
  });
});
