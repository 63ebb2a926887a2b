import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { startEmulator, type RunningEmulator } from '../../src/emulator';
import { createTestDatabase, type TestDatabase } from '../helpers/database';

const ROOT = path.resolve(__dirname, '../..');
const TEST_KEY = 'sk_test_setupcli0123456789';
const WEBHOOK = 'whsec_setupcli0123456789';
const LIVE_KEY = 'sk_live_setupcli0123456789';

const EXISTING = [
  '# Tollgate settings for this machine',
  'PORT=4100 # the API port',
  '',
  "export LOG_LEVEL='debug'",
  '# keep this comment',
  'STRIPE_SECRET_KEY=sk_test_oldkey0000000000',
  'CORS_ORIGINS=http://localhost:3000',
  '',
].join('\n');

let dir: string;
let emu: RunningEmulator;
let db: TestDatabase;

beforeAll(async () => {
  emu = await startEmulator({ port: 0 });
  db = await createTestDatabase('tollgate_setup_cli');
});

afterAll(async () => {
  await emu?.close();
  await db?.drop();
});

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-setup-'));
  await chmod(dir, 0o755);
});

const children = new Set<ChildProcess>();

afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

// eslint-disable-next-line no-control-regex
const strip = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

interface Run {
  child: ChildProcess;
  output: () => string;
  /** Waits until `text` appears after what earlier calls waited for, then types `answer`. */
  answer(text: string | RegExp, answer: string): Promise<void>;
  waitFor(text: string | RegExp): Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Runs `npm run setup`'s command in the temp directory, with stdin a pipe the test types into. */
function setup(args: string[], env: Record<string, string> = {}): Run {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(STRIPE_|DATABASE_URL|AUTH_|NODE_ENV|TEST_DATABASE_URL|TOLLGATE_|DATA_DIR|ALLOW_LIVE_KEYS)/.test(k)),
  );
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/run.cjs'), path.join(ROOT, 'src/cli/setup.ts'), ...args], {
    cwd: dir,
    env: { ...clean, DATA_DIR: path.join(dir, 'data'), STRIPE_API_BASE: emu.url, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let seen = 0;
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d) => {
    stdout += d;
    listeners.forEach((l) => l());
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
    listeners.forEach((l) => l());
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.once('exit', (code, signal) => {
      listeners.forEach((l) => l());
      resolve({ code, signal, stdout: strip(stdout), stderr: strip(stderr) });
    });
  });
  children.add(child);
  void done.then(() => children.delete(child));
  let exited = false;
  void done.then(() => (exited = true));
  const waitFor = (text: string | RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        const rest = strip(stdout).slice(seen);
        const index = typeof text === 'string' ? rest.indexOf(text) : rest.search(text);
        if (index >= 0) {
          clearTimeout(timer);
          listeners.delete(check);
          seen += index + 1;
          resolve();
        } else if (exited || child.exitCode !== null) {
          clearTimeout(timer);
          listeners.delete(check);
          reject(new Error(`exited before "${text}":\n${strip(stdout)}\n${strip(stderr)}`));
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`no "${text}" within 20 s:\n${strip(stdout).slice(seen)}\n${strip(stderr)}`));
      }, 20_000);
      const settle = check;
      listeners.add(settle);
      check();
      void done.finally(() => clearTimeout(timer));
    });
  return {
    child,
    output: () => strip(stdout + stderr),
    waitFor,
    answer: async (text, answer) => {
      await waitFor(text);
      child.stdin!.write(answer);
    },
    done,
  };
}

async function nonInteractive(args: string[], env: Record<string, string> = {}) {
  const run = setup(['--non-interactive', ...args], env);
  run.child.stdin!.end();
  return run.done;
}

const envPath = () => path.join(dir, '.env.local');
const readEnv = () => readFile(envPath(), 'utf8');

describe('npm run setup', () => {
  describe('--non-interactive', () => {
    it('updates values in place, appends new ones and keeps every other line, value and comment', async () => {
      await writeFile(envPath(), EXISTING, { mode: 0o644 });
      const result = await nonInteractive([
        '--stripe-secret-key',
        TEST_KEY,
        '--webhook-secret',
        WEBHOOK,
        '--database-url',
        db.url,
        '--price-map',
        '{"starter":"price_123"}',
      ]);
      expect(result.code).toBe(0);
      const text = await readEnv();
      const lines = text.split('\n');
      expect(lines.slice(0, 7)).toEqual([
        '# Tollgate settings for this machine',
        'PORT=4100 # the API port',
        '',
        "export LOG_LEVEL='debug'",
        '# keep this comment',
        `STRIPE_SECRET_KEY=${TEST_KEY}`,
        'CORS_ORIGINS=http://localhost:3000',
      ]);
      expect(parseEnv(text)).toMatchObject({
        PORT: '4100',
        LOG_LEVEL: 'debug',
        STRIPE_SECRET_KEY: TEST_KEY,
        STRIPE_WEBHOOK_SECRET: WEBHOOK,
        DATABASE_URL: db.url,
        STRIPE_PRODUCT_PRICE_MAP: '{"starter":"price_123"}',
        AUTH_JWT_SECRET: expect.stringMatching(/^.{32,}$/),
      });
      expect((await stat(envPath())).mode & 0o777).toBe(0o600);
      expect(result.stdout).toMatch(/Connected to PostgreSQL [\d.]+[^,]*, database "tollgate_setup_cli_\w+"/);
      expect(result.stdout).toContain('sk_test_…6789 works');
      expect(result.stdout).toContain('updated STRIPE_SECRET_KEY = sk_test_…6789');
      expect(result.stdout).toContain('added   STRIPE_WEBHOOK_SECRET = whsec_…6789');
      const secret = parseEnv(text).AUTH_JWT_SECRET!;
      for (const value of [TEST_KEY, WEBHOOK, secret]) expect(result.stdout + result.stderr).not.toContain(value);

      // The written configuration passes --check.
      const check = setup(['--check']);
      check.child.stdin!.end();
      const checked = await check.done;
      expect(checked.stdout).toContain('The configuration is valid: connected mode.');
      expect(checked.code).toBe(0);
    });

    it('rejects bad key formats with a clear message and leaves the file byte-identical', async () => {
      await writeFile(envPath(), EXISTING);
      const publishable = await nonInteractive(['--stripe-secret-key', 'pk_test_abc123456789']);
      expect(publishable.code).toBe(1);
      expect(publishable.stderr).toContain('That is a publishable key (pk_…); Tollgate needs the secret key');
      const garbage = await nonInteractive(['--stripe-secret-key', 'hello', '--webhook-secret', 'sk_test_abc']);
      expect(garbage.code).toBe(1);
      expect(garbage.stderr).toContain('The Stripe secret key must start with sk_test_, sk_live_ or rk_test_/rk_live_ (got a value of 5 characters).');
      expect(garbage.stderr).toContain('That is a Stripe API key; the webhook signing secret starts with whsec_');
      expect(garbage.stderr).toContain('Nothing written to .env.local.');
      expect(await readEnv()).toBe(EXISTING);
    });

    it('warns about a live key outside production, masked, and refuses a key Stripe rejects', async () => {
      await writeFile(envPath(), EXISTING);
      const result = await nonInteractive(['--stripe-secret-key', LIVE_KEY, '--webhook-secret', WEBHOOK]);
      expect(result.stdout).toContain('! sk_live_…6789 is a LIVE key but NODE_ENV is development: real cards would be charged.');
      // The emulator, like Stripe's test environment, does not accept a live key.
      expect(result.stdout).toContain('Stripe rejected sk_live_…6789');
      expect(result.code).toBe(1);
      expect(result.stdout + result.stderr).not.toContain(LIVE_KEY);
      expect(await readEnv()).toBe(EXISTING);
    });

    it('creates the catalog in Stripe and the database with --catalog-sync', async () => {
      const result = await nonInteractive(['--stripe-secret-key', TEST_KEY, '--webhook-secret', WEBHOOK, '--database-url', db.url, '--catalog-sync']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/stripe\s+create\s+product\s+starter/);
      expect(result.stdout).toMatch(/Catalog synced: Stripe: \d+ create; database: \d+ create\./);
      const again = await nonInteractive(['--catalog-sync']);
      expect(again.stdout).toContain('Catalog already in sync.');
    });

    it('warns about a test key in production', async () => {
      const result = await nonInteractive(['--stripe-secret-key', TEST_KEY, '--webhook-secret', WEBHOOK, '--database-url', db.url], { NODE_ENV: 'production' });
      expect(result.stdout).toContain('! sk_test_…6789 is a TEST key but NODE_ENV is production');
      expect(result.code).toBe(0);
    });
  });

  describe('--check', () => {
    it('lists what is wrong and exits non-zero', async () => {
      await writeFile(envPath(), `STRIPE_SECRET_KEY=${LIVE_KEY}\nSTRIPE_WEBHOOK_SECRET=nope\nDATABASE_URL=postgres://nobody@127.0.0.1:1/none\n`);
      const run = setup(['--check']);
      run.child.stdin!.end();
      const result = await run.done;
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('✗ STRIPE_WEBHOOK_SECRET: must start with whsec_');
      expect(result.stdout).toContain('✗ STRIPE_SECRET_KEY: a live key outside NODE_ENV=production is refused');
      expect(result.stdout).toMatch(/✗ Cannot connect to postgres:\/\/nobody@127\.0\.0\.1:1\/none/);
      expect(result.stdout).toContain('! sk_live_…6789 is a LIVE key');
      expect(result.stderr).toMatch(/\d+ problems found\./);
      expect(result.stdout + result.stderr).not.toContain(LIVE_KEY);
    });

    it('passes in local mode with nothing configured', async () => {
      const run = setup(['--check']);
      run.child.stdin!.end();
      const result = await run.done;
      expect(result.stdout).toContain('The configuration is valid: local mode.');
      expect(result.code).toBe(0);
    });
  });

  describe('interactive', () => {
    it('asks for what is missing, verifies it, and writes the answers keeping the rest of the file', async () => {
      await writeFile(envPath(), EXISTING);
      const run = setup([]);
      await run.answer('? Database', '\r'); // local mode: the first choice
      await run.answer('? Keep the Stripe key sk_test_…0000?', 'n\n');
      await run.answer(/\? Stripe\s*\n/, '\r'); // a secret key: the first choice
      await run.answer('? Stripe secret key (sk_test_', 'pk_test_nope\n');
      await run.waitFor('That is a publishable key');
      run.child.stdin!.write('\x7f'.repeat(12) + `${TEST_KEY}\n`);
      await run.waitFor('sk_test_…6789 works');
      await run.answer('? Webhook signing secret', `${WEBHOOK}\n`);
      await run.answer('? Products and prices', '\x1b[B\r'); // the price map: the second choice
      await run.answer('? Plan to price id', 'starter=price_abc,pro=price_def\n');
      await run.answer('? Write .env.local?', 'y\n');
      const result = await run.done;
      expect(result.code).toBe(0);
      const text = await readEnv();
      expect(text.startsWith(EXISTING.replace('sk_test_oldkey0000000000', TEST_KEY))).toBe(true);
      expect(parseEnv(text)).toMatchObject({ STRIPE_WEBHOOK_SECRET: WEBHOOK, STRIPE_PRODUCT_PRICE_MAP: 'starter=price_abc,pro=price_def' });
      expect(parseEnv(text).DATABASE_URL).toBeUndefined();
      expect(result.stdout + result.stderr).not.toContain(TEST_KEY);
      expect(result.stdout + result.stderr).not.toContain(WEBHOOK);
    });

    it('says what it found in the configured database', async () => {
      await writeFile(envPath(), `DATABASE_URL=${db.url}\n`);
      const run = setup([]);
      await run.waitFor(/Connected to PostgreSQL [\d.]+[^,]*, database "tollgate_setup_cli_\w+"/);
      await run.answer('? Keep DATABASE_URL', 'y\n');
      await run.answer(/\? Stripe\s*\n/, '\x1b[B\r'); // the emulator
      await run.waitFor('Nothing to change in .env.local.');
      const result = await run.done;
      expect(result.code).toBe(0);
      expect(await readEnv()).toBe(`DATABASE_URL=${db.url}\n`);
    });

    it('leaves the file byte-identical when interrupted with Ctrl-C half-way', async () => {
      await writeFile(envPath(), EXISTING, { mode: 0o640 });
      const run = setup([]);
      await run.answer('? Database', '\r');
      await run.answer('? Keep the Stripe key', 'n\n');
      await run.answer(/\? Stripe\s*\n/, '\r');
      await run.answer('? Stripe secret key (sk_test_', `${TEST_KEY}\n`);
      await run.waitFor('? Webhook signing secret');
      run.child.kill('SIGINT');
      const result = await run.done;
      expect(result.code).toBe(130);
      expect(result.stderr).toContain('Setup cancelled; the env file was not changed.');
      expect(await readEnv()).toBe(EXISTING);
      expect((await stat(envPath())).mode & 0o777).toBe(0o640);
      expect(await readdir(dir)).toEqual(['.env.local']);
    });
  });
});
