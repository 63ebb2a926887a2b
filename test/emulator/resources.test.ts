import Stripe from 'stripe';
import { startEmulator } from '../../src/emulator';
import { startHarness, recurringPrice, type Harness } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.emu.close();
});

describe('wire format and auth', () => {
  test('401 with Stripe error JSON when no key is sent', async () => {
    const res = await fetch(`${h.emu.url}/v1/customers`);
    expect(res.status).toBe(401);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    const body = await res.json();
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/did not provide an API key/);
  });

  test('401 for a non-test key through the SDK', async () => {
    const live = new Stripe('sk_live_nope', { host: '127.0.0.1', port: h.emu.port, protocol: 'http' });
    await expect(live.customers.list()).rejects.toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
  });

  test('form bodies with bracket notation and JSON bodies', async () => {
    const form = await fetch(`${h.emu.url}/v1/customers`, {
      method: 'POST',
      headers: { Authorization: 'Bearer sk_test_x', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'email=f%40x.io&metadata[plan]=pro&metadata[seats]=3',
    }).then((r) => r.json());
    expect(form).toMatchObject({ object: 'customer', email: 'f@x.io', metadata: { plan: 'pro', seats: '3' }, livemode: false });
    const json = await fetch(`${h.emu.url}/v1/customers`, {
      method: 'POST',
      headers: { Authorization: 'Bearer sk_test_x', 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: 'j@x.io', metadata: { a: 'b' } }),
    }).then((r) => r.json());
    expect(json).toMatchObject({ email: 'j@x.io', metadata: { a: 'b' } });
  });

  test('404 resource_missing', async () => {
    const err = await h.stripe.customers.retrieve('cus_missing').catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.statusCode).toBe(404);
    expect(err.code).toBe('resource_missing');
  });
});

describe('customers', () => {
  test('create, retrieve, update, list by email, delete', async () => {
    const c = await h.stripe.customers.create({ email: 'cust@example.com', name: 'Ada', metadata: { tier: 'gold' } });
    expect(c.id).toMatch(/^cus_/);
    expect(typeof c.created).toBe('number');
    const got = await h.stripe.customers.retrieve(c.id);
    expect(got).toMatchObject({ id: c.id, email: 'cust@example.com', name: 'Ada' });
    const upd = await h.stripe.customers.update(c.id, { name: 'Ada L', metadata: { tier: '' , extra: 'x' } });
    expect(upd.name).toBe('Ada L');
    expect(upd.metadata).toEqual({ extra: 'x' });
    const list = await h.stripe.customers.list({ email: 'cust@example.com' });
    expect(list.data.map((x) => x.id)).toEqual([c.id]);
    const del = await h.stripe.customers.del(c.id);
    expect(del).toMatchObject({ id: c.id, deleted: true });
    const after = await h.stripe.customers.retrieve(c.id);
    expect(after.deleted).toBe(true);
  });

  test('test payment methods: attach, default, declined card refuses to attach', async () => {
    const c = await h.stripe.customers.create({ payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
    const pmId = c.invoice_settings.default_payment_method as string;
    expect(pmId).toMatch(/^pm_/);
    const pm = await h.stripe.paymentMethods.retrieve(pmId);
    expect(pm).toMatchObject({ customer: c.id, card: { last4: '4242', brand: 'visa' } });
    const attached = await h.stripe.paymentMethods.attach('pm_card_authenticationRequired', { customer: c.id });
    expect(attached.customer).toBe(c.id);
    const err = await h.stripe.paymentMethods.attach('pm_card_chargeDeclined', { customer: c.id }).catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(err.decline_code).toBe('generic_decline');
    const listed = await h.stripe.customers.listPaymentMethods(c.id);
    expect(listed.data).toHaveLength(2);
  });

  test('list pagination: limit, starting_after, ending_before, newest first, auto-pagination', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await h.stripe.customers.create({ email: `page-${i}@x.io`, metadata: { batch: 'p' } })).id);
    const first = await h.stripe.customers.list({ limit: 3 });
    expect(first.object).toBe('list');
    expect(first.url).toBe('/v1/customers');
    expect(first.has_more).toBe(true);
    expect(first.data.map((c) => c.id)).toEqual([ids[6], ids[5], ids[4]]);
    const second = await h.stripe.customers.list({ limit: 3, starting_after: first.data[2].id });
    expect(second.data.map((c) => c.id)).toEqual([ids[3], ids[2], ids[1]]);
    const back = await h.stripe.customers.list({ limit: 2, ending_before: second.data[0].id });
    expect(back.data.map((c) => c.id)).toEqual([ids[5], ids[4]]);
    const all: string[] = [];
    for await (const c of h.stripe.customers.list({ limit: 2 })) all.push(c.id);
    expect(all.slice(0, 7)).toEqual([...ids].reverse());
    await expect(h.stripe.customers.list({ limit: 101 })).rejects.toThrow(/between 1 and 100/);
  });
});

describe('products and prices', () => {
  test('product CRUD, list filters, default_price_data', async () => {
    const p = await h.stripe.products.create({ id: 'prod_custom_pro', name: 'Pro', description: 'Pro plan', metadata: { k: 'v' }, default_price_data: { currency: 'usd', unit_amount: 2500, recurring: { interval: 'month' } } });
    expect(p.id).toBe('prod_custom_pro');
    expect(p.default_price).toMatch(/^price_/);
    const upd = await h.stripe.products.update(p.id, { active: false, name: 'Pro (old)' });
    expect(upd).toMatchObject({ active: false, name: 'Pro (old)' });
    const inactive = await h.stripe.products.list({ active: false });
    expect(inactive.data.map((x) => x.id)).toContain(p.id);
    const byIds = await h.stripe.products.list({ ids: [p.id] });
    expect(byIds.data).toHaveLength(1);
    const other = await h.stripe.products.create({ name: 'Deletable' });
    expect(await h.stripe.products.del(other.id)).toMatchObject({ deleted: true });
    await expect(h.stripe.products.del(p.id)).rejects.toThrow(/has one or more user-created prices/);
  });

  test('price create/retrieve/update/list, lookup_keys, transfer_lookup_key, immutability', async () => {
    const product = await h.stripe.products.create({ name: 'Team' });
    const a = await h.stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 900, recurring: { interval: 'month', interval_count: 1 }, lookup_key: 'team_monthly', nickname: 'Team' });
    expect(a).toMatchObject({ object: 'price', type: 'recurring', unit_amount: 900, lookup_key: 'team_monthly', recurring: { interval: 'month', usage_type: 'licensed' } });
    const dup = await h.stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 1200, recurring: { interval: 'month' }, lookup_key: 'team_monthly' }).catch((e) => e);
    expect(dup).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(dup.message).toMatch(/already uses that lookup key/);
    const b = await h.stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 1200, recurring: { interval: 'month' }, lookup_key: 'team_monthly', transfer_lookup_key: true });
    expect(b.lookup_key).toBe('team_monthly');
    expect((await h.stripe.prices.retrieve(a.id)).lookup_key).toBeNull();
    const found = await h.stripe.prices.list({ lookup_keys: ['team_monthly'], expand: ['data.product'] });
    expect(found.data.map((x) => x.id)).toEqual([b.id]);
    expect((found.data[0].product as Stripe.Product).name).toBe('Team');
    const upd = await h.stripe.prices.update(a.id, { active: false, nickname: 'Old team', metadata: { v: '1' }, lookup_key: 'team_old' });
    expect(upd).toMatchObject({ active: false, nickname: 'Old team', metadata: { v: '1' }, lookup_key: 'team_old' });
    await expect(h.stripe.prices.update(a.id, { unit_amount: 5 } as never)).rejects.toThrow(/unknown parameter/);
    const byProduct = await h.stripe.prices.list({ product: product.id, active: true });
    expect(byProduct.data.map((x) => x.id)).toEqual([b.id]);
    const oneTime = await h.stripe.prices.create({ product_data: { name: 'Setup fee' }, currency: 'usd', unit_amount: 500 });
    expect(oneTime.type).toBe('one_time');
    expect((await h.stripe.prices.list({ type: 'one_time' })).data.map((x) => x.id)).toContain(oneTime.id);
  });
});

describe('idempotency', () => {
  test('same key and params replay the stored response; nothing is created twice', async () => {
    const key = `idem-${Date.now()}`;
    const before = (await h.stripe.customers.list({ limit: 100 })).data.length;
    const a = await h.stripe.customers.create({ email: 'idem@x.io' }, { idempotencyKey: key });
    const b = await h.stripe.customers.create({ email: 'idem@x.io' }, { idempotencyKey: key });
    expect(b.id).toBe(a.id);
    expect(b.lastResponse.headers['idempotent-replayed']).toBe('true');
    const after = (await h.stripe.customers.list({ limit: 100 })).data.length;
    expect(after).toBe(before + 1);
  });

  test('same key with different params is an idempotency error', async () => {
    const key = `idem-conflict-${Date.now()}`;
    await h.stripe.customers.create({ email: 'one@x.io' }, { idempotencyKey: key });
    const err = await h.stripe.customers.create({ email: 'two@x.io' }, { idempotencyKey: key }).catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(err.type).toBe('StripeIdempotencyError');
    expect(err.statusCode).toBe(400);
  });

  test('keys are scoped per API key', async () => {
    const other = new Stripe('sk_test_other', { host: '127.0.0.1', port: h.emu.port, protocol: 'http' });
    const key = `idem-scope-${Date.now()}`;
    const a = await h.stripe.customers.create({ email: 's1@x.io' }, { idempotencyKey: key });
    const b = await other.customers.create({ email: 's2@x.io' }, { idempotencyKey: key });
    expect(b.id).not.toBe(a.id);
  });
});

describe('events', () => {
  test('state changes record events with snapshots and previous_attributes', async () => {
    const c = await h.stripe.customers.create({ email: 'ev@x.io' });
    await h.stripe.customers.update(c.id, { name: 'Evented' });
    const events = await h.stripe.events.list({ types: ['customer.created', 'customer.updated'], limit: 100 });
    const mine = events.data.filter((e) => (e.data.object as Stripe.Customer).id === c.id);
    expect(mine.map((e) => e.type)).toEqual(['customer.updated', 'customer.created']);
    expect(mine[0].data.previous_attributes).toEqual({ name: null });
    expect(mine[0]).toMatchObject({ object: 'event', api_version: '2026-10-28.endive', livemode: false });
    expect(mine[0].request?.id).toMatch(/^req_/);
    const one = await h.stripe.events.retrieve(mine[1].id);
    expect((one.data.object as Stripe.Customer).name).toBeNull();
  });

  test('expand on retrieve and unknown expansions', async () => {
    const price = await recurringPrice(h.stripe, 1500);
    const got = await h.stripe.prices.retrieve(price.id, { expand: ['product'] });
    expect((got.product as Stripe.Product).object).toBe('product');
    await expect(h.stripe.prices.retrieve(price.id, { expand: ['nickname_x'] })).rejects.toThrow(/cannot be expanded/);
  });
});

describe('emulator controls', () => {
  test('refuses a non-loopback host unless allowed', async () => {
    await expect(startEmulator({ host: '0.0.0.0' })).rejects.toThrow(/loopback/);
  });

  test('restricted test keys work; reset clears state', async () => {
    const emu = await startEmulator({ port: 0 });
    try {
      const rk = new Stripe('rk_test_restricted', { host: '127.0.0.1', port: emu.port, protocol: 'http' });
      await rk.customers.create({ email: 'r@x.io' });
      expect((await rk.customers.list()).data).toHaveLength(1);
      const res = await fetch(`${emu.url}/_emulator/reset`, { method: 'POST' });
      expect(res.status).toBe(200);
      expect((await rk.customers.list()).data).toHaveLength(0);
      expect(emu.events()).toHaveLength(0);
    } finally {
      await emu.close();
    }
  });

  test('invoice PDF is served', async () => {
    const c = await h.stripe.customers.create({ payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
    const price = await recurringPrice(h.stripe, 1200);
    const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: price.id }], expand: ['latest_invoice'] });
    const inv = sub.latest_invoice as Stripe.Invoice;
    const pdf = await fetch(inv.invoice_pdf!);
    expect(pdf.headers.get('content-type')).toBe('application/pdf');
    expect((await pdf.text()).startsWith('%PDF-')).toBe(true);
    const lines = await h.stripe.invoices.listLineItems(inv.id);
    expect(lines.data[0]).toMatchObject({ object: 'line_item', amount: 1200, pricing: { price_details: { price: price.id } } });
  });
});
