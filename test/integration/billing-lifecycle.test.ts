import type Stripe from 'stripe';
import { emulatorSdk, START } from '../helpers/plan-changes';
import { testClockDriver } from '../helpers/test-clocks';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

/**
 * A year of a Pro subscription in seconds: the real app over HTTP, the emulator's test clock
 * (customers are created on it as in local mode), signed webhooks applied by the job engine,
 * usage forwarded to Billing Meters, real PostgreSQL. Every step is checked in our tables, in
 * the GraphQL answers and in the emulator.
 */

const CLOCK = 'tollgate-lifecycle';
const HOUR = 3600_000;
const DAY = 24 * HOUR;
const PRO = 9900;

const INVOICE = 'id status amountDue amountPaid total hostedInvoiceUrl nextPaymentAttempt attemptCount periodStart periodEnd';
const SUB = `id status cancelAtPeriodEnd currentPeriodStart currentPeriodEnd trialEnd latestInvoice { ${INVOICE} }`;
const VIEW = `{ viewer {
  subscriptions { ${SUB} }
  billingAlerts { code message amountDue currency nextPaymentAttempt hostedInvoiceUrl trialEnd invoice { id status } subscription { id status } }
} }`;
const INVOICES = `{ invoices(first: 100) { edges { node { id status total amountPaid attemptCount } } } }`;
const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id quantity occurredAt } }`;
const USAGE = `query($id: ID) { usage(subscriptionId: $id) { total from to } }`;
const CANCEL = `mutation($id: ID!) { cancelSubscription(id: $id, atPeriodEnd: true) { id status cancelAtPeriodEnd } }`;
const GET = `query($id: ID!) { subscription(id: $id) { ${SUB} } }`;

describe('billing lifecycle on a test clock', () => {
  let server: TestServer;
  let stripe: Stripe;
  let driver: ReturnType<typeof testClockDriver>;

  const sql = <T = any>(query: string, params: unknown[] = []): Promise<T[]> => server.orm.em.fork().getConnection().execute(query, params);

  beforeAll(async () => {
    server = await startTestServer({ STRIPE_TEST_CLOCK: CLOCK });
    stripe = emulatorSdk(server);
    driver = testClockDriver(server, stripe, CLOCK);
  });
  afterAll(async () => {
    await server.stop();
  });

  const advanceTo = (at: Date) => driver.advanceTo(at);
  const useCard = (stripeCustomerId: string, card: string) => driver.useCard(stripeCustomerId, card);

  async function view(headers: Record<string, string>) {
    const res = await server.gql(VIEW, {}, headers);
    expect(res.errors).toBeUndefined();
    return res.data.viewer as { subscriptions: any[]; billingAlerts: any[] };
  }

  async function invoiceRow(stripeInvoiceId: string) {
    const [row] = await sql('select status, total, amount_paid, attempt_count, next_payment_attempt from invoices where stripe_invoice_id = ?', [stripeInvoiceId]);
    // Timestamps come back as text from the ORM's connection.
    return { ...row, next_payment_attempt: row.next_payment_attempt ? new Date(row.next_payment_attempt) : null };
  }

  it('lives a year of Pro: a trial that converts, usage billed every month, a failing card and its recovery, a cancellation at period end', async () => {
    const yara = await authHeader('yara');
    const started = await server.gql(START, { input: { plan: 'pro', trialDays: 14, idempotencyKey: 'yara-pro' } }, yara);
    expect(started.errors).toBeUndefined();
    const id: string = started.data.startSubscription.subscription.id;
    await server.emulator!.waitForWebhooks();

    // The customer was created on the clock, in Stripe and in our tables.
    const clock = (await driver.clocks.find(CLOCK))!;
    expect(clock).not.toBeNull();
    const [customer] = await sql('select stripe_customer_id, stripe_test_clock_id from customers where user_id = ?', ['yara']);
    expect(customer.stripe_test_clock_id).toBe(clock.id);
    const stripeCustomerId: string = customer.stripe_customer_id;
    expect(((await stripe.customers.retrieve(stripeCustomerId)) as Stripe.Customer).test_clock).toBe(clock.id);
    const [{ stripe_subscription_id: stripeSubId }] = await sql('select stripe_subscription_id from subscriptions where id = ?', [id]);
    await useCard(stripeCustomerId, 'pm_card_visa');

    let me = await view(yara);
    expect(me.subscriptions[0]).toMatchObject({ id, status: 'TRIALING', cancelAtPeriodEnd: false });
    expect(me.billingAlerts).toEqual([]);
    const trialEnd = new Date(me.subscriptions[0].trialEnd);
    expect(trialEnd.getTime() - clock.frozenTime.getTime()).toBe(14 * DAY);

    // Two days before the trial ends Stripe says so (trial_will_end): the customer is told.
    await advanceTo(new Date(trialEnd.getTime() - 2 * DAY));
    me = await view(yara);
    expect(me.billingAlerts).toEqual([expect.objectContaining({ code: 'TRIAL_ENDING', trialEnd: trialEnd.toISOString(), subscription: { id, status: 'TRIALING' }, invoice: null })]);

    // The trial converts: the card pays the first month.
    await advanceTo(new Date(trialEnd.getTime() + HOUR));
    me = await view(yara);
    expect(me.subscriptions[0]).toMatchObject({ status: 'ACTIVE', latestInvoice: { status: 'PAID', amountPaid: PRO, attemptCount: 1 } });
    expect(me.billingAlerts).toEqual([]);

    const renewals: { invoice: string; usage: number }[] = [];
    for (let month = 1; month <= 12; month++) {
      const current = (await view(yara)).subscriptions[0];
      const periodStart = new Date(current.currentPeriodStart);
      const periodEnd = new Date(current.currentPeriodEnd);
      // Usage recorded now is stamped with the clock's time, inside the period it is billed in.
      const usage = 100 * month + 7;
      for (const [i, quantity] of [usage - 7, 7].entries()) {
        const recorded = await server.gql(RECORD, { input: { meter: 'api_calls', quantity, idempotencyKey: `m${month}-${i}` } }, yara);
        expect(recorded.errors).toBeUndefined();
        const at = new Date(recorded.data.recordUsage.occurredAt).getTime();
        expect(at).toBeGreaterThanOrEqual(periodStart.getTime());
        expect(at).toBeLessThan(periodEnd.getTime());
      }
      expect((await server.gql(USAGE, { id }, yara)).data.usage.total).toBe(usage);
      // The job engine's forwarding may hold some rows (claimed, being sent) while this drain
      // runs: wait until every row is sent, by either.
      const unsentRows = async () =>
        (await sql(`select count(*)::int as unsent from usage_events where subscription_id = ? and state <> 'sent'`, [id]))[0].unsent as number;
      for (let tries = 0; tries < 100; tries++) {
        await server.jobs!.usageForwarder!.drain();
        if ((await unsentRows()) === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await unsentRows()).toBe(0);

      if (month === 4) await useCard(stripeCustomerId, 'pm_card_chargeCustomerFail');
      if (month === 12) {
        const canceled = await server.gql(CANCEL, { id }, yara);
        expect(canceled.data.cancelSubscription).toMatchObject({ status: 'ACTIVE', cancelAtPeriodEnd: true });
      }
      await advanceTo(new Date(periodEnd.getTime() + HOUR));

      const inStripe = (await stripe.invoices.list({ subscription: stripeSubId, limit: 1 })).data[0];
      if (month === 12) {
        // Ended at the period end: a last invoice bills the month's usage, and nothing renews.
        expect(((await stripe.subscriptions.retrieve(stripeSubId)) as Stripe.Subscription).status).toBe('canceled');
        expect(inStripe).toMatchObject({ total: usage, status: 'paid' });
        me = await view(yara);
        expect(me.subscriptions[0]).toMatchObject({ status: 'CANCELED', latestInvoice: { status: 'PAID', total: usage } });
        expect(me.billingAlerts).toEqual([]);
        renewals.push({ invoice: inStripe.id, usage });
        break;
      }

      // The renewal carries the month's usage and the next month of Pro.
      expect(inStripe.total).toBe(PRO + usage);
      renewals.push({ invoice: inStripe.id, usage });
      if (month !== 4) {
        expect(inStripe.status).toBe('paid');
        expect(await invoiceRow(inStripe.id)).toMatchObject({ status: 'paid', total: PRO + usage, amount_paid: PRO + usage });
        me = await view(yara);
        expect(me.subscriptions[0]).toMatchObject({ status: 'ACTIVE', latestInvoice: { status: 'PAID', total: PRO + usage } });
        expect(me.billingAlerts).toEqual([]);
        continue;
      }

      // Month 4: the card is declined. Past due, with Stripe's retry schedule, everywhere.
      expect(inStripe).toMatchObject({ status: 'open', attempt_count: 1 });
      const firstRetry = new Date(inStripe.next_payment_attempt! * 1000);
      expect(firstRetry.getTime()).toBe(periodEnd.getTime() + 3 * DAY);
      expect(await invoiceRow(inStripe.id)).toMatchObject({ status: 'open', attempt_count: 1, next_payment_attempt: firstRetry });
      me = await view(yara);
      expect(me.subscriptions[0]).toMatchObject({
        status: 'PAST_DUE',
        latestInvoice: { status: 'OPEN', amountDue: PRO + usage, amountPaid: 0, attemptCount: 1, nextPaymentAttempt: firstRetry.toISOString(), hostedInvoiceUrl: inStripe.hosted_invoice_url },
      });
      expect(me.billingAlerts).toEqual([
        expect.objectContaining({
          code: 'PAYMENT_FAILED',
          amountDue: PRO + usage,
          currency: 'usd',
          nextPaymentAttempt: firstRetry.toISOString(),
          hostedInvoiceUrl: inStripe.hosted_invoice_url,
          subscription: { id, status: 'PAST_DUE' },
          invoice: { id: me.subscriptions[0].latestInvoice.id, status: 'OPEN' },
        }),
      ]);
      expect((await server.gql(GET, { id }, yara)).data.subscription.status).toBe('PAST_DUE');

      // The first retry fails too: a second attempt, the next one five days later.
      await advanceTo(new Date(firstRetry.getTime() + HOUR));
      const retried = await stripe.invoices.retrieve(inStripe.id);
      expect(retried).toMatchObject({ status: 'open', attempt_count: 2 });
      const secondRetry = new Date(retried.next_payment_attempt! * 1000);
      expect(secondRetry.getTime()).toBe(firstRetry.getTime() + 5 * DAY);
      me = await view(yara);
      expect(me.subscriptions[0]).toMatchObject({ status: 'PAST_DUE', latestInvoice: { attemptCount: 2, nextPaymentAttempt: secondRetry.toISOString() } });
      expect(me.billingAlerts).toEqual([expect.objectContaining({ code: 'PAYMENT_FAILED', nextPaymentAttempt: secondRetry.toISOString() })]);

      // The customer replaces the card (as in the portal); the next retry pays and all is well again.
      await useCard(stripeCustomerId, 'pm_card_visa');
      await advanceTo(new Date(secondRetry.getTime() + HOUR));
      expect(await stripe.invoices.retrieve(inStripe.id)).toMatchObject({ status: 'paid', amount_paid: PRO + usage });
      expect(await invoiceRow(inStripe.id)).toMatchObject({ status: 'paid', amount_paid: PRO + usage, next_payment_attempt: null });
      me = await view(yara);
      expect(me.subscriptions[0]).toMatchObject({ status: 'ACTIVE', latestInvoice: { status: 'PAID', amountPaid: PRO + usage, nextPaymentAttempt: null } });
      expect(me.billingAlerts).toEqual([]);
      expect((await server.gql(GET, { id }, yara)).data.subscription).toMatchObject({ status: 'ACTIVE', latestInvoice: { status: 'PAID' } });
    }

    // 11 renewals and the last invoice, each with its month's usage.
    expect(renewals.map((r) => r.usage)).toEqual(Array.from({ length: 12 }, (_, i) => 100 * (i + 1) + 7));
    const [row] = await sql(`select status, cancel_at_period_end from subscriptions where id = ?`, [id]);
    expect(row).toEqual({ status: 'canceled', cancel_at_period_end: expect.any(Boolean) });

    // The invoice list matches Stripe's, one row per invoice, all paid.
    const all = (await stripe.invoices.list({ customer: stripeCustomerId, limit: 100 })).data;
    const listed = (await server.gql(INVOICES, {}, yara)).data.invoices.edges.map((e: any) => e.node);
    expect(listed).toHaveLength(all.length);
    expect(listed.map((i: any) => i.total)).toEqual(all.map((i) => i.total));
    expect(listed.every((i: any) => i.status === 'PAID')).toBe(true);
    const [{ n }] = await sql('select count(*)::int as n from invoices i join customers c on c.id = i.customer_id where c.user_id = ?', ['yara']);
    expect(n).toBe(all.length);
  }, 120_000);
});
