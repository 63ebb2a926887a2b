import type { ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describeProcess, lockOwner } from '../../src/db/orphaned-postgres';
import { freePort, ready, startTs, stopProcess, type Started } from '../helpers/processes';

/*
 * `npm start` in local mode (embedded PostgreSQL and the emulator in DATA_DIR) killed with
 * SIGKILL, then started again on the same DATA_DIR: the orphaned PostgreSQL of the first run is
 * stopped, the second run starts, and the data of the first (database rows, emulator objects,
 * the webhook signing secret) is there. A PostgreSQL that belongs to a live instance is never
 * touched.
 */

const EMULATOR_KEY = 'sk_test_tollgate_local_emulator';
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status } } }`;
const SUBSCRIPTIONS = `{ subscriptions { id status } }`;

let dir: string;
let dataDir: string;
const children = new Set<ChildProcess>();

function env(port: number): Record<string, string> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|STRIPE_|AUTH_|TEST_DATABASE_URL|TOLLGATE_|NODE_ENV|PORT|DATA_DIR|CATALOG_FILE|EMULATOR_)/.test(k)),
  ) as Record<string, string>;
  return { ...clean, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', RATE_LIMIT_MUTATIONS_PER_MINUTE: '0' };
}

/** Runs the entry point as `npm start` does; resolves at the banner, or with the exit code when it ends first. */
async function startLocal(): Promise<(Started & { url: string; banner: string }) | { exitCode: number | null; output: string }> {
  const port = await freePort();
  const s = await startTs('src/main.ts', [], { cwd: dir, env: env(port), ready: /Press Ctrl-C/, tracked: children });
  return 'child' in s ? { ...s, url: `http://127.0.0.1:${port}`, banner: s.output() } : s;
}

function started<T extends Started>(s: T | { exitCode: number | null; output: string }): T {
  return ready(s) as T;
}

/** Stops whatever PostgreSQL still runs on the test's data directory (an orphan the code under test failed to stop). */
async function stopLeftoverPostgres(): Promise<void> {
  const pid = await lockOwner(path.join(dataDir, 'postgres')).catch(() => null);
  if (pid === null || (await describeProcess(pid)).state !== 'running') return;
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 200 && (await describeProcess(pid)).state === 'running'; i++) await new Promise((r) => setTimeout(r, 100));
}

async function gql(url: string, token: string, query: string, variables?: object): Promise<any> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

function bannerValue(banner: string, pattern: RegExp): string {
  const m = pattern.exec(banner);
  if (!m) throw new Error(`not in the banner (${pattern}):\n${banner}`);
  return m[1];
}

async function stripeList(emulatorUrl: string, p: string): Promise<any[]> {
  const res = await fetch(`${emulatorUrl}${p}?limit=100`, { headers: { authorization: `Bearer ${EMULATOR_KEY}` } });
  return ((await res.json()) as { data: any[] }).data;
}

/** A delivery signed with `secret` as Stripe signs, to the app's webhook route; its HTTP status. */
async function deliver(url: string, secret: string): Promise<number> {
  const body = JSON.stringify({
    id: `evt_test_kill_local_${Date.now()}${Math.floor(Math.random() * 1e6)}`,
    object: 'event',
    api_version: '2026-10-28.endive',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type: 'charge.succeeded',
    data: { object: { id: 'ch_test_kill_local', object: 'charge' } },
  });
  const t = Math.floor(Date.now() / 1000);
  const signature = `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
  const res = await fetch(`${url}/webhooks/stripe`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': signature }, body });
  return res.status;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-kill-local-'));
  // As root, embedded PostgreSQL runs as the postgres user, which must reach the data directory.
  await chmod(dir, 0o755);
  dataDir = path.join(dir, 'data');
});

afterAll(async () => {
  for (const child of children) await stopProcess(child, 'SIGKILL');
  if (dataDir) await stopLeftoverPostgres();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('fault matrix: npm start in local mode killed with SIGKILL', () => {
  it('starts again on the same DATA_DIR, stopping the orphaned PostgreSQL, with the data and the webhook secret of the first run', async () => {
    const first = started(await startLocal());
    const token = bannerValue(first.banner, /Dev token\s+(\S+)/);
    const emulatorUrl = bannerValue(first.banner, /built-in Stripe emulator at (\S+)/);
    const secretFile = bannerValue(first.banner, /signed with the secret in (\S+)/);
    expect(secretFile).toBe(path.join(dataDir, 'stripe-webhook-secret'));
    expect((await stat(secretFile)).mode & 0o777).toBe(0o600);
    const secret = (await readFile(secretFile, 'utf8')).trim();
    expect(secret).toMatch(/^whsec_[0-9a-f]{48}$/);
    expect(await deliver(first.url, secret)).toBe(200);
    expect(await deliver(first.url, 'whsec_not_the_secret')).toBe(400);

    const created = await gql(first.url, token, START, { input: { plan: 'starter', idempotencyKey: 'kill-local-start' } });
    expect(created.errors).toBeUndefined();
    const subscriptionId: string = created.data.startSubscription.subscription.id;
    const stripeSubscriptions = (await stripeList(emulatorUrl, '/v1/subscriptions')).map((s) => s.id);
    expect(stripeSubscriptions).toHaveLength(1);

    const postgresPid = await lockOwner(path.join(dataDir, 'postgres'));
    expect(postgresPid).not.toBeNull();
    await stopProcess(first.child, 'SIGKILL');
    expect(first.child.signalCode).toBe('SIGKILL');
    // What made the next start fail: the server of the killed process keeps running.
    expect((await describeProcess(postgresPid!)).state).toBe('running');

    const second = started(await startLocal());
    expect((await describeProcess(postgresPid!)).state).not.toBe('running');
    expect(second.banner).toContain(`signed with the secret in ${secretFile}`);
    expect((await readFile(secretFile, 'utf8')).trim()).toBe(secret);
    expect((await stat(secretFile)).mode & 0o777).toBe(0o600);
    expect(await deliver(second.url, secret)).toBe(200);

    const listed = await gql(second.url, token, SUBSCRIPTIONS);
    expect(listed.errors).toBeUndefined();
    expect(listed.data.subscriptions.map((s: { id: string }) => s.id)).toEqual([subscriptionId]);
    const secondEmulator = bannerValue(second.banner, /built-in Stripe emulator at (\S+)/);
    expect((await stripeList(secondEmulator, '/v1/subscriptions')).map((s) => s.id)).toEqual(stripeSubscriptions);
    // The same request again converges on the same subscription.
    const again = await gql(second.url, token, START, { input: { plan: 'starter', idempotencyKey: 'kill-local-start' } });
    expect(again.data?.startSubscription.subscription.id).toBe(subscriptionId);

    // A second instance on the same DATA_DIR while this one runs: refused, and this one's database untouched.
    const secondPostgres = await lockOwner(path.join(dataDir, 'postgres'));
    const third = await startLocal();
    expect('child' in third).toBe(false);
    expect((third as { output: string }).output).toMatch(/belongs to another running process/);
    expect((await describeProcess(secondPostgres!)).state).toBe('running');
    expect((await gql(second.url, token, SUBSCRIPTIONS)).data.subscriptions).toHaveLength(1);

    expect(await stopProcess(second.child, 'SIGTERM')).toBe(0);
    expect((await describeProcess(secondPostgres!)).state).not.toBe('running');
  }, 180_000);
});
