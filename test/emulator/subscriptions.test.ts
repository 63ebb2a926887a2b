import Stripe from 'stripe';
import { startHarness, recurringPrice, type Harness } from './helpers';

let h: Harness;
let price: Stripe.Price;
let bigPrice: Stripe.Price;
beforeAll(async () => {
  h = await startHarness();
  price = await recurringPrice(h.stripe, 1000);
  bigPrice = await recurringPrice(h.stripe, 3000);
});
afterAll(async () => {
  await h.emu.close();
});

async function payingCustomer(card = 'pm_card_visa'): Promise<Stripe.Customer> {
  return h.stripe.customers.create({ email: 'pay@x.io', payment_method: card, invoice_settings: { default_payment_method: card } });
}

test('default_incomplete → incomplete with a client secret; confirm → active', async () => {
  const c = await h.stripe.customers.create({ email: 'inc@x.io' });
  const sub = await h.stripe.subscriptions.create({
    customer: c.id,
    items: [{ price: price.id }],
    payment_behavior: 'default_incomplete',
    payment_settings: { save_default_payment_method: 'on_subscription' },
    expand: ['latest_invoice.confirmation_secret'],
  });
  expect(sub.status).toBe('incomplete');
  const inv = sub.latest_invoice as Stripe.Invoice;
  expect(inv).toMatchObject({ object: 'invoice', status: 'open', amount_due: 1000, amount_paid: 0, amount_remaining: 1000, currency: 'usd', billing_reason: 'subscription_create' });
  expect(inv.parent?.subscription_details?.subscription).toBe(sub.id);
  expect(inv.confirmation_secret?.type).toBe('payment_intent');
  const secret = inv.confirmation_secret!.client_secret;
  const piId = secret.split('_secret_')[0];
  expect(piId).toMatch(/^pi_/);
  const item = sub.items.data[0];
  expect(item.current_period_start).toBe(sub.start_date);
  expect(item.current_period_end).toBeGreaterThan(item.current_period_start + 27 * 86400);
  expect((sub as unknown as Record<string, unknown>).current_period_end).toBeUndefined();
  expect(item.price.id).toBe(price.id);

  const pi = await h.stripe.paymentIntents.confirm(piId, { payment_method: 'pm_card_visa' });
  expect(pi.status).toBe('succeeded');
  const after = await h.stripe.subscriptions.retrieve(sub.id, { expand: ['latest_invoice'] });
  expect(after.status).toBe('active');
  expect(after.default_payment_method).toMatch(/^pm_/);
  const paid = after.latest_invoice as Stripe.Invoice;
  expect(paid).toMatchObject({ status: 'paid', amount_paid: 1000, amount_remaining: 0 });
  expect(paid.status_transitions.paid_at).toEqual(expect.any(Number));
  const types = (await h.stripe.events.list({ limit: 100 })).data.map((e) => e.type);
  for (const t of ['invoice.paid', 'invoice.payment_succeeded', 'customer.subscription.updated', 'payment_intent.succeeded', 'customer.subscription.created', 'invoice.created', 'invoice.finalized']) {
    expect(types).toContain(t);
  }
  const page = await fetch(paid.hosted_invoice_url!);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain(paid.number!);
});

test('declined card on confirm is a card error and the subscription stays incomplete', async () => {
  const c = await h.stripe.customers.create({ email: 'dec@x.io' });
  const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id }], payment_behavior: 'default_incomplete', expand: ['latest_invoice.confirmation_secret'] });
  const piId = (sub.latest_invoice as Stripe.Invoice).confirmation_secret!.client_secret.split('_secret_')[0];
  const err = await h.stripe.paymentIntents.confirm(piId, { payment_method: 'pm_card_chargeDeclined' }).catch((e) => e);
  expect(err).toBeInstanceOf(Stripe.errors.StripeCardError);
  expect(err.statusCode).toBe(402);
  expect(err.code).toBe('card_declined');
  expect(err.decline_code).toBe('generic_decline');
  expect((await h.stripe.paymentIntents.retrieve(piId)).status).toBe('requires_payment_method');
  expect((await h.stripe.subscriptions.retrieve(sub.id)).status).toBe('incomplete');
});

test('error_if_incomplete with a failing card creates nothing; allow_incomplete leaves it incomplete', async () => {
  const c = await payingCustomer('pm_card_chargeCustomerFail');
  const err = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id }], payment_behavior: 'error_if_incomplete' }).catch((e) => e);
  expect(err).toBeInstanceOf(Stripe.errors.StripeCardError);
  expect((await h.stripe.subscriptions.list({ customer: c.id, status: 'all' })).data).toHaveLength(0);
  const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id }] });
  expect(sub.status).toBe('incomplete');
});

test('a customer with a working default payment method gets an active subscription', async () => {
  const c = await payingCustomer();
  const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id, quantity: 2 }], metadata: { plan: 'pro' }, expand: ['latest_invoice', 'customer', 'items.data.price.product'] });
  expect(sub.status).toBe('active');
  expect(sub.metadata).toEqual({ plan: 'pro' });
  expect((sub.latest_invoice as Stripe.Invoice).amount_paid).toBe(2000);
  expect((sub.customer as Stripe.Customer).id).toBe(c.id);
  expect((sub.items.data[0].price.product as Stripe.Product).object).toBe('product');
});

test('trial → trialing with a paid $0 invoice and no payment method needed', async () => {
  const c = await h.stripe.customers.create({ email: 'trial@x.io' });
  const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id }], trial_period_days: 14, expand: ['latest_invoice'] });
  expect(sub.status).toBe('trialing');
  expect(sub.trial_end! - sub.trial_start!).toBe(14 * 86400);
  expect(sub.items.data[0].current_period_end).toBe(sub.trial_end);
  expect(sub.latest_invoice).toMatchObject({ status: 'paid', amount_due: 0, total: 0 });
});

test('metered prices ride along with no upfront charge', async () => {
  const meter = await h.stripe.billing.meters.create({ display_name: 'API calls', event_name: `calls_${Date.now()}`, default_aggregation: { formula: 'sum' } });
  const metered = await h.stripe.prices.create({ product_data: { name: 'Calls' }, currency: 'usd', unit_amount: 2, recurring: { interval: 'month', usage_type: 'metered', meter: meter.id } });
  const c = await payingCustomer();
  const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id }, { price: metered.id }], expand: ['latest_invoice'] });
  expect(sub.status).toBe('active');
  expect((sub.latest_invoice as Stripe.Invoice).amount_due).toBe(1000);
  expect(sub.items.data[1].quantity).toBeUndefined();
});

test('update price and quantity with prorations; list by price', async () => {
  const c = await payingCustomer();
  const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id }] });
  const itemId = sub.items.data[0].id;
  const upd = await h.stripe.subscriptions.update(sub.id, { items: [{ id: itemId, price: bigPrice.id, quantity: 3 }], proration_behavior: 'always_invoice', expand: ['latest_invoice'] });
  expect(upd.items.data).toHaveLength(1);
  expect(upd.items.data[0]).toMatchObject({ id: itemId, quantity: 3, price: { id: bigPrice.id } });
  const inv = upd.latest_invoice as Stripe.Invoice;
  expect(inv.billing_reason).toBe('subscription_update');
  expect(inv.status).toBe('paid');
  expect(inv.amount_due).toBeGreaterThan(7000);
  expect(inv.lines.data.some((l) => l.amount < 0)).toBe(true);
  const none = await h.stripe.subscriptions.update(sub.id, { items: [{ id: itemId, quantity: 1 }], proration_behavior: 'none' });
  expect(none.latest_invoice).toBe(inv.id);
  const byPrice = await h.stripe.subscriptions.list({ price: bigPrice.id });
  expect(byPrice.data.map((s) => s.id)).toContain(sub.id);
  const ev = (await h.stripe.events.list({ type: 'customer.subscription.updated', limit: 5 })).data[0];
  expect(ev.data.previous_attributes).toHaveProperty('items');
});

test('cancel at period end, then undo by update; cancel now', async () => {
  const c = await payingCustomer();
  const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id }] });
  const scheduled = await h.stripe.subscriptions.update(sub.id, { cancel_at_period_end: true });
  expect(scheduled).toMatchObject({ status: 'active', cancel_at_period_end: true, cancel_at: sub.items.data[0].current_period_end });
  const resumed = await h.stripe.subscriptions.update(sub.id, { cancel_at_period_end: false });
  expect(resumed).toMatchObject({ status: 'active', cancel_at_period_end: false, cancel_at: null });
  const canceled = await h.stripe.subscriptions.cancel(sub.id, { prorate: false, invoice_now: false });
  expect(canceled.status).toBe('canceled');
  expect(canceled.ended_at).toEqual(expect.any(Number));
  expect((await h.stripe.subscriptions.list({ customer: c.id })).data).toHaveLength(0);
  expect((await h.stripe.subscriptions.list({ customer: c.id, status: 'all' })).data).toHaveLength(1);
  expect((await h.stripe.subscriptions.list({ customer: c.id, status: 'canceled' })).data).toHaveLength(1);
  await expect(h.stripe.subscriptions.update(sub.id, { items: [{ price: bigPrice.id }] })).rejects.toThrow(/canceled subscription/);
  const deleted = (await h.stripe.events.list({ type: 'customer.subscription.deleted', limit: 5 })).data[0];
  expect((deleted.data.object as Stripe.Subscription).id).toBe(sub.id);
});

test('trial_end=now ends a trial and charges', async () => {
  const c = await payingCustomer();
  const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id }], trial_period_days: 7 });
  const ended = await h.stripe.subscriptions.update(sub.id, { trial_end: 'now', expand: ['latest_invoice'] });
  expect(ended.status).toBe('active');
  expect((ended.latest_invoice as Stripe.Invoice).amount_paid).toBe(1000);
});

describe('clock', () => {
  test('advancing past the period renews with a new paid invoice and moves the period', async () => {
    const c = await payingCustomer();
    const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id }] });
    const end = sub.items.data[0].current_period_end;
    h.emu.advanceClock(end - h.emu.now() + 60);
    const renewed = await h.stripe.subscriptions.retrieve(sub.id, { expand: ['latest_invoice'] });
    expect(renewed.status).toBe('active');
    expect(renewed.items.data[0].current_period_start).toBe(end);
    const inv = renewed.latest_invoice as Stripe.Invoice;
    expect(inv).toMatchObject({ billing_reason: 'subscription_cycle', status: 'paid', amount_paid: 1000, period_start: end });
    const invoices = await h.stripe.invoices.list({ subscription: sub.id });
    expect(invoices.data).toHaveLength(2);
  });

  test('renewal with a failing card → retried, then canceled; trial end; cancel_at_period_end applies; control route', async () => {
    const good = await payingCustomer();
    const bad = await payingCustomer('pm_card_chargeCustomerFail');
    const trial = await h.stripe.subscriptions.create({ customer: good.id, items: [{ price: price.id }], trial_period_days: 3 });
    const badTrial = await h.stripe.subscriptions.create({ customer: bad.id, items: [{ price: price.id }], trial_period_days: 3 });
    const ending = await h.stripe.subscriptions.create({ customer: good.id, items: [{ price: price.id }], cancel_at_period_end: true });
    const res = await fetch(`${h.emu.url}/_emulator/clock/advance`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ seconds: 40 * 86400 }) });
    expect(res.status).toBe(200);
    expect((await h.stripe.subscriptions.retrieve(trial.id)).status).toBe('active');
    // The trial ended on day 3 with a failing card: retries on days 6, 11 and 18 failed too, so
    // the default schedule canceled it.
    expect(await h.stripe.subscriptions.retrieve(badTrial.id)).toMatchObject({ status: 'canceled', cancellation_details: { reason: 'payment_failed' } });
    expect((await h.stripe.subscriptions.retrieve(ending.id)).status).toBe('canceled');
    const types = (await h.stripe.events.list({ limit: 100 })).data.map((e) => e.type);
    expect(types).toContain('invoice.payment_failed');
    expect(types).toContain('customer.subscription.trial_will_end');
  });

  test('a paused subscription (trial ended without a payment method) resumes', async () => {
    const c = await h.stripe.customers.create({ email: 'pause@x.io' });
    const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id }], trial_period_days: 1, trial_settings: { end_behavior: { missing_payment_method: 'pause' } } });
    h.emu.advanceClock(2 * 86400);
    expect((await h.stripe.subscriptions.retrieve(sub.id)).status).toBe('paused');
    await h.stripe.paymentMethods.attach('pm_card_visa', { customer: c.id }).then((pm) => h.stripe.customers.update(c.id, { invoice_settings: { default_payment_method: pm.id } }));
    const resumed = await h.stripe.subscriptions.resume(sub.id);
    expect(resumed.status).toBe('active');
    await expect(h.stripe.subscriptions.resume(sub.id)).rejects.toThrow(/not paused/);
  });
});
