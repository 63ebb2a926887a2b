import path from 'node:path';
import Stripe from 'stripe';
import { loadCatalogFile } from '../../src/billing/catalog/catalog-file';
import { CatalogSyncService } from '../../src/billing/catalog/catalog-sync.service';
import { TestClockService } from '../../src/billing/customers/test-clock.service';
import { startEmulator, type RunningEmulator } from '../../src/emulator';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

/**
 * Connected test mode with STRIPE_TEST_CLOCK (the app against a Stripe it does not start: here
 * an emulator whose account leaves a subscription `unpaid` after the last retry): customers go
 * on the named clock, a card that starts failing runs through the retries, the subscription
 * becomes UNPAID with its alert, and paying the invoice brings it back.
 */

const ROOT = path.resolve(__dirname, '../..');
const CLOCK = 'tollgate-connected';
const SECRET = 'whsec_tollgate_unpaid_test_secret_0123456789';
const KEY = 'sk_test_tollgate_connected';
const HOUR = 3600_000;
const DAY = 24 * HOUR;

const VIEW = `{ viewer { subscriptions { id status latestInvoice { status attemptCount nextPaymentAttempt hostedInvoiceUrl } }
  billingAlerts { code message amountDue hostedInvoiceUrl nextPaymentAttempt subscription { status } invoice { status } } } }`;

describe('an unpaid subscription in connected test mode', () => {
  let emulator: RunningEmulator;
  let server: TestServer;
  let stripe: Stripe;
  let clocks: TestClockService;

  beforeAll(async () => {
    emulator = await startEmulator({ port: 0, dunning: { retryDays: [1, 2], afterLast: 'unpaid' } });
    server = await startTestServer({
      STRIPE_SECRET_KEY: KEY,
      STRIPE_API_BASE: emulator.url,
      STRIPE_WEBHOOK_SECRET: SECRET,
      STRIPE_TEST_CLOCK: CLOCK,
      // The test server puts its own database in.
      DATABASE_URL: 'postgres://ignored:ignored@127.0.0.1:1/ignored',
    });
    emulator.addWebhookEndpoint({ url: `${server.url}/webhooks/stripe`, secret: SECRET });
    await new CatalogSyncService(server.gateway!, server.orm.em.fork()).sync(await loadCatalogFile(path.join(ROOT, 'catalog/default.json')));
    stripe = new Stripe(KEY, { host: '127.0.0.1', port: emulator.port, protocol: 'http', maxNetworkRetries: 0 });
    clocks = new TestClockService(server.gateway!);
  });
  afterAll(async () => {
    await server?.stop();
    await emulator?.close();
  });

  async function settle(): Promise<void> {
    await emulator.waitForWebhooks();
    await server.waitForJobs();
  }

  async function view(headers: Record<string, string>) {
    const res = await server.gql(VIEW, {}, headers);
    expect(res.errors).toBeUndefined();
    return res.data.viewer as { subscriptions: any[]; billingAlerts: any[] };
  }

  it('runs a failing card through the retries to UNPAID, and back to ACTIVE once the invoice is paid', async () => {
    expect(server.config.mode).toBe('connected');
    const uma = await authHeader('uma');
    const started = await server.gql(`mutation { startSubscription(input: { plan: "starter" }) { clientSecret subscription { id } } }`, {}, uma);
    expect(started.errors).toBeUndefined();
    await stripe.paymentIntents.confirm(started.data.startSubscription.clientSecret.split('_secret_')[0], { payment_method: 'pm_card_visa' });
    await settle();

    const [customer] = await server.orm.em.fork().getConnection().execute('select stripe_customer_id, stripe_test_clock_id from customers where user_id = ?', ['uma']);
    const clock = (await clocks.find(CLOCK))!;
    expect(customer.stripe_test_clock_id).toBe(clock.id);
    const [sub] = (await stripe.subscriptions.list({ customer: customer.stripe_customer_id })).data;
    expect(sub.status).toBe('active');

    // The card that paid starts failing (the bank refuses every charge from now on).
    const card = sub.default_payment_method as string;
    const res = await fetch(`${emulator.url}/_emulator/payment_methods/${card}/behavior`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ behavior: 'customer_fail' }),
    });
    expect(res.status).toBe(200);

    const periodEnd = sub.items.data[0].current_period_end * 1000;
    await clocks.advance(CLOCK, new Date(periodEnd + HOUR).toISOString());
    await settle();
    let me = await view(uma);
    expect(me.subscriptions[0]).toMatchObject({ status: 'PAST_DUE', latestInvoice: { status: 'OPEN', attemptCount: 1 } });
    expect(me.billingAlerts.map((a) => a.code)).toEqual(['PAYMENT_FAILED']);

    // Both retries fail: the account's setting leaves the subscription unpaid.
    await clocks.advance(CLOCK, new Date(periodEnd + 4 * DAY).toISOString());
    await settle();
    const invoice = (await stripe.invoices.list({ subscription: sub.id, limit: 1 })).data[0];
    expect(invoice).toMatchObject({ status: 'open', attempt_count: 3, next_payment_attempt: null });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('unpaid');
    me = await view(uma);
    expect(me.subscriptions[0]).toMatchObject({ status: 'UNPAID', latestInvoice: { status: 'OPEN', attemptCount: 3, nextPaymentAttempt: null } });
    expect(me.billingAlerts).toEqual([
      {
        code: 'SUBSCRIPTION_UNPAID',
        message: expect.stringContaining('19.00 USD is unpaid'),
        amountDue: 1900,
        hostedInvoiceUrl: invoice.hosted_invoice_url,
        nextPaymentAttempt: null,
        subscription: { status: 'UNPAID' },
        invoice: { status: 'OPEN' },
      },
    ]);

    // The customer pays the invoice with a working card: active again, nothing asked.
    const visa = await stripe.paymentMethods.attach('pm_card_visa', { customer: customer.stripe_customer_id });
    await stripe.invoices.pay(invoice.id, { payment_method: visa.id });
    await settle();
    me = await view(uma);
    expect(me.subscriptions[0]).toMatchObject({ status: 'ACTIVE', latestInvoice: { status: 'PAID' } });
    expect(me.billingAlerts).toEqual([]);
  });
});
