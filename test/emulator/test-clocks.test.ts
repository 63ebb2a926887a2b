/**
 * Stripe's test clocks through the official SDK: the clock objects and their errors, and
 * customers whose subscriptions live at their clock's time and move only when it advances.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { startEmulator } from '../../src/emulator';
import { objectFields } from '../../src/emulator/spec/generate';
import { failure, recurringPrice, sdkFor, useHarness } from './helpers';

const harness = useHarness();
const DAY = 86400;
/** 2030-01-15T12:00:00Z: far from the real date, so nothing here happens by accident. */
const T0 = Date.UTC(2030, 0, 15, 12) / 1000;
const FEB_15 = Date.UTC(2030, 1, 15, 12) / 1000;
const MAR_15 = Date.UTC(2030, 2, 15, 12) / 1000;

function eventsSince(mark: number, filter: (e: Record<string, any>) => boolean = () => true): Record<string, any>[] {
  return harness().emu.events().slice(mark).filter(filter);
}

function aboutCustomer(customer: string) {
  return (e: Record<string, any>) => {
    const o = e.data.object;
    return o.customer === customer || o.id === customer;
  };
}

async function clockCustomer(stripe: Stripe, frozen = T0, card = 'pm_card_visa') {
  const clock = await stripe.testHelpers.testClocks.create({ frozen_time: frozen, name: 'renewals' });
  const customer = await stripe.customers.create({ email: 'clock@x.io', test_clock: clock.id, payment_method: card, invoice_settings: { default_payment_method: card } });
  return { clock, customer };
}

describe('test clocks', () => {
  test('create, retrieve and list answer Stripe\'s test clock object', async () => {
    const { stripe } = harness();
    const clock = await stripe.testHelpers.testClocks.create({ frozen_time: T0, name: 'Annual renewal' });
    expect(clock).toMatchObject({ object: 'test_helpers.test_clock', frozen_time: T0, name: 'Annual renewal', livemode: false, status: 'ready', status_details: {} });
    expect(clock.id).toMatch(/^clock_/);
    expect(clock.deletes_after).toBe(clock.created + 30 * DAY);
    expect(await stripe.testHelpers.testClocks.retrieve(clock.id)).toEqual(expect.objectContaining({ id: clock.id, frozen_time: T0 }));
    const others = [await stripe.testHelpers.testClocks.create({ frozen_time: T0 }), await stripe.testHelpers.testClocks.create({ frozen_time: T0 })];
    const page = await stripe.testHelpers.testClocks.list({ limit: 2 });
    expect(page.data.map((c) => c.id)).toEqual([others[1].id, others[0].id]);
    expect(page.has_more).toBe(true);
    const next = await stripe.testHelpers.testClocks.list({ limit: 2, starting_after: others[0].id });
    expect(next.data[0].id).toBe(clock.id);
    // Exactly the fields the SDK's type declares.
    const fields = objectFields(['TestHelpers.TestClock', 'Customer'])['TestHelpers.TestClock'];
    const keys = Object.keys(clock).filter((k) => k !== 'lastResponse').sort();
    expect(fields.required.filter((k) => !keys.includes(k))).toEqual([]);
    expect(keys.filter((k) => !fields.required.includes(k) && !fields.optional.includes(k))).toEqual([]);
  });

  test('bad input answers Stripe\'s errors: backwards, too far, unknown parameters, unknown clocks', async () => {
    const { stripe } = harness();
    const clock = await stripe.testHelpers.testClocks.create({ frozen_time: T0 });
    const backwards = await failure(stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: T0 - 60 }));
    expect(backwards).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(backwards).toMatchObject({ statusCode: 400, type: 'StripeInvalidRequestError', param: 'frozen_time' });
    expect(backwards.message).toMatch(/must be after the test clock's current frozen_time/);
    expect((await failure(stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: T0 }))).param).toBe('frozen_time');
    // No subscriptions: at most two years at a time.
    expect((await failure(stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: T0 + 800 * DAY }))).statusCode).toBe(400);
    const unknown = await failure(stripe.testHelpers.testClocks.create({ frozen_time: T0, color: 'red' } as Stripe.TestHelpers.TestClockCreateParams));
    expect(unknown).toMatchObject({ statusCode: 400, code: 'parameter_unknown', param: 'color' });
    const missing = await failure(stripe.testHelpers.testClocks.create({} as Stripe.TestHelpers.TestClockCreateParams));
    expect(missing).toMatchObject({ statusCode: 400, code: 'parameter_missing', param: 'frozen_time' });
    const nothing = await failure(stripe.testHelpers.testClocks.retrieve('clock_nope'));
    expect(nothing).toMatchObject({ statusCode: 404, code: 'resource_missing' });
    const noClock = await failure(stripe.customers.create({ test_clock: 'clock_nope' }));
    expect(noClock).toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'test_clock' });
  });

  test('advancing answers status advancing, then the clock is ready at the new time; events advancing and ready', async () => {
    const { stripe, emu } = harness();
    const mark = emu.events().length;
    const clock = await stripe.testHelpers.testClocks.create({ frozen_time: T0 });
    const advancing = await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: T0 + DAY });
    expect(advancing).toMatchObject({ status: 'advancing', frozen_time: T0, status_details: { advancing: { target_frozen_time: T0 + DAY } } });
    expect(await stripe.testHelpers.testClocks.retrieve(clock.id)).toMatchObject({ status: 'ready', frozen_time: T0 + DAY, status_details: {} });
    const events = eventsSince(mark, (e) => e.data.object.id === clock.id);
    expect(events.map((e) => [e.type, e.created])).toEqual([
      ['test_helpers.test_clock.created', T0],
      ['test_helpers.test_clock.advancing', T0],
      ['test_helpers.test_clock.ready', T0 + DAY],
    ]);
  });

  test('a monthly subscription limits an advance to two months', async () => {
    const { stripe } = harness();
    const price = await recurringPrice(stripe, 500);
    const { clock, customer } = await clockCustomer(stripe);
    await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
    const tooFar = await failure(stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: MAR_15 + 1 }));
    expect(tooFar).toMatchObject({ statusCode: 400, param: 'frozen_time' });
    expect(tooFar.message).toMatch(/two intervals/);
    expect((await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: MAR_15 })).status).toBe('advancing');
  });

  test('deleting a clock deletes it and its customers, whose subscriptions end', async () => {
    const { stripe, emu } = harness();
    const price = await recurringPrice(stripe, 500);
    const { clock, customer } = await clockCustomer(stripe);
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
    const mark = emu.events().length;
    expect(await stripe.testHelpers.testClocks.del(clock.id)).toEqual(expect.objectContaining({ id: clock.id, object: 'test_helpers.test_clock', deleted: true }));
    expect((await failure(stripe.testHelpers.testClocks.retrieve(clock.id))).statusCode).toBe(404);
    expect(await stripe.customers.retrieve(customer.id)).toEqual(expect.objectContaining({ deleted: true }));
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('canceled');
    expect(eventsSince(mark).map((e) => e.type)).toEqual(['customer.subscription.deleted', 'customer.deleted', 'test_helpers.test_clock.deleted']);
  });

  test('an existing customer can be attached to a new clock, once', async () => {
    const { stripe } = harness();
    const customer = await stripe.customers.create({ email: 'later@x.io' });
    const clock = await stripe.testHelpers.testClocks.create({ frozen_time: T0, customer: customer.id });
    expect((await stripe.customers.retrieve(customer.id)) as Stripe.Customer).toMatchObject({ test_clock: clock.id });
    expect((await failure(stripe.testHelpers.testClocks.create({ frozen_time: T0, customer: customer.id }))).param).toBe('customer');
  });
});

describe("a customer on a test clock lives at the clock's time", () => {
  test('objects are created at the frozen time and renew only when the clock advances; the global clock leaves them alone', async () => {
    const { stripe, emu } = harness();
    const price = await recurringPrice(stripe, 1200);
    const { clock, customer } = await clockCustomer(stripe);
    expect(customer).toMatchObject({ test_clock: clock.id, created: T0 });
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }], expand: ['latest_invoice'] });
    expect(sub).toMatchObject({ status: 'active', created: T0, start_date: T0, test_clock: clock.id });
    expect(sub.items.data[0]).toMatchObject({ current_period_start: T0, current_period_end: FEB_15 });
    expect(sub.latest_invoice).toMatchObject({ created: T0, test_clock: clock.id, status: 'paid' });

    // A customer on the global clock, subscribed now.
    const plain = await stripe.customers.create({ email: 'plain@x.io', payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
    const plainSub = await stripe.subscriptions.create({ customer: plain.id, items: [{ price: price.id }] });
    expect(plainSub.test_clock).toBeNull();

    // The global clock moves 40 days: the clock's customer is untouched.
    const beforeGlobal = emu.events().length;
    emu.advanceClock(40 * DAY);
    expect((await stripe.invoices.list({ customer: customer.id })).data).toHaveLength(1);
    expect((await stripe.invoices.list({ customer: plain.id })).data).toHaveLength(2);
    expect(eventsSince(beforeGlobal, aboutCustomer(customer.id))).toEqual([]);

    // The test clock moves past the period end: only its customer renews, at the period end.
    const mark = emu.events().length;
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: FEB_15 + 3600 });
    const invoices = (await stripe.invoices.list({ customer: customer.id })).data;
    expect(invoices).toHaveLength(2);
    expect(invoices[0]).toMatchObject({ billing_reason: 'subscription_cycle', status: 'paid', created: FEB_15, period_start: FEB_15, test_clock: clock.id });
    const renewed = await stripe.subscriptions.retrieve(sub.id);
    expect(renewed.items.data[0]).toMatchObject({ current_period_start: FEB_15, current_period_end: MAR_15 });
    expect((await stripe.invoices.list({ customer: plain.id })).data).toHaveLength(2);
    const events = eventsSince(mark, aboutCustomer(customer.id)).filter((e) => e.type.startsWith('invoice.') || e.type.startsWith('customer.subscription.'));
    expect(events.map((e) => e.type)).toEqual(['invoice.created', 'invoice.finalized', 'invoice.paid', 'invoice.payment_succeeded', 'customer.subscription.updated']);
    expect(new Set(events.map((e) => e.created))).toEqual(new Set([FEB_15]));
    const updated = events[events.length - 1];
    expect(updated.data.previous_attributes.items.data[0].current_period_end).toBe(FEB_15);
  });

  test('an advance of two months renews twice, each at its own time', async () => {
    const { stripe } = harness();
    const price = await recurringPrice(stripe, 700);
    const { clock, customer } = await clockCustomer(stripe);
    await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: MAR_15 });
    const created = (await stripe.invoices.list({ customer: customer.id })).data.map((i) => i.created);
    expect(created).toEqual([MAR_15, FEB_15, T0]);
  });

  test('trial_will_end three days before the trial ends, then the trial converts and is charged', async () => {
    const { stripe, emu } = harness();
    const price = await recurringPrice(stripe, 900);
    const { clock, customer } = await clockCustomer(stripe);
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }], trial_period_days: 14 });
    expect(sub).toMatchObject({ status: 'trialing', trial_start: T0, trial_end: T0 + 14 * DAY });
    const mark = emu.events().length;
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: T0 + 12 * DAY });
    const willEnd = eventsSince(mark, aboutCustomer(customer.id)).filter((e) => e.type === 'customer.subscription.trial_will_end');
    expect(willEnd.map((e) => e.created)).toEqual([T0 + 11 * DAY]);
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('trialing');

    const converted = emu.events().length;
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: T0 + 15 * DAY });
    const after = await stripe.subscriptions.retrieve(sub.id, { expand: ['latest_invoice'] });
    expect(after.status).toBe('active');
    expect(after.latest_invoice).toMatchObject({ status: 'paid', amount_paid: 900, created: T0 + 14 * DAY });
    const types = eventsSince(converted, aboutCustomer(customer.id)).map((e) => e.type);
    expect(types.filter((t) => t.startsWith('invoice.') || t.startsWith('customer.subscription.'))).toEqual([
      'invoice.created', 'invoice.finalized', 'invoice.paid', 'invoice.payment_succeeded', 'customer.subscription.updated',
    ]);
  });

  test('cancel_at_period_end ends the subscription when the clock passes the period end', async () => {
    const { stripe, emu } = harness();
    const price = await recurringPrice(stripe, 400);
    const { clock, customer } = await clockCustomer(stripe);
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: T0 + 10 * DAY });
    const canceling = await stripe.subscriptions.update(sub.id, { cancel_at_period_end: true });
    expect(canceling).toMatchObject({ cancel_at: FEB_15, canceled_at: T0 + 10 * DAY, status: 'active' });
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: FEB_15 - 60 });
    expect((await stripe.subscriptions.retrieve(sub.id)).status).toBe('active');
    const mark = emu.events().length;
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: FEB_15 + 60 });
    expect(await stripe.subscriptions.retrieve(sub.id)).toMatchObject({ status: 'canceled', ended_at: FEB_15 });
    const deleted = eventsSince(mark, aboutCustomer(customer.id)).filter((e) => e.type === 'customer.subscription.deleted');
    expect(deleted.map((e) => e.created)).toEqual([FEB_15]);
    expect((await stripe.invoices.list({ customer: customer.id })).data).toHaveLength(1);
  });

  test("a Checkout Session for the customer is dated by its clock and expires when the clock passes expires_at", async () => {
    const { stripe, emu } = harness();
    const price = await recurringPrice(stripe, 300);
    // A clock in the past: the global clock is long past the session's expires_at.
    const past = emu.now() - 10 * DAY;
    const { clock, customer } = await clockCustomer(stripe, past);
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription', customer: customer.id, line_items: [{ price: price.id, quantity: 1 }], success_url: 'http://localhost/ok', cancel_url: 'http://localhost/no',
    });
    expect(session).toMatchObject({ created: past, expires_at: past + DAY, status: 'open' });
    emu.advanceClock(60);
    expect((await stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: past + DAY + 60 });
    expect((await stripe.checkout.sessions.retrieve(session.id)).status).toBe('expired');
  });

  test("paying on the hosted Checkout page subscribes the clock's customer at the clock's time", async () => {
    const { stripe, emu } = harness();
    const price = await recurringPrice(stripe, 350);
    const { customer } = await clockCustomer(stripe);
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription', customer: customer.id, line_items: [{ price: price.id, quantity: 1 }], success_url: 'http://localhost/ok', cancel_url: 'http://localhost/no',
    });
    const paid = await fetch(`${emu.url}/checkout/${session.id}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'card=pm_card_visa&name=Clock', redirect: 'manual' });
    expect(paid.status).toBe(303);
    const sub = (await stripe.subscriptions.list({ customer: customer.id })).data[0];
    expect(sub).toMatchObject({ status: 'active', created: T0, test_clock: customer.test_clock });
  });

  test('a scheduled change applies when the clock reaches the next phase', async () => {
    const { stripe } = harness();
    const small = await recurringPrice(stripe, 1000);
    const large = await recurringPrice(stripe, 2500);
    const { clock, customer } = await clockCustomer(stripe);
    const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: small.id }] });
    const schedule = await stripe.subscriptionSchedules.create({ from_subscription: sub.id });
    expect(schedule.test_clock).toBe(clock.id);
    await stripe.subscriptionSchedules.update(schedule.id, {
      phases: [
        { items: [{ price: small.id, quantity: 1 }], start_date: T0, end_date: FEB_15 },
        { items: [{ price: large.id, quantity: 1 }], duration: { interval: 'month', interval_count: 1 } },
      ],
    });
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: FEB_15 - DAY });
    expect((await stripe.subscriptions.retrieve(sub.id)).items.data[0].price.id).toBe(small.id);
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: FEB_15 + DAY });
    const after = await stripe.subscriptions.retrieve(sub.id, { expand: ['latest_invoice'] });
    expect(after.items.data[0].price.id).toBe(large.id);
    expect(after.latest_invoice).toMatchObject({ amount_paid: 2500, created: FEB_15 });
  });
});

test('a clock, its customers and a scheduled retry survive a restart with a state file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'emu-clock-'));
  const stateFile = path.join(dir, 'state.json');
  try {
    const first = await startEmulator({ port: 0, stateFile });
    const s1 = sdkFor(first);
    const price = await recurringPrice(s1, 800);
    const { clock, customer } = await clockCustomer(s1, T0, 'pm_card_chargeCustomerFail');
    const visa = await s1.paymentMethods.attach('pm_card_visa', { customer: customer.id });
    const sub = await s1.subscriptions.create({ customer: customer.id, items: [{ price: price.id }], default_payment_method: visa.id });
    await s1.subscriptions.update(sub.id, { default_payment_method: '' });
    await s1.testHelpers.testClocks.advance(clock.id, { frozen_time: FEB_15 + 60 });
    expect((await s1.subscriptions.retrieve(sub.id)).status).toBe('past_due');
    await first.close();

    const second = await startEmulator({ port: 0, stateFile });
    try {
      const s2 = sdkFor(second);
      expect(await s2.testHelpers.testClocks.retrieve(clock.id)).toMatchObject({ frozen_time: FEB_15 + 60, status: 'ready' });
      await s2.customers.update(customer.id, { invoice_settings: { default_payment_method: visa.id } });
      await s2.testHelpers.testClocks.advance(clock.id, { frozen_time: FEB_15 + 4 * DAY });
      expect(await s2.subscriptions.retrieve(sub.id)).toMatchObject({ status: 'active', created: T0 });
    } finally {
      await second.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
