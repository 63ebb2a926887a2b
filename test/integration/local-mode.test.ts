import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** Runs `npm start`'s command in a clean directory, with no database or Stripe settings. */
function start(dataDir: string, env: Record<string, string> = {}): Promise<Started> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|STRIPE_|AUTH_|TEST_DATABASE_URL|TOLLGATE_|NODE_ENV|PORT|DATA_DIR)/.test(k)),
  );
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/run.cjs'), path.join(ROOT, 'src/main.ts')], {
    cwd: path.dirname(dataDir),
    env: { ...clean, PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 20 s:\n${out}`)), 30_000);
    child.stdout!.on('data', () => {
      const m = /GraphQL\s+(http:\/\/\S+)\/graphql/.exec(out);
      if (m && /Press Ctrl-C/.test(out)) {
        clearTimeout(timer);
        resolve({ child, url: m[1], output: () => out });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before the banner:\n${out}`));
    });
  });
}

function interrupt(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGINT');
  });
}

async function productIds(url: string): Promise<string[]> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ products { id code } }' }),
  });
  const body = (await res.json()) as { data: { products: { id: string }[] } };
  return body.data.products.map((p) => p.id).sort();
}

async function gql(url: string, token: string, query: string): Promise<any> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  return res.json();
}

describe('npm start (local mode)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-local-'));
    await chmod(dir, 0o755); // as root, the cluster runs as "postgres", which must enter it
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('starts with embedded PostgreSQL, stops cleanly on Ctrl-C, and keeps its data for the next start', async () => {
    const dataDir = path.join(dir, 'one');
    const first = await start(dataDir);
    expect(first.output()).toMatch(/running in local mode/);
    expect(first.output()).toMatch(/Database\s+embedded PostgreSQL on 127\.0\.0\.1:\d+, data in .*one/);
    expect(first.output()).toMatch(/Stripe\s+the built-in Stripe emulator at http:\/\/127\.0\.0\.1:\d+/);
    expect(first.output()).toMatch(/Dev token\s+eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    const ids = await productIds(first.url);
    expect(ids).toHaveLength(3);
    const token = /Dev token\s+(\S+)/.exec(first.output())![1];
    const started = await gql(first.url, token, `mutation { startSubscription(input: { plan: "pro", trialDays: 7 }) { subscription { id status } } }`);
    expect(started.data.startSubscription.subscription.status).toBe('TRIALING');
    expect(await interrupt(first.child)).toBe(0);
    expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);

    const second = await start(dataDir);
    expect(await productIds(second.url)).toEqual(ids);
    // The database and the emulator's Stripe state both survived: the subscription can still be changed.
    const id = started.data.startSubscription.subscription.id;
    const canceled = await gql(second.url, token, `mutation { cancelSubscription(id: "${id}", atPeriodEnd: false) { status } }`);
    expect(canceled).toEqual({ data: { cancelSubscription: { status: 'CANCELED' } } });
    expect(await interrupt(second.child)).toBe(0);
  });

  it('runs two instances side by side with different DATA_DIRs', async () => {
    const [a, b] = await Promise.all([start(path.join(dir, 'a')), start(path.join(dir, 'b'))]);
    try {
      expect(a.url).not.toBe(b.url);
      expect(await productIds(a.url)).toHaveLength(3);
      expect(await productIds(b.url)).toHaveLength(3);
    } finally {
      expect(await interrupt(a.child)).toBe(0);
      expect(await interrupt(b.child)).toBe(0);
    }
  });

  it('refuses to start in production without settings, listing every missing variable in one error', async () => {
    const err = await start(path.join(dir, 'prod'), { NODE_ENV: 'production' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toMatch(/exited with 1/);
    for (const name of ['STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET', 'DATABASE_URL']) expect(message).toContain(name);
    expect(message.match(/Invalid configuration/g)).toHaveLength(1);
  });
});
