import { failure, recurringPrice, useHarness, type Harness } from './helpers';

describe('payment methods, SetupIntents, capture and refunds', () => {
  const harness = useHarness();
  let h: Harness;
  beforeAll(() => {
    h = harness();
  });

  it('creates card payment methods from test numbers and tokens, refusing others as Stripe does', async () => {
    const byToken = await h.stripe.paymentMethods.create({ type: 'card', card: { token: 'tok_mastercard' }, billing_details: { name: 'Ada' } });
    expect(byToken).toMatchObject({ object: 'payment_method', type: 'card', customer: null, card: { brand: 'mastercard', last4: '4444' } });
    expect(byToken.billing_details.name).toBe('Ada');
    const byNumber = await h.stripe.paymentMethods.create({ type: 'card', card: { number: '4242424242424242', exp_month: 12, exp_year: 2040, cvc: '123' } });
    expect(byNumber.card?.last4).toBe('4242');
    const wrong = await failure(h.stripe.paymentMethods.create({ type: 'card', card: { number: '4111111111111112', exp_month: 12, exp_year: 2040 } }));
    expect([wrong.statusCode, wrong.code, wrong.param]).toEqual([402, 'incorrect_number', 'card[number]']);
    const noType = await failure(h.stripe.paymentMethods.create({ card: { token: 'tok_visa' } } as never));
    expect(noType.statusCode).toBe(400);
  });

  it('saves a card with a SetupIntent without charging it, and the card pays the renewals', async () => {
    const customer = await h.stripe.customers.create({ email: 'setup@example.com' });
    const mark = h.emu.events().length;
    const si = await h.stripe.setupIntents.create({ customer: customer.id, allowed_payment_method_types: ['card'] });
    expect(si).toMatchObject({ object: 'setup_intent', status: 'requires_payment_method', usage: 'off_session' });
    expect(si.client_secret).toMatch(new RegExp(`^${si.id}_secret_`));
    const confirmed = await h.stripe.setupIntents.confirm(si.id, { payment_method: 'pm_card_visa' });
    expect(confirmed.status).toBe('succeeded');
    const pmId = confirmed.payment_method as string;
    expect((await h.stripe.paymentMethods.retrieve(pmId)).customer).toBe(customer.id);
    const types = h.emu.events().slice(mark).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['setup_intent.created', 'payment_method.attached', 'setup_intent.succeeded']));
    expect(types).not.toContain('payment_intent.succeeded');

    await h.stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: pmId } });
    const price = await recurringPrice(h.stripe, 900);
    const sub = await h.stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
    expect(sub.status).toBe('active');
    h.emu.advanceClock(32 * 86400);
    const renewal = await h.stripe.invoices.retrieve((await h.stripe.subscriptions.retrieve(sub.id)).latest_invoice as string);
    expect([renewal.billing_reason, renewal.status]).toEqual(['subscription_cycle', 'paid']);
  });

  it('fails a SetupIntent with a declining card and keeps it confirmable', async () => {
    const customer = await h.stripe.customers.create({ email: 'setup-decline@example.com' });
    const si = await h.stripe.setupIntents.create({ customer: customer.id });
    const e = await failure(h.stripe.setupIntents.confirm(si.id, { payment_method: 'pm_card_chargeDeclined' }));
    expect([e.statusCode, e.code]).toEqual([402, 'card_declined']);
    const after = await h.stripe.setupIntents.retrieve(si.id);
    expect(after.status).toBe('requires_payment_method');
    expect(after.last_setup_error?.code).toBe('card_declined');
    expect((await h.stripe.setupIntents.cancel(si.id)).status).toBe('canceled');
    const again = await failure(h.stripe.setupIntents.confirm(si.id, { payment_method: 'pm_card_visa' }));
    expect(again.code).toBe('setup_intent_unexpected_state');
  });

  it('authorizes with capture_method=manual, captures part, refunds part, and refuses refunding more', async () => {
    const pi = await h.stripe.paymentIntents.create({ amount: 5000, currency: 'usd', capture_method: 'manual', payment_method: 'pm_card_visa', confirm: true });
    expect([pi.status, pi.amount_capturable]).toEqual(['requires_capture', 5000]);
    const early = await failure(h.stripe.refunds.create({ payment_intent: pi.id }));
    expect(early.statusCode).toBe(400);
    const captured = await h.stripe.paymentIntents.capture(pi.id, { amount_to_capture: 4000 });
    expect([captured.status, captured.amount_received, captured.amount_capturable]).toEqual(['succeeded', 4000, 0]);
    const again = await failure(h.stripe.paymentIntents.capture(pi.id));
    expect(again.code).toBe('payment_intent_unexpected_state');
    const partial = await h.stripe.refunds.create({ payment_intent: pi.id, amount: 1500, reason: 'requested_by_customer' });
    expect(partial).toMatchObject({ object: 'refund', amount: 1500, status: 'succeeded', payment_intent: pi.id });
    let charge = await h.stripe.charges.retrieve(captured.latest_charge as string);
    expect([charge.amount_captured, charge.refunded]).toEqual([4000, false]);
    const tooMuch = await failure(h.stripe.refunds.create({ charge: charge.id, amount: 3000 }));
    expect([tooMuch.code, tooMuch.param]).toEqual(['amount_too_large', 'amount']);
    const rest = await h.stripe.refunds.create({ charge: charge.id });
    expect(rest.amount).toBe(2500);
    charge = await h.stripe.charges.retrieve(charge.id);
    expect([charge.amount_refunded, charge.refunded]).toEqual([5000, true]);
    const done = await failure(h.stripe.refunds.create({ charge: charge.id }));
    expect(done.code).toBe('charge_already_refunded');
    expect((await h.stripe.refunds.list({ payment_intent: pi.id })).data.map((r) => r.amount)).toEqual([2500, 1500]);
  });

  it('refunds the charge of a paid subscription invoice', async () => {
    const customer = await h.stripe.customers.create({ email: 'refund-sub@example.com', payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
    const price = await recurringPrice(h.stripe, 1200);
    const sub = await h.stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
    const invoice = await h.stripe.invoices.retrieve(sub.latest_invoice as string, { expand: ['payments'] });
    const piId = invoice.payments?.data[0].payment.payment_intent as string;
    const mark = h.emu.events().length;
    const refund = await h.stripe.refunds.create({ payment_intent: piId });
    expect(refund.amount).toBe(1200);
    expect(h.emu.events().slice(mark).map((e) => e.type)).toEqual(['refund.created', 'charge.refunded']);
  });

  it('asks for authentication on a 3-D Secure card and saves it once the customer authenticates', async () => {
    const customer = await h.stripe.customers.create({ email: 'setup-3ds@example.com' });
    const si = await h.stripe.setupIntents.create({ customer: customer.id, payment_method: 'pm_card_authenticationRequired', confirm: true });
    expect(si.status).toBe('requires_action');
    expect(si.next_action?.type).toBe('use_stripe_sdk');
    const res = await fetch(`${h.emu.url}/_emulator/setup_intents/${si.id}/authenticate`, { method: 'POST', body: JSON.stringify({ outcome: 'succeed' }) });
    expect(res.status).toBe(200);
    const done = await h.stripe.setupIntents.retrieve(si.id);
    expect(done.status).toBe('succeeded');
    expect((await h.stripe.paymentMethods.retrieve(done.payment_method as string)).customer).toBe(customer.id);
  });
});
