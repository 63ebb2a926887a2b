import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { startEmulator, type RunningEmulator } from '../../src/emulator';
import { createTestDatabase, type TestDatabase } from '../helpers/database';

const ROOT = path.resolve(__dirname, '../..');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
let emu: RunningEmulator;
let db: TestDatabase;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-catalog-cli-'));
  await chmod(dir, 0o755);
  await copyFile(path.join(ROOT, 'catalog/default.json'), path.join(dir, 'catalog.json'));
  emu = await startEmulator({ port: 0 });
  db = await createTestDatabase('tollgate_catalog_cli');
});

afterAll(async () => {
  await emu?.close();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

/** Runs `npm run catalog:sync`'s command in a clean directory against the emulator and the test database. */
function catalogSync(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(STRIPE_|DATABASE_URL|AUTH_|NODE_ENV|TEST_DATABASE_URL|TOLLGATE_|DATA_DIR|CATALOG_FILE)/.test(k)),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts/run.cjs'), path.join(ROOT, 'src/cli/catalog-sync.ts'), ...args],
      {
        cwd: dir,
        env: {
          ...clean,
          DATA_DIR: path.join(dir, 'data'),
          DATABASE_URL: db.url,
          STRIPE_SECRET_KEY: 'sk_test_catalog_cli_0123456789',
          STRIPE_WEBHOOK_SECRET: 'whsec_catalogcli',
          STRIPE_API_BASE: emu.url,
          STRIPE_MAX_NETWORK_RETRIES: '0',
          AUTH_JWT_SECRET: 'catalog-cli-secret-0123456789abcdefghijkl',
          ...env,
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

async function stripeCounts() {
  const res = await fetch(`${emu.url}/v1/prices?limit=100`, { headers: { authorization: 'Bearer sk_test_count' } });
  const prices = ((await res.json()) as { data: { active: boolean; unit_amount: number }[] }).data;
  const products = ((await (await fetch(`${emu.url}/v1/products?limit=100`, { headers: { authorization: 'Bearer sk_test_count' } })).json()) as { data: unknown[] }).data;
  return { prices: prices.length, active: prices.filter((p) => p.active).length, products: products.length, events: emu.events().length };
}

async function dbCounts(): Promise<Record<string, number>> {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  try {
    const counts: Record<string, number> = {};
    for (const table of ['products', 'prices', 'meters']) {
      const exists = await client.query(`select to_regclass($1) as t`, [table]);
      counts[table] = exists.rows[0].t ? Number((await client.query(`select count(*) from ${table}`)).rows[0].count) : -1;
    }
    return counts;
  } finally {
    await client.end();
  }
}

describe('npm run catalog:sync', () => {
  it('runs in order: a failure half-way, a run that finishes, a no-op, a dry run that writes nothing', async () => {
    // The database is migrated by the first real run; a dry run on an unmigrated database refuses.
    const early = await catalogSync(['--dry-run', '--file', 'catalog.json']);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/pending migrations/);

    const fault = await fetch(`${emu.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 500, count: 1, path: '/v1/prices', method: 'POST' }),
    });
    expect(fault.ok).toBe(true);
    const failed = await catalogSync(['--file', 'catalog.json']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/catalog:sync stopped: .*\nWhat was done so far is kept; run it again/);
    expect(`${failed.stdout}${failed.stderr}`).not.toContain('sk_test_catalog_cli_0123456789');

    const finished = await catalogSync(['--file', 'catalog.json']);
    expect(finished).toMatchObject({ code: 0, stderr: '' });
    expect(finished.stdout).toMatch(/WHERE\s+ACTION\s+OBJECT\s+KEY\s+DETAIL/);
    expect(finished.stdout).toMatch(/stripe\s+create\s+price\s+starter_monthly\s+1900 usd\/month/);
    expect(finished.stdout).toMatch(/Done: Stripe: \d+ create; database: \d+ create\./);
    expect(await stripeCounts()).toMatchObject({ prices: 6, products: 3 });
    expect(await dbCounts()).toEqual({ products: 3, prices: 6, meters: 1 });

    const again = await catalogSync(['--file', 'catalog.json']);
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout).toMatch(/Nothing to change: Stripe and the database already match catalog\.json\./);

    const file = JSON.parse(await readFile(path.join(dir, 'catalog.json'), 'utf8'));
    file.products[0].prices[0].unitAmount = 2400;
    await writeFile(path.join(dir, 'catalog.json'), JSON.stringify(file));
    const stripeBefore = await stripeCounts();
    const dbBefore = await dbCounts();
    const dry = await catalogSync(['--dry-run', '--file', 'catalog.json']);
    expect(dry).toMatchObject({ code: 0, stderr: '' });
    expect(dry.stdout).toMatch(/stripe\s+replace\s+price\s+starter_monthly\s+unit amount 1900 → 2400; archives price_/);
    expect(dry.stdout).toMatch(/Dry run: 3 changes planned \(Stripe: 1 replace; database: 1 archive, 1 create\)\. Nothing was written\./);
    expect(await stripeCounts()).toEqual(stripeBefore);
    expect(await dbCounts()).toEqual(dbBefore);

    const applied = await catalogSync(['--file', 'catalog.json']);
    expect(applied.code).toBe(0);
    expect(await stripeCounts()).toMatchObject({ prices: 7, active: 6 });
    // Six runs of the command, each a Node process that compiles the CLI as it starts.
  }, 120_000);

  it('refuses without a Stripe key, pointing at local mode', async () => {
    const result = await catalogSync([], { STRIPE_SECRET_KEY: '', STRIPE_WEBHOOK_SECRET: '', DATABASE_URL: '' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/needs STRIPE_SECRET_KEY/);
  });

  it('prints the usage and exits with 2 for an unknown flag', async () => {
    const result = await catalogSync(['--bogus']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/usage: npm run catalog:sync/);
  });
});
