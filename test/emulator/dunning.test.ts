/**
 * Dunning through the official SDK: a failed renewal makes the subscription past_due, the clock
 * retries the invoice on the configured schedule (`next_payment_attempt`, `attempt_count`), a
 * replaced payment method recovers it, and the last failure cancels it (or leaves it unpaid).
 */
import Stripe from 'stripe';
import { failure, recurringPrice, startHarness, useHarness, type Harness } from './helpers';

const DAY = 86400;
const T0 = Date.UTC(2031, 2, 10, 9) / 1000;
const RENEWAL = Date.UTC(2031, 3, 10, 9) / 1000;

type Ev = Record<string, any>;

/** A customer on a fresh test clock, subscribed (and paid) with a working card, then switched to `card`. */
async function subscribed(h: Harness, card: string, amount = 2000) {
  const { stripe } = h;
  const price = await recurringPrice(stripe, amount);
  const clock = await stripe.testHelpers.testClocks.create({ frozen_time: T0 });
  const customer = await stripe.customers.create({ email: 'dun@x.io', test_clock: clock.id, payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
  const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
  expect(sub.status).toBe('active');
  const failing = await stripe.paymentMethods.attach(card, { customer: customer.id });
  await stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: failing.id } });
  const advance = (to: number) => stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: to });
  const events = (mark: number): Ev[] =>
    h.emu.events().slice(mark).filter((e) => e.data.object.customer === customer.id && /^(invoice|customer\.subscription)\./.test(e.type));
  return { clock, customer, sub, advance, events };
}

async function latestInvoice(stripe: Stripe, sub: string): Promise<Stripe.Invoice> {
  return (await stripe.subscriptions.retrieve(sub, { expand: ['latest_invoice'] })).latest_invoice as Stripe.Invoice;
}

describe('with the default schedule (retries after 3, 5 and 7 days, then cancel)', () => {
  const harness = useHarness();

  test('a failed renewal → past_due, retried on schedule; a replaced card recovers it on the next retry → active', async () => {
    const h = harness();
    const { stripe } = h;
    const { customer, sub, advance, events } = await subscribed(h, 'pm_card_chargeCustomerFail');

    let mark = h.emu.events().length;
    await advance(RENEWAL + 3600);
    let inv = await latestInvoice(stripe, sub.id);
    expect(inv).toMatchObject({ billing_reason: 'subscription_cycle', status: 'open', attempted: true, attempt_count: 1, next_payment_attempt: RENEWAL + 3 * DAY });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('past_due');
    const renewal = events(mark);
    expect(renewal.map((e) => e.type)).toEqual(['invoice.created', 'invoice.finalized', 'invoice.payment_failed', 'customer.subscription.updated']);
    expect(renewal.map((e) => e.created)).toEqual([RENEWAL, RENEWAL, RENEWAL, RENEWAL]);
    expect(renewal[2].data.object).toMatchObject({ attempt_count: 1, next_payment_attempt: RENEWAL + 3 * DAY });
    expect(renewal[3].data.object.status).toBe('past_due');
    expect(renewal[3].data.previous_attributes).toMatchObject({ status: 'active' });

    // First retry, three days later: fails again; the next one is five days after it.
    mark = h.emu.events().length;
    await advance(RENEWAL + 4 * DAY);
    inv = await latestInvoice(stripe, sub.id);
    expect(inv).toMatchObject({ status: 'open', attempt_count: 2, next_payment_attempt: RENEWAL + 8 * DAY });
    const retry = events(mark);
    expect(retry.map((e) => [e.type, e.created, e.data.object.attempt_count])).toEqual([['invoice.payment_failed', RENEWAL + 3 * DAY, 2]]);

    // The customer replaces the default card: nothing happens until the next retry, which succeeds.
    const good = await stripe.paymentMethods.attach('pm_card_visa', { customer: customer.id });
    await stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: good.id } });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('past_due');
    mark = h.emu.events().length;
    await advance(RENEWAL + 9 * DAY);
    inv = await latestInvoice(stripe, sub.id);
    expect(inv).toMatchObject({ status: 'paid', attempt_count: 3, next_payment_attempt: null, amount_paid: 2000 });
    expect(inv.status_transitions.paid_at).toBe(RENEWAL + 8 * DAY);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
    const recovered = events(mark);
    expect(recovered.map((e) => e.type)).toEqual(['invoice.paid', 'invoice.payment_succeeded', 'customer.subscription.updated']);
    expect(recovered[2].data.previous_attributes).toEqual({ status: 'past_due' });
    expect(recovered.every((e) => e.created === RENEWAL + 8 * DAY)).toBe(true);
  });

  test('after the last retry fails the subscription is canceled (customer.subscription.deleted)', async () => {
    const h = harness();
    const { stripe } = h;
    const { sub, advance, events } = await subscribed(h, 'pm_card_chargeCustomerFail');
    const mark = h.emu.events().length;
    await advance(RENEWAL + 16 * DAY);
    const after = await stripe.subscriptions.retrieve(sub.id);
    expect(after).toMatchObject({ status: 'canceled', ended_at: RENEWAL + 15 * DAY, cancellation_details: { reason: 'payment_failed' } });
    const inv = await latestInvoice(stripe, sub.id);
    expect(inv).toMatchObject({ status: 'open', attempt_count: 4, next_payment_attempt: null });
    const failures = events(mark).filter((e) => e.type === 'invoice.payment_failed');
    expect(failures.map((e) => [e.created, e.data.object.attempt_count, e.data.object.next_payment_attempt])).toEqual([
      [RENEWAL, 1, RENEWAL + 3 * DAY],
      [RENEWAL + 3 * DAY, 2, RENEWAL + 8 * DAY],
      [RENEWAL + 8 * DAY, 3, RENEWAL + 15 * DAY],
      [RENEWAL + 15 * DAY, 4, null],
    ]);
    const tail = events(mark).slice(-2);
    expect(tail.map((e) => [e.type, e.created])).toEqual([['invoice.payment_failed', RENEWAL + 15 * DAY], ['customer.subscription.deleted', RENEWAL + 15 * DAY]]);
  });

  test('paying the invoice explicitly after replacing the card recovers at once; a manual failure leaves the schedule alone', async () => {
    const h = harness();
    const { stripe } = h;
    const { customer, sub, advance, events } = await subscribed(h, 'pm_card_chargeCustomerFail');
    await advance(RENEWAL + 3600);
    const open = await latestInvoice(stripe, sub.id);
    const declined = await failure(stripe.invoices.pay(open.id));
    expect(declined).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(await stripe.invoices.retrieve(open.id)).toMatchObject({ status: 'open', attempt_count: 1, next_payment_attempt: RENEWAL + 3 * DAY });

    const good = await stripe.paymentMethods.attach('pm_card_visa', { customer: customer.id });
    await stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: good.id } });
    const mark = h.emu.events().length;
    const paid = await stripe.invoices.pay(open.id);
    expect(paid).toMatchObject({ status: 'paid', next_payment_attempt: null });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
    expect(events(mark).map((e) => e.type)).toEqual(['invoice.paid', 'invoice.payment_succeeded', 'customer.subscription.updated']);
    // Nothing is retried any more.
    await advance(RENEWAL + 10 * DAY);
    expect((await stripe.invoices.retrieve(open.id)).attempt_count).toBe(1);
  });

  test('voiding the failed invoice stops its retries', async () => {
    const h = harness();
    const { stripe } = h;
    const { sub, advance, events } = await subscribed(h, 'pm_card_chargeCustomerFail');
    await advance(RENEWAL + 3600);
    const open = await latestInvoice(stripe, sub.id);
    expect(await stripe.invoices.voidInvoice(open.id)).toMatchObject({ status: 'void', next_payment_attempt: null });
    const mark = h.emu.events().length;
    await advance(RENEWAL + 20 * DAY);
    expect(events(mark).filter((e) => e.type === 'invoice.payment_failed')).toEqual([]);
    expect((await stripe.invoices.retrieve(open.id)).attempt_count).toBe(1);
  });

  test('replacing the card in the billing portal: the next retry charges the new card', async () => {
    const h = harness();
    const { stripe } = h;
    const { customer, sub, advance } = await subscribed(h, 'pm_card_chargeCustomerFail');
    await advance(RENEWAL + 3600);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('past_due');
    const session = await stripe.billingPortal.sessions.create({ customer: customer.id });
    const url = new URL(session.url);
    const post = (card: string) =>
      fetch(`${url.origin}${url.pathname}/payment_method${url.search}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `card=${card}`, redirect: 'manual' });
    const refused = await post('pm_card_chargeDeclined');
    expect(refused.status).toBe(402);
    expect(await refused.text()).toContain('Your card was declined.');
    expect((await post('pm_card_mastercard')).status).toBe(303);
    const updated = (await stripe.customers.retrieve(customer.id)) as Stripe.Customer;
    const pm = await stripe.paymentMethods.retrieve(updated.invoice_settings.default_payment_method as string);
    expect(pm).toMatchObject({ customer: customer.id, card: { last4: '4444' } });
    await advance(RENEWAL + 4 * DAY);
    expect(await latestInvoice(stripe, sub.id)).toMatchObject({ status: 'paid', attempt_count: 2 });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
  });

  test('the billing portal also replaces the card a subscription names as its own default', async () => {
    const h = harness();
    const { stripe } = h;
    const { customer, sub, advance } = await subscribed(h, 'pm_card_chargeCustomerFail');
    const failing = (await stripe.customers.retrieve(customer.id)) as Stripe.Customer;
    await stripe.subscriptions.update(sub.id, { default_payment_method: failing.invoice_settings.default_payment_method as string });
    await advance(RENEWAL + 3600);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('past_due');
    const session = await stripe.billingPortal.sessions.create({ customer: customer.id });
    const url = new URL(session.url);
    const res = await fetch(`${url.origin}${url.pathname}/payment_method${url.search}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'card=pm_card_mastercard',
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    const replaced = (await stripe.customers.retrieve(customer.id)) as Stripe.Customer;
    expect((await stripe.subscriptions.retrieve(sub.id)).default_payment_method).toBe(replaced.invoice_settings.default_payment_method);
    await advance(RENEWAL + 4 * DAY);
    expect(await latestInvoice(stripe, sub.id)).toMatchObject({ status: 'paid', attempt_count: 2 });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
  });

  test('a card that needs 3-D Secure: invoice.payment_action_required on renewal, past_due until the customer authenticates', async () => {
    const h = harness();
    const { stripe } = h;
    const { sub, advance, events } = await subscribed(h, 'pm_card_authenticationRequired');
    const mark = h.emu.events().length;
    await advance(RENEWAL + 3600);
    expect(events(mark).map((e) => e.type)).toEqual(['invoice.created', 'invoice.finalized', 'invoice.payment_action_required', 'customer.subscription.updated']);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('past_due');
    const inv = await stripe.invoices.retrieve((await latestInvoice(stripe, sub.id)).id, { expand: ['payments'] });
    const pi = inv.payments!.data[0].payment.payment_intent as string;
    expect((await stripe.paymentIntents.retrieve(pi)).status).toBe('requires_action');
    const res = await fetch(`${h.emu.url}/_emulator/payment_intents/${pi}/authenticate`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
  });

  test('a working card can be told to start failing; the global clock drives retries for customers on no test clock', async () => {
    const h = harness();
    const { stripe, emu } = h;
    const price = await recurringPrice(stripe, 1500);
    const customer = await stripe.customers.create({ email: 'global@x.io', payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
    const pm = customer.invoice_settings.default_payment_method as string;
    const res = await fetch(`${emu.url}/_emulator/payment_methods/${pm}/behavior`, { method: 'POST', body: JSON.stringify({ behavior: 'customer_fail' }) });
    expect(res.status).toBe(200);
    expect((await fetch(`${emu.url}/_emulator/payment_methods/${pm}/behavior`, { method: 'POST', body: JSON.stringify({ behavior: 'sometimes' }) })).status).toBe(400);

    const end = sub.items.data[0].current_period_end;
    emu.advanceClock(end - emu.now() + 60);
    let inv = await latestInvoice(stripe, sub.id);
    expect(inv).toMatchObject({ status: 'open', attempt_count: 1, next_payment_attempt: end + 3 * DAY });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('past_due');
    emu.advanceClock(3 * DAY);
    inv = await latestInvoice(stripe, sub.id);
    expect(inv).toMatchObject({ status: 'open', attempt_count: 2, next_payment_attempt: end + 8 * DAY });
    await fetch(`${emu.url}/_emulator/payment_methods/${pm}/behavior`, { method: 'POST', body: JSON.stringify({ behavior: 'succeed' }) });
    emu.advanceClock(5 * DAY);
    expect(await latestInvoice(stripe, sub.id)).toMatchObject({ status: 'paid', attempt_count: 3 });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
  });
});

describe('with a custom schedule ending in unpaid', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ dunning: { retryDays: [1, 2], afterLast: 'unpaid' } });
  });
  afterAll(async () => {
    await h.emu.close();
  });

  test('two retries a day and two days apart, then unpaid; later renewals stay drafts; paying the invoice reactivates', async () => {
    const { stripe } = h;
    const { customer, sub, advance, events } = await subscribed(h, 'pm_card_chargeCustomerFail');
    const mark = h.emu.events().length;
    await advance(RENEWAL + 4 * DAY);
    const failures = events(mark).filter((e) => e.type === 'invoice.payment_failed');
    expect(failures.map((e) => [e.created, e.data.object.next_payment_attempt])).toEqual([
      [RENEWAL, RENEWAL + DAY],
      [RENEWAL + DAY, RENEWAL + 3 * DAY],
      [RENEWAL + 3 * DAY, null],
    ]);
    const unpaid = events(mark).filter((e) => e.type === 'customer.subscription.updated').pop()!;
    expect(unpaid).toMatchObject({ created: RENEWAL + 3 * DAY, data: { object: { status: 'unpaid' }, previous_attributes: { status: 'past_due' } } });
    const open = await latestInvoice(stripe, sub.id);

    // The next renewal leaves its invoice a draft and charges nothing.
    const nextRenewal = Date.UTC(2031, 4, 10, 9) / 1000;
    await advance(nextRenewal + 3600);
    const draft = await latestInvoice(stripe, sub.id);
    expect(draft).toMatchObject({ status: 'draft', auto_advance: false, attempt_count: 0, created: nextRenewal });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('unpaid');
    expect((await stripe.invoices.retrieve(open.id)).status).toBe('open');

    // Paying the latest invoice brings the subscription back.
    const good = await stripe.paymentMethods.attach('pm_card_visa', { customer: customer.id });
    await stripe.invoices.finalizeInvoice(draft.id);
    await stripe.invoices.pay(draft.id, { payment_method: good.id });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
  });
});
