import type Stripe from 'stripe';
import { emulatorSdk, paidSubscription } from '../helpers/plan-changes';
import { testClockDriver } from '../helpers/test-clocks';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

/**
 * What the customer is asked to do when a renewal needs them: authenticate a payment (3-D
 * Secure), or nothing more once Stripe's retries ran out and the subscription ended. The real
 * app over HTTP, the emulator's test clock and signed webhooks applied by the job engine.
 */

const CLOCK = 'tollgate-alerts';
const HOUR = 3600_000;
const STARTER = 1900;

const SUB = 'id status latestInvoice { id status amountDue attemptCount nextPaymentAttempt hostedInvoiceUrl }';
const VIEW = `{ viewer { subscriptions { ${SUB} } billingAlerts { code message amountDue nextPaymentAttempt hostedInvoiceUrl invoice { id status } subscription { id status } } } }`;

describe('billingAlerts', () => {
  let server: TestServer;
  let stripe: Stripe;
  let driver: ReturnType<typeof testClockDriver>;

  beforeAll(async () => {
    server = await startTestServer({ STRIPE_TEST_CLOCK: CLOCK });
    stripe = emulatorSdk(server);
    driver = testClockDriver(server, stripe, CLOCK);
  });
  afterAll(async () => {
    await server.stop();
  });

  const advanceTo = (at: Date) => driver.advanceTo(at);
  const useCard = async (stripeSubscriptionId: string, card: string) =>
    driver.useCard((await stripe.subscriptions.retrieve(stripeSubscriptionId)).customer as string, card);

  async function view(headers: Record<string, string>) {
    const res = await server.gql(VIEW, {}, headers);
    expect(res.errors).toBeUndefined();
    return res.data.viewer as { subscriptions: any[]; billingAlerts: any[] };
  }

  it('asks for 3-D Secure when a renewal needs it, and forgets it once the invoice is paid', async () => {
    const zed = await authHeader('zed');
    const sub = await paidSubscription(server, stripe, zed, { plan: 'starter', idempotencyKey: 'zed-starter' });
    await useCard(sub.stripeId, 'pm_card_authenticationRequired');
    const periodEnd = (await stripe.subscriptions.retrieve(sub.stripeId)).items.data[0].current_period_end * 1000;
    await advanceTo(new Date(periodEnd + HOUR));

    const renewal = (await stripe.invoices.list({ subscription: sub.stripeId, limit: 1 })).data[0];
    expect(renewal).toMatchObject({ status: 'open', billing_reason: 'subscription_cycle', attempt_count: 1 });
    let me = await view(zed);
    expect(me.subscriptions[0]).toMatchObject({ id: sub.id, status: 'PAST_DUE', latestInvoice: { status: 'OPEN', amountDue: STARTER, attemptCount: 1 } });
    expect(me.billingAlerts).toEqual([
      expect.objectContaining({
        code: 'PAYMENT_ACTION_REQUIRED',
        amountDue: STARTER,
        hostedInvoiceUrl: renewal.hosted_invoice_url,
        invoice: { id: me.subscriptions[0].latestInvoice.id, status: 'OPEN' },
        subscription: { id: sub.id, status: 'PAST_DUE' },
      }),
    ]);
    expect(me.billingAlerts[0].message).toMatch(/confirm/i);

    // The customer pays the invoice (on its hosted page) with a card that needs no authentication.
    const visa = await stripe.paymentMethods.attach('pm_card_visa', { customer: renewal.customer as string });
    await stripe.invoices.pay(renewal.id, { payment_method: visa.id });
    await server.emulator!.waitForWebhooks();
    me = await view(zed);
    expect(me.subscriptions[0]).toMatchObject({ status: 'ACTIVE', latestInvoice: { status: 'PAID' } });
    expect(me.billingAlerts).toEqual([]);
    const [row] = await server.orm.em.fork().getConnection().execute('select status, attempt_count, action_required_attempt from invoices where stripe_invoice_id = ?', [renewal.id]);
    expect(row).toEqual({ status: 'paid', attempt_count: 1, action_required_attempt: 1 });
  });

  it('follows a declined card through every retry until Stripe ends the subscription, then asks nothing more', async () => {
    const wes = await authHeader('wes');
    const sub = await paidSubscription(server, stripe, wes, { plan: 'starter', idempotencyKey: 'wes-starter' });
    await useCard(sub.stripeId, 'pm_card_chargeCustomerFail');
    const periodEnd = (await stripe.subscriptions.retrieve(sub.stripeId)).items.data[0].current_period_end * 1000;
    await advanceTo(new Date(periodEnd + HOUR));

    const renewal = (await stripe.invoices.list({ subscription: sub.stripeId, limit: 1 })).data[0];
    let attempts = 1;
    for (;;) {
      const invoice = await stripe.invoices.retrieve(renewal.id);
      expect(invoice.attempt_count).toBe(attempts);
      const me = await view(wes);
      const mine = me.subscriptions.find((s) => s.id === sub.id);
      if (!invoice.next_payment_attempt) {
        // The last retry failed: Stripe's default is to cancel, and nothing is asked any more.
        expect(mine.status).toBe('CANCELED');
        expect(me.billingAlerts.filter((a) => a.subscription.id === sub.id)).toEqual([]);
        break;
      }
      expect(mine).toMatchObject({ status: 'PAST_DUE', latestInvoice: { status: 'OPEN', attemptCount: attempts } });
      expect(me.billingAlerts).toEqual([
        expect.objectContaining({ code: 'PAYMENT_FAILED', amountDue: STARTER, nextPaymentAttempt: new Date(invoice.next_payment_attempt * 1000).toISOString() }),
      ]);
      await advanceTo(new Date(invoice.next_payment_attempt * 1000 + HOUR));
      attempts++;
    }
    // Stripe's default schedule: the first attempt and three retries over fifteen days.
    expect(attempts).toBe(4);
    expect((await stripe.subscriptions.retrieve(sub.stripeId)).status).toBe('canceled');
  });

  it('keeps the clock time in test_clocks from its events, and forgets a clock Stripe deleted', async () => {
    const sql = (q: string, p: unknown[] = []) => server.orm.em.fork().getConnection().execute(q, p);
    const clock = (await driver.clocks.find(CLOCK))!;
    expect(await sql('select frozen_time from test_clocks where stripe_test_clock_id = ?', [clock.id])).toEqual([{ frozen_time: expect.anything() }]);
    const [{ frozen_time }] = await sql('select frozen_time from test_clocks where stripe_test_clock_id = ?', [clock.id]);
    expect(new Date(frozen_time).getTime()).toBe(clock.frozenTime.getTime());

    await stripe.testHelpers.testClocks.del(clock.id);
    await server.emulator!.waitForWebhooks();
    expect(await sql('select * from test_clocks where stripe_test_clock_id = ?', [clock.id])).toEqual([]);
    // Its customers went with it (customer.deleted): their next subscription makes new ones.
    expect(await sql('select user_id from customers where stripe_customer_id is not null and stripe_test_clock_id = ?', [clock.id])).toEqual([]);

    // The next customer gets a new clock of the same name.
    const ida = await authHeader('ida');
    const again = await server.gql(`mutation { startSubscription(input: { plan: "starter", trialDays: 7 }) { subscription { status } } }`, {}, ida);
    expect(again.data).toEqual({
      startSubscription: { subscription: { status: 'TRIALING' } },
    });
    const fresh = (await driver.clocks.find(CLOCK))!;
    expect(fresh.id).not.toBe(clock.id);
    expect(await sql('select stripe_test_clock_id from customers where user_id = ?', ['ida'])).toEqual([{ stripe_test_clock_id: fresh.id }]);
  });
});
