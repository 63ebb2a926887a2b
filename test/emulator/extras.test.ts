import type Stripe from 'stripe';
import { failure, useHarness, type Harness } from './helpers';

describe('tax ids, balance transactions, portal configurations, meter event adjustments, v2 meter events', () => {
  const harness = useHarness();
  let h: Harness;
  beforeAll(() => {
    h = harness();
  });

  it('adds, lists and deletes customer tax ids, refusing malformed ones', async () => {
    const c = await h.stripe.customers.create({ email: 'tax@example.com' });
    const t = await h.stripe.customers.createTaxId(c.id, { type: 'eu_vat', value: 'DE123456789' });
    expect(t).toMatchObject({ object: 'tax_id', type: 'eu_vat', value: 'DE123456789', country: 'DE', customer: c.id });
    expect((await h.stripe.customers.listTaxIds(c.id)).data.map((x) => x.id)).toEqual([t.id]);
    const bad = await failure(h.stripe.customers.createTaxId(c.id, { type: 'gb_vat', value: 'nope' }));
    expect([bad.statusCode, bad.code, bad.param]).toEqual([400, 'tax_id_invalid', 'value']);
    const badType = await failure(h.stripe.customers.createTaxId(c.id, { type: 'xx_vat' as never, value: '1' }));
    expect(badType.code).toBe('parameter_invalid_string');
    expect(await h.stripe.customers.deleteTaxId(c.id, t.id)).toMatchObject({ id: t.id, deleted: true });
    expect((await failure(h.stripe.customers.retrieveTaxId(c.id, t.id))).statusCode).toBe(404);
  });

  it('credits a customer balance that the next invoice uses', async () => {
    const c = await h.stripe.customers.create({ email: 'balance@example.com', payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
    const credit = await h.stripe.customers.createBalanceTransaction(c.id, { amount: -800, currency: 'usd', description: 'Goodwill' });
    expect([credit.type, credit.ending_balance]).toEqual(['adjustment', -800]);
    expect((await h.stripe.customers.retrieve(c.id) as Stripe.Customer).balance).toBe(-800);
    await h.stripe.invoiceItems.create({ customer: c.id, amount: 1000, currency: 'usd' });
    const draft = await h.stripe.invoices.create({ customer: c.id, pending_invoice_items_behavior: 'include' });
    const inv = await h.stripe.invoices.finalizeInvoice(draft.id);
    expect([inv.total, inv.starting_balance, inv.amount_due, inv.ending_balance]).toEqual([1000, -800, 200, 0]);
    expect((await h.stripe.customers.retrieve(c.id) as Stripe.Customer).balance).toBe(0);
    const txns = await h.stripe.customers.listBalanceTransactions(c.id);
    expect(txns.data.map((t) => [t.type, t.amount])).toEqual([['applied_to_invoice', 800], ['adjustment', -800]]);
    const missing = await failure(h.stripe.customers.createBalanceTransaction(c.id, { amount: 5 } as never));
    expect([missing.code, missing.param]).toEqual(['parameter_missing', 'currency']);
  });

  it('creates, updates and lists portal configurations, and sessions use them', async () => {
    const conf = await h.stripe.billingPortal.configurations.create({
      business_profile: { headline: 'Acme' },
      features: { invoice_history: { enabled: true }, subscription_cancel: { enabled: true, mode: 'immediately' } },
      default_return_url: 'https://example.com/account',
    });
    expect(conf.features.invoice_history.enabled).toBe(true);
    expect(conf.features.subscription_cancel).toMatchObject({ enabled: true, mode: 'immediately' });
    const updated = await h.stripe.billingPortal.configurations.update(conf.id, { features: { customer_update: { enabled: true, allowed_updates: ['email'] } } });
    expect(updated.features.customer_update).toEqual({ enabled: true, allowed_updates: ['email'] });
    const list = await h.stripe.billingPortal.configurations.list();
    expect(list.data.filter((c) => c.is_default)).toHaveLength(1);
    const c = await h.stripe.customers.create({ email: 'portal@example.com' });
    const session = await h.stripe.billingPortal.sessions.create({ customer: c.id, configuration: conf.id });
    expect([session.configuration, session.return_url]).toEqual([conf.id, 'https://example.com/account']);
    const missing = await failure(h.stripe.billingPortal.sessions.create({ customer: c.id, configuration: 'bpc_missing' }));
    expect(missing.statusCode).toBe(404);
    const noFeatures = await failure(h.stripe.billingPortal.configurations.create({} as never));
    expect([noFeatures.code, noFeatures.param]).toEqual(['parameter_missing', 'features']);
  });

  it('cancels a meter event with an adjustment and records v2 meter events', async () => {
    const meter = await h.stripe.billing.meters.create({ display_name: 'Calls', event_name: 'adj_calls', default_aggregation: { formula: 'sum' } });
    const c = await h.stripe.customers.create({ email: 'meter@example.com' });
    const t = h.emu.now() - 60;
    await h.stripe.billing.meterEvents.create({ event_name: 'adj_calls', payload: { stripe_customer_id: c.id, value: '5' }, identifier: 'keep-1', timestamp: t });
    await h.stripe.billing.meterEvents.create({ event_name: 'adj_calls', payload: { stripe_customer_id: c.id, value: '7' }, identifier: 'drop-1', timestamp: t });
    const adj = await h.stripe.billing.meterEventAdjustments.create({ event_name: 'adj_calls', type: 'cancel', cancel: { identifier: 'drop-1' } });
    expect(adj).toMatchObject({ object: 'billing.meter_event_adjustment', status: 'pending', type: 'cancel' });
    const v2 = await h.stripe.v2.billing.meterEvents.create({ event_name: 'adj_calls', payload: { stripe_customer_id: c.id, value: '3' }, identifier: 'v2-1' });
    expect(v2).toMatchObject({ object: 'v2.billing.meter_event', identifier: 'v2-1', event_name: 'adj_calls' });
    const dup = await failure(h.stripe.v2.billing.meterEvents.create({ event_name: 'adj_calls', payload: { stripe_customer_id: c.id, value: '3' }, identifier: 'v2-1' }));
    expect(dup.statusCode).toBe(400);
    const v2adj = await h.stripe.v2.billing.meterEventAdjustments.create({ event_name: 'adj_calls', type: 'cancel', cancel: { identifier: 'keep-1' } });
    expect(v2adj.status).toBe('pending');
    const summary = await h.stripe.billing.meters.listEventSummaries(meter.id, { customer: c.id, start_time: t - 60, end_time: h.emu.now() + 60 });
    expect(summary.data[0].aggregated_value).toBe(3);
  });
});
