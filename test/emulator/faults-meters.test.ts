import Stripe from 'stripe';
import { startHarness, sdkFor, type Harness } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.emu.close();
});
afterEach(() => h.emu.faults.clear());

async function customerCount(): Promise<number> {
  let n = 0;
  for await (const _ of h.stripe.customers.list({ limit: 100 })) n++;
  return n;
}

function idempotencyKeys(stripe: Stripe): string[] {
  const keys: string[] = [];
  stripe.on('request', (e: { idempotency_key?: string; path: string }) => {
    if (e.path === '/v1/customers') keys.push(String(e.idempotency_key));
  });
  return keys;
}

describe('faults', () => {
  test.each([429, 500])('%i makes the SDK retry with the same idempotency key; created once', async (status) => {
    const stripe = sdkFor(h.emu);
    const keys = idempotencyKeys(stripe);
    const before = await customerCount();
    const res = await fetch(`${h.emu.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ status, count: 2, path: '/v1/customers', method: 'POST' }),
    });
    expect(res.status).toBe(200);
    const c = await stripe.customers.create({ email: `fault-${status}@x.io` });
    expect(c.id).toMatch(/^cus_/);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(await customerCount()).toBe(before + 1);
  });

  test('without retries the SDK surfaces the rate limit error', async () => {
    const stripe = sdkFor(h.emu, 'sk_test_emulator', { maxNetworkRetries: 0 });
    h.emu.faults.failNext(429, 1, { path: '/v1/customers' });
    const err = await stripe.customers.create({ email: 'rl@x.io' }).catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect(err.type).toBe('StripeRateLimitError');
    h.emu.faults.failNext(500, 1);
    const err500 = await stripe.customers.list().catch((e) => e);
    expect(err500).toBeInstanceOf(Stripe.errors.StripeAPIError);
  });

  test('a faulted request changes no state and unmatched requests pass', async () => {
    const before = await customerCount();
    h.emu.faults.failNext(500, 1, { path: '/v1/customers', method: 'POST' });
    const stripe = sdkFor(h.emu, 'sk_test_emulator', { maxNetworkRetries: 0 });
    await expect(stripe.customers.create({ email: 'x@x.io' })).rejects.toThrow();
    expect(await customerCount()).toBe(before);
    h.emu.faults.failNext(500, 1, { path: '/v1/products' });
    await stripe.customers.create({ email: 'passes@x.io' });
    expect(h.emu.faults.list()).toHaveLength(1);
  });

  test('a delay fault trips the SDK timeout', async () => {
    const stripe = sdkFor(h.emu, 'sk_test_emulator', { timeout: 150, maxNetworkRetries: 0 });
    await fetch(`${h.emu.url}/_emulator/faults`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ delayMs: 600, count: 1 }) });
    const err = await stripe.customers.list().catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect(String(err.message)).toMatch(/timeout/i);
    const ok = await stripe.customers.list({ limit: 1 });
    expect(ok.object).toBe('list');
  });

  test('a dropped connection is retried by the SDK and nothing is created twice', async () => {
    const before = await customerCount();
    h.emu.faults.dropNext(1, { path: '/v1/customers', method: 'POST' });
    const c = await h.stripe.customers.create({ email: 'drop@x.io' });
    expect(c.id).toMatch(/^cus_/);
    expect(await customerCount()).toBe(before + 1);
  });

  test('DELETE /_emulator/faults clears faults', async () => {
    h.emu.faults.failNext(500, 5);
    await fetch(`${h.emu.url}/_emulator/faults`, { method: 'DELETE' });
    expect(h.emu.faults.list()).toHaveLength(0);
  });
});

describe('billing meters and meter events', () => {
  test('meters: create, retrieve, update, list, deactivate, reactivate', async () => {
    const m = await h.stripe.billing.meters.create({ display_name: 'Tokens', event_name: 'tokens_meta', default_aggregation: { formula: 'sum' }, customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' }, value_settings: { event_payload_key: 'value' } });
    expect(m).toMatchObject({ object: 'billing.meter', status: 'active', event_name: 'tokens_meta', default_aggregation: { formula: 'sum' } });
    expect(m.id).toMatch(/^mtr_/);
    expect((await h.stripe.billing.meters.update(m.id, { display_name: 'Tokens!' })).display_name).toBe('Tokens!');
    expect((await h.stripe.billing.meters.deactivate(m.id)).status).toBe('inactive');
    expect((await h.stripe.billing.meters.list({ status: 'inactive' })).data.map((x) => x.id)).toContain(m.id);
    expect((await h.stripe.billing.meters.reactivate(m.id)).status).toBe('active');
    await expect(h.stripe.billing.meters.create({ display_name: 'Dup', event_name: 'tokens_meta', default_aggregation: { formula: 'sum' } })).rejects.toThrow(/already exists/);
  });

  test('v1 meter events: dedupe by identifier (400 on repeat) and event summaries', async () => {
    const m = await h.stripe.billing.meters.create({ display_name: 'Calls', event_name: 'calls_v1', default_aggregation: { formula: 'sum' } });
    const c = await h.stripe.customers.create({ email: 'meter@x.io' });
    const ts = h.emu.now() - 60;
    const ev = await h.stripe.billing.meterEvents.create({ event_name: 'calls_v1', payload: { stripe_customer_id: c.id, value: '5' }, identifier: 'v1-a', timestamp: ts });
    expect(ev).toMatchObject({ object: 'billing.meter_event', identifier: 'v1-a', payload: { value: '5' } });
    await h.stripe.billing.meterEvents.create({ event_name: 'calls_v1', payload: { stripe_customer_id: c.id, value: '7' }, identifier: 'v1-b', timestamp: ts });
    const dup = await h.stripe.billing.meterEvents.create({ event_name: 'calls_v1', payload: { stripe_customer_id: c.id, value: '5' }, identifier: 'v1-a', timestamp: ts }).catch((e) => e);
    expect(dup).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(dup.message).toMatch(/already exists with identifier v1-a/);
    expect(h.emu.meterEventCount('v1-a')).toBe(1);
    expect(h.emu.meterEventStats().by_identifier['v1-a']).toEqual({ received: 2, accepted: 1 });
    const start = ts - (ts % 60) - 3600;
    const summaries = await h.stripe.billing.meters.listEventSummaries(m.id, { customer: c.id, start_time: start, end_time: start + 7200 });
    expect(summaries.data).toHaveLength(1);
    expect(summaries.data[0]).toMatchObject({ object: 'billing.meter_event_summary', aggregated_value: 12, meter: m.id });
    const hourly = await h.stripe.billing.meters.listEventSummaries(m.id, { customer: c.id, start_time: start, end_time: start + 7200, value_grouping_window: 'hour' });
    expect(hourly.data.map((s) => s.aggregated_value).reduce((a, b) => a + b, 0)).toBe(12);
  });

  test('v2 meter event session + stream through the SDK; duplicates dropped silently', async () => {
    await h.stripe.billing.meters.create({ display_name: 'Stream', event_name: 'stream_calls', default_aggregation: { formula: 'count' } });
    const c = await h.stripe.customers.create({ email: 'stream@x.io' });
    const session = await h.stripe.v2.billing.meterEventSession.create();
    expect(session.object).toBe('v2.billing.meter_event_session');
    expect(session.authentication_token).toMatch(/^mes_tok_/);
    expect(Date.parse(session.expires_at) - Date.parse(session.created)).toBe(15 * 60 * 1000);
    const streamClient = sdkFor(h.emu, session.authentication_token);
    const events = Array.from({ length: 100 }, (_, i) => ({
      event_name: 'stream_calls',
      identifier: `v2-${i % 60}`,
      payload: { stripe_customer_id: c.id, value: '1' },
      timestamp: new Date().toISOString(),
    }));
    await streamClient.v2.billing.meterEventStream.create({ events });
    await streamClient.v2.billing.meterEventStream.create({ events: events.slice(0, 10) });
    expect(h.emu.meterEventCount('v2-0')).toBe(1);
    const stats = await fetch(`${h.emu.url}/_emulator/meter-events`).then((r) => r.json());
    expect(stats.by_identifier['v2-0']).toEqual({ received: 3, accepted: 1 });
    const ids = Object.keys(stats.by_identifier).filter((k) => k.startsWith('v2-'));
    expect(ids).toHaveLength(60);
    const tooMany = await streamClient.v2.billing.meterEventStream.create({ events: [...events, ...events] }).catch((e) => e);
    expect(tooMany).toBeInstanceOf(Error);
    const err = await h.stripe.v2.billing.meterEventStream.create({ events: events.slice(0, 1) }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
  });

  test('metered usage is billed in arrears at renewal', async () => {
    const meter = await h.stripe.billing.meters.create({ display_name: 'Usage', event_name: 'renew_usage', default_aggregation: { formula: 'sum' } });
    const metered = await h.stripe.prices.create({ product_data: { name: 'Usage' }, currency: 'usd', unit_amount: 3, recurring: { interval: 'month', usage_type: 'metered', meter: meter.id } });
    const c = await h.stripe.customers.create({ payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
    const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: metered.id }] });
    await h.stripe.billing.meterEvents.create({ event_name: 'renew_usage', payload: { stripe_customer_id: c.id, value: '100' }, identifier: `renew-${sub.id}` });
    h.emu.advanceClock(sub.items.data[0].current_period_end - h.emu.now() + 10);
    const inv = (await h.stripe.invoices.list({ subscription: sub.id, limit: 1 })).data[0];
    expect(inv).toMatchObject({ billing_reason: 'subscription_cycle', amount_due: 300, status: 'paid' });
  });
});
