import { execFile, type ChildProcess } from 'node:child_process';
import { copyFile, chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { startEmulator, type RunningEmulator } from '../../src/emulator';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { freePort, ready, ROOT, startTs } from '../helpers/processes';
import { authHeader, postGraphQL, TEST_JWT_SECRET } from '../helpers/test-server';

/*
 * The fault matrix, process side: the real server (as `npm start` runs it) is killed with
 * SIGKILL while mutations are in flight, half-way through their Stripe calls, then started
 * again. Stripe (an emulator in this process) and PostgreSQL outlive it, as they would.
 */

const SECRET = 'whsec_tollgate_fault_matrix_kill_0123456789';
const STRIPE_KEY = 'sk_test_tollgate_fault_matrix_kill';
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status } } }`;
const USERS = Array.from({ length: 8 }, (_, i) => `killed-${i}`);

let dir: string;
let emu: RunningEmulator;
let db: TestDatabase;
let port: number;

function env(): Record<string, string> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|STRIPE_|AUTH_|TEST_DATABASE_URL|TOLLGATE_|NODE_ENV|PORT|DATA_DIR|CATALOG_FILE)/.test(k)),
  ) as Record<string, string>;
  return {
    ...clean,
    DATA_DIR: path.join(dir, 'data'),
    DATABASE_URL: db.url,
    STRIPE_SECRET_KEY: STRIPE_KEY,
    STRIPE_WEBHOOK_SECRET: SECRET,
    STRIPE_API_BASE: emu.url,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
  };
}

/** Starts the server's real entry point, as `npm start` does, and waits for its banner. */
async function startProcess(): Promise<{ child: ChildProcess; url: string }> {
  const { child } = ready(
    await startTs('src/main.ts', [], { cwd: dir, env: { ...env(), PORT: String(port), HOST: '127.0.0.1' }, ready: /Press Ctrl-C/, timeoutMs: 30_000 }),
  );
  return { child, url: `http://127.0.0.1:${port}` };
}

function catalogSync(): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(ROOT, 'scripts/run.cjs'), path.join(ROOT, 'src/cli/catalog-sync.ts'), '--file', 'catalog.json'], { cwd: dir, env: env(), timeout: 60_000 }, (error, _stdout, stderr) =>
      error ? reject(new Error(`catalog:sync failed: ${stderr}`)) : resolve(),
    );
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

async function stripeList(p: string): Promise<any[]> {
  const res = await fetch(`${emu.url}${p}${p.includes('?') ? '&' : '?'}limit=100`, { headers: { authorization: `Bearer ${STRIPE_KEY}` } });
  return ((await res.json()) as { data: any[] }).data;
}

/** Per user: Stripe customers, Stripe subscriptions, our customer rows, our subscription rows. */
async function perUser(user: string) {
  const customers = await stripeList(`/v1/customers?email=${encodeURIComponent(`${user}@example.com`)}`);
  let subscriptions = 0;
  for (const c of customers) subscriptions += (await stripeList(`/v1/subscriptions?customer=${c.id}&status=all`)).length;
  const [rows] = await sql(
    `select (select count(*)::int from customers where user_id = $1) as customers,
            (select count(*)::int from subscriptions s join customers c on c.id = s.customer_id where c.user_id = $1) as subscriptions`,
    [user],
  );
  return { stripeCustomers: customers.length, stripeSubscriptions: subscriptions, customers: rows.customers, subscriptions: rows.subscriptions };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-fault-kill-'));
  await chmod(dir, 0o755);
  await copyFile(path.join(ROOT, 'catalog/default.json'), path.join(dir, 'catalog.json'));
  // Stripe retries a failed delivery later; here within seconds, so the test sees the redelivery.
  emu = await startEmulator({ port: 0, deliveryRetryDelaysMs: [300, 1_000, 2_000, 4_000, 8_000] });
  db = await createTestDatabase('tollgate_fault_kill');
  port = await freePort();
  emu.addWebhookEndpoint({ url: `http://127.0.0.1:${port}/webhooks/stripe`, secret: SECRET });
  await catalogSync();
}, 90_000);

afterAll(async () => {
  await emu?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('fault matrix: the server process killed in the middle of requests', () => {
  it('drops the connections, keeps nothing half-written, and the same requests after a restart converge with no duplicates', async () => {
    const first = await startProcess();
    const headers = Object.fromEntries(await Promise.all(USERS.map(async (u) => [u, await authHeader(u)] as const)));
    const input = (user: string) => ({ input: { plan: 'starter', trialDays: 7, idempotencyKey: `${user}-start` } });

    // Every subscription request is held in "Stripe" for a while, so all of them are in flight when the kill comes.
    emu.faults.delayNext(1_500, USERS.length, { path: '/v1/subscriptions', method: 'POST' });
    const inFlight = USERS.map((u) => postGraphQL(`${first.url}/graphql`, START, input(u), headers[u]).then(() => 'answered', () => 'dropped'));
    for (let i = 0; i < 200 && emu.faults.list().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(emu.faults.list()).toEqual([]);
    const exited = new Promise((resolve) => first.child.once('exit', (_code, signal) => resolve(signal)));
    first.child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    // The client sees its connection dropped, with no answer.
    expect(await Promise.all(inFlight)).toEqual(USERS.map(() => 'dropped'));

    // Stripe finished the held requests after the process died; their webhooks find nobody home.
    await new Promise((r) => setTimeout(r, 2_000));
    const whileDown = await Promise.all(USERS.map(perUser));
    for (const state of whileDown) {
      expect(state).toMatchObject({ stripeCustomers: 1, stripeSubscriptions: 1, customers: 1 });
      // The transaction that would have written the row died with the process: no row yet, never half a row.
      expect(state.subscriptions).toBe(0);
    }

    const second = await startProcess();
    try {
      // Stripe's redeliveries arrive at the restarted server and write the rows.
      await emu.waitForWebhooks(20_000);
      expect(await sql(`select status, count(*)::int as n from stripe_events group by status order by status`)).not.toContainEqual(
        expect.objectContaining({ status: 'failed' }),
      );

      // The clients try again with their keys: each gets its subscription, none gets a second one.
      const retried = await Promise.all(USERS.map((u) => postGraphQL(`${second.url}/graphql`, START, input(u), headers[u])));
      for (const res of retried) {
        expect(res.errors).toBeUndefined();
        expect(res.data.startSubscription.subscription.status).toBe('TRIALING');
      }
      await emu.waitForWebhooks(10_000);
      for (const user of USERS) expect(await perUser(user)).toEqual({ stripeCustomers: 1, stripeSubscriptions: 1, customers: 1, subscriptions: 1 });
      const ids = await sql(`select s.id, c.user_id from subscriptions s join customers c on c.id = s.customer_id`);
      for (const res of retried) expect(ids.map((r) => r.id)).toContain(res.data.startSubscription.subscription.id);
    } finally {
      const stopped = new Promise((resolve) => second.child.once('exit', resolve));
      second.child.kill('SIGINT');
      await stopped;
    }
  }, 120_000);
});
