import Stripe from 'stripe';
import { failure, useHarness, type Harness } from './helpers';

describe('headers and lists the SDK relies on', () => {
  const harness = useHarness();
  let h: Harness;
  beforeAll(() => {
    h = harness();
  });

  it('echoes Idempotency-Key, Request-Id and the Stripe-Version the request asked for', async () => {
    const c = await h.stripe.customers.create({ email: 'hdr@example.com' }, { idempotencyKey: 'idem-hdr-1' });
    expect(c.lastResponse.idempotencyKey).toBe('idem-hdr-1');
    expect(c.lastResponse.requestId).toMatch(/^req_/);
    expect(c.lastResponse.apiVersion).toBe(Stripe.API_VERSION);
    const again = await h.stripe.customers.create({ email: 'hdr@example.com' }, { idempotencyKey: 'idem-hdr-1' });
    expect(again.id).toBe(c.id);
    expect(again.lastResponse.idempotencyKey).toBe('idem-hdr-1');
    const pinned = await h.stripe.customers.retrieve(c.id, {}, { apiVersion: '2025-03-31.basil' });
    expect(pinned.lastResponse.apiVersion).toBe('2025-03-31.basil');
    const res = await fetch(`${h.emu.url}/v1/customers/${c.id}`, { headers: { Authorization: 'Bearer sk_test_x', 'Stripe-Version': '2024-06-20' } });
    expect(res.headers.get('stripe-version')).toBe('2024-06-20');
    expect(res.headers.get('request-id')).toMatch(/^req_/);
  });

  it('pages every list with starting_after, ending_before and limit, and auto-pagination sees each object once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await h.stripe.products.create({ name: `Page ${i}`, metadata: { run: 'pages' } })).id);
    const newestFirst = ids.slice().reverse();
    const first = await h.stripe.products.list({ limit: 3 });
    expect(first.data.map((p) => p.id)).toEqual(newestFirst.slice(0, 3));
    expect(first.has_more).toBe(true);
    const next = await h.stripe.products.list({ limit: 3, starting_after: first.data[2].id });
    expect(next.data.map((p) => p.id)).toEqual(newestFirst.slice(3, 6));
    const back = await h.stripe.products.list({ limit: 2, ending_before: next.data[0].id });
    expect(back.data.map((p) => p.id)).toEqual(newestFirst.slice(1, 3));
    expect(back.has_more).toBe(true);
    const all = await h.stripe.products.list({ limit: 2 }).autoPagingToArray({ limit: 1000 });
    expect(all.map((p) => p.id)).toEqual(newestFirst);
    const backwards: string[] = [];
    for await (const p of h.stripe.products.list({ limit: 2, ending_before: newestFirst[6] })) backwards.push(p.id);
    expect(new Set(backwards)).toEqual(new Set(newestFirst.slice(0, 6)));
  });

  it.each([0, 101, 'x'])('refuses limit=%p with parameter_invalid_integer', async (limit) => {
    const e = await failure(h.stripe.customers.list({ limit: limit as number }));
    expect([e.statusCode, e.code, e.param]).toEqual([400, 'parameter_invalid_integer', 'limit']);
  });

  it('refuses an unknown cursor and both cursors at once', async () => {
    const unknown = await failure(h.stripe.customers.list({ starting_after: 'cus_missing' }));
    expect([unknown.statusCode, unknown.param]).toEqual([400, 'starting_after']);
    const both = await failure(h.stripe.customers.list({ starting_after: 'a', ending_before: 'b' }));
    expect(both.code).toBe('parameters_exclusive');
  });

  it('answers 404 for the payment methods of a missing customer on both routes', async () => {
    const flat = await failure(h.stripe.paymentMethods.list({ customer: 'cus_missing', type: 'card' }));
    const nested = await failure(h.stripe.customers.listPaymentMethods('cus_missing'));
    for (const e of [flat, nested]) {
      expect([e.statusCode, e.code, e.message]).toEqual([404, 'resource_missing', "No such customer: 'cus_missing'"]);
    }
  });

  it('filters lists by created ranges as Stripe does', async () => {
    const a = await h.stripe.coupons.create({ percent_off: 5 });
    h.emu.advanceClock(120);
    const b = await h.stripe.coupons.create({ percent_off: 6 });
    const after = await h.stripe.coupons.list({ created: { gt: a.created } });
    expect(after.data.map((c) => c.id)).toEqual([b.id]);
    const exact = await h.stripe.coupons.list({ created: a.created });
    expect(exact.data.map((c) => c.id)).toContain(a.id);
    expect(exact.data.map((c) => c.id)).not.toContain(b.id);
  });
});
