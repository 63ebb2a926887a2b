import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { emulatorSdk, paidSubscription } from '../helpers/plan-changes';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const ROOT = path.resolve(__dirname, '../..');
const CLOCK = 'tollgate-cli';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npm run clock -- ...` as a person runs it next to a local `npm start` using `dataDir`. */
function clock(args: string[], dataDir: string, cwd: string): Promise<Result> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(STRIPE_|DATABASE_URL|AUTH_|NODE_ENV|TEST_DATABASE_URL|TOLLGATE_|DATA_DIR)/.test(k)),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts/run.cjs'), path.join(ROOT, 'src/cli/clock.ts'), ...args],
      { cwd, env: { ...clean, DATA_DIR: dataDir, STRIPE_TEST_CLOCK: CLOCK }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

describe('npm run clock', () => {
  let server: TestServer;
  let dir: string;
  let dataDir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-clock-cli-'));
    await chmod(dir, 0o755);
    dataDir = path.join(dir, 'data');
    server = await startTestServer({ STRIPE_TEST_CLOCK: CLOCK, DATA_DIR: dataDir });
  });
  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('shows and advances the clock of the running local server, printing the renewals it caused', async () => {
    const before = await clock(['status'], dataDir, dir);
    expect(before).toMatchObject({ code: 0, stdout: expect.stringContaining(`No test clock named "${CLOCK}"`) });

    const stripe = emulatorSdk(server);
    const ann = await authHeader('ann');
    const sub = await paidSubscription(server, stripe, ann, { plan: 'starter', idempotencyKey: 'ann-starter' });
    const [{ id: clockId }] = (await stripe.testHelpers.testClocks.list()).data.filter((c) => c.name === CLOCK);

    const status = await clock(['status'], dataDir, dir);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^${CLOCK} ${clockId}: \\d{4}-\\d{2}-\\d{2}T.*, ready\\nin the emulator of npm start`));

    const advanced = await clock(['advance', '1month'], dataDir, dir);
    expect(advanced.stderr).toBe('');
    expect(advanced.code).toBe(0);
    const renewal = (await stripe.invoices.list({ subscription: sub.stripeId, limit: 1 })).data[0];
    expect(renewal.billing_reason).toBe('subscription_cycle');
    expect(advanced.stdout).toContain(`Clock ${CLOCK} (${clockId}) moved from`);
    expect(advanced.stdout).toContain(`${renewal.id} renewal of ${renewal.customer as string}`);
    expect(advanced.stdout).toContain('19.00 USD, paid');
    expect(advanced.stdout).toMatch(/invoice\.paid x1/);
    expect(advanced.stdout).toMatch(/test_helpers\.test_clock\.ready x1/);
    expect((await stripe.testHelpers.testClocks.retrieve(clockId)).status).toBe('ready');

    // The app heard of it through its webhooks.
    await server.emulator!.waitForWebhooks();
    const [row] = await server.orm.em.fork().getConnection().execute('select status, total from invoices where stripe_invoice_id = ?', [renewal.id]);
    expect(row).toEqual({ status: 'paid', total: 1900 });

    // The README's walk-through: a card that starts failing, then a card that works.
    const declining = await clock(['card', 'ann@example.com', 'declining'], dataDir, dir);
    expect(declining).toMatchObject({ code: 0, stdout: expect.stringContaining(`pm_card_chargeCustomerFail (pm_`) });
    expect(declining.stdout).toContain(`and of ${sub.stripeId}.`);
    const failed = await clock(['advance', '1month'], dataDir, dir);
    expect(failed.code).toBe(0);
    expect(failed.stdout).toMatch(/renewal of cus_\w+ [\d.-]+: 19\.00 USD, payment failed \(attempt 1, next \d{4}-\d{2}-\d{2}\)/);
    expect(failed.stdout).toContain(`${sub.stripeId}: active -> past_due`);
    await server.emulator!.waitForWebhooks();
    const alerts = `{ viewer { subscriptions { status } billingAlerts { code } } }`;
    expect((await server.gql(alerts, {}, ann)).data.viewer).toEqual({ subscriptions: [{ status: 'PAST_DUE' }], billingAlerts: [{ code: 'PAYMENT_FAILED' }] });

    expect((await clock(['card', 'ann@example.com', 'visa'], dataDir, dir)).code).toBe(0);
    const recovered = await clock(['advance', '7d'], dataDir, dir);
    expect(recovered.stdout).toContain(`${sub.stripeId}: past_due -> active`);
    await server.emulator!.waitForWebhooks();
    expect((await server.gql(alerts, {}, ann)).data.viewer).toEqual({ subscriptions: [{ status: 'ACTIVE' }], billingAlerts: [] });

    // A year at once: Stripe moves a clock two billing intervals at most, so it goes a month at a time.
    const year = await clock(['advance', '1y'], dataDir, dir);
    expect(year.code).toBe(0);
    expect(year.stdout).toContain('(12 steps of a month at most)');
    expect(year.stdout.match(/renewal of cus_\w+ [\d.-]+: 19\.00 USD, paid/g)).toHaveLength(12);
  }, 90_000);

  it('refuses what it cannot do with a message and a non-zero exit', async () => {
    expect(await clock(['advance', 'soon'], dataDir, dir)).toMatchObject({ code: 2, stderr: expect.stringContaining('neither a span') });
    expect(await clock(['advance', '2020-01-01'], dataDir, dir)).toMatchObject({ code: 2, stderr: expect.stringContaining('only moves forward') });
    expect(await clock(['rewind'], dataDir, dir)).toMatchObject({ code: 2, stderr: expect.stringContaining('usage: npm run clock') });
    expect(await clock(['status', '--clock', 'no-such-clock'], dataDir, dir)).toMatchObject({ code: 0, stdout: expect.stringContaining('No test clock named "no-such-clock"') });
    expect(await clock(['advance', '1d', '--clock', 'no-such-clock'], dataDir, dir)).toMatchObject({ code: 1, stderr: expect.stringContaining('No test clock named "no-such-clock"') });
    expect(await clock(['card', 'ann@example.com', 'gold'], dataDir, dir)).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown card "gold"') });
    expect(await clock(['card', 'nobody@example.com', 'visa'], dataDir, dir)).toMatchObject({ code: 2, stderr: expect.stringContaining('No Stripe customer with the email') });
    const elsewhere = path.join(dir, 'no-server');
    expect(await clock(['status'], elsewhere, dir)).toMatchObject({ code: 1, stderr: expect.stringContaining('start the app with npm start first') });
  });
});
