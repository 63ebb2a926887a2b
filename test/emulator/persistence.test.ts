import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { startEmulator, type EmulatorOptions, type RunningEmulator } from '../../src/emulator';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'emu-state-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function sdk(emu: RunningEmulator): Stripe {
  return new Stripe('sk_test_x', { host: '127.0.0.1', port: emu.port, protocol: 'http' });
}

async function start(stateFile: string, extra: EmulatorOptions = {}): Promise<{ emu: RunningEmulator; logs: string[] }> {
  const logs: string[] = [];
  const emu = await startEmulator({ port: 0, stateFile, logger: (l) => logs.push(l), deliveryRetryDelaysMs: [20], ...extra });
  return { emu, logs };
}

/** Drops the SDK's non-enumerable response metadata so objects compare by their fields. */
const plain = (o: unknown) => JSON.parse(JSON.stringify(o));

test('objects, events, idempotency, meter dedupe and the clock survive a restart', async () => {
  const file = path.join(dir, 'state.json');
  const a = await start(file);
  const s1 = sdk(a.emu);
  const customer = await s1.customers.create(
    { email: 'keep@x.io', name: 'Keep', metadata: { tier: 'gold' }, payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } },
    { idempotencyKey: 'create-keep' },
  );
  const product = await s1.products.create({ name: 'Pro' });
  const price = await s1.prices.create({ product: product.id, currency: 'usd', unit_amount: 1500, recurring: { interval: 'month' }, lookup_key: 'pro_monthly' });
  const sub = await s1.subscriptions.create({ customer: customer.id, items: [{ price: price.id, quantity: 2 }], metadata: { plan: 'pro' } });
  expect(sub.status).toBe('active');
  await s1.billing.meters.create({ display_name: 'Calls', event_name: 'calls', default_aggregation: { formula: 'sum' } });
  await s1.billing.meterEvents.create({ event_name: 'calls', payload: { stripe_customer_id: customer.id, value: '3' }, identifier: 'call-1' });
  a.emu.advanceClock(3600);
  const before = {
    customer: plain(await s1.customers.retrieve(customer.id)),
    product: plain(await s1.products.retrieve(product.id)),
    price: plain(await s1.prices.retrieve(price.id)),
    sub: plain(await s1.subscriptions.retrieve(sub.id)),
    invoice: plain(await s1.invoices.retrieve(sub.latest_invoice as string)),
  };
  const eventsBefore = (await s1.events.list({ limit: 100 })).data.map((e) => e.id);
  expect(eventsBefore.length).toBeGreaterThan(3);
  const nowBefore = a.emu.now();
  await a.emu.close();

  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

  const b = await start(file);
  try {
    expect(b.emu.port).not.toBe(0);
    const s2 = sdk(b.emu);
    expect(plain(await s2.customers.retrieve(customer.id))).toEqual(before.customer);
    expect(plain(await s2.products.retrieve(product.id))).toEqual(before.product);
    expect(plain(await s2.prices.retrieve(price.id))).toEqual(before.price);
    expect(plain(await s2.subscriptions.retrieve(sub.id))).toEqual(before.sub);
    expect(plain(await s2.invoices.retrieve(sub.latest_invoice as string))).toEqual(before.invoice);

    const byKey = await s2.prices.list({ lookup_keys: ['pro_monthly'] });
    expect(byKey.data.map((p) => p.id)).toEqual([price.id]);

    const eventsAfter = (await s2.events.list({ limit: 100 })).data.map((e) => e.id);
    expect(eventsAfter).toEqual(eventsBefore);
    expect((await s2.events.retrieve(eventsBefore[0])).id).toBe(eventsBefore[0]);

    // The same Idempotency-Key replays the stored response instead of creating a customer.
    const replay = await s2.customers.create(
      { email: 'keep@x.io', name: 'Keep', metadata: { tier: 'gold' }, payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } },
      { idempotencyKey: 'create-keep' },
    );
    expect(replay.id).toBe(customer.id);
    expect(replay.lastResponse.headers['idempotent-replayed']).toBe('true');

    // Meter dedupe data and the clock offset carry over.
    const dup = await s2.billing.meterEvents.create({ event_name: 'calls', payload: { stripe_customer_id: customer.id, value: '3' }, identifier: 'call-1' }).catch((e) => e);
    expect(dup).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(b.emu.meterEventCount('call-1')).toBe(1);
    expect(b.emu.now()).toBeGreaterThanOrEqual(nowBefore);
    expect(b.emu.now() - Math.floor(Date.now() / 1000)).toBeGreaterThanOrEqual(3599);

    // New objects get fresh ids, and relinked subscription items stay live.
    const c2 = await s2.customers.create({ email: 'new@x.io' });
    expect(c2.id).not.toBe(customer.id);
    const p2 = await s2.prices.create({ product: product.id, currency: 'usd', unit_amount: 2500, recurring: { interval: 'month' } });
    expect(p2.id).not.toBe(price.id);
    const updated = await s2.subscriptions.update(sub.id, { items: [{ id: sub.items.data[0].id, quantity: 3 }], proration_behavior: 'none' });
    expect(updated.items.data[0].quantity).toBe(3);
    expect((await s2.subscriptions.retrieve(sub.id)).items.data[0].quantity).toBe(3);
    const allCustomers = (await s2.customers.list({ limit: 100 })).data.map((c) => c.id);
    expect(new Set(allCustomers).size).toBe(allCustomers.length);
    expect(allCustomers).toEqual(expect.arrayContaining([customer.id, c2.id]));
  } finally {
    await b.emu.close();
  }

  // Changes made after the restart are kept too.
  const c = await start(file);
  try {
    const s3 = sdk(c.emu);
    expect((await s3.subscriptions.retrieve(sub.id)).items.data[0].quantity).toBe(3);
    expect((await s3.customers.list({ email: 'new@x.io' })).data).toHaveLength(1);
  } finally {
    await c.emu.close();
  }
});

test('saves after changes without waiting for close (debounced)', async () => {
  const file = path.join(dir, 'debounce.json');
  const { emu } = await start(file);
  try {
    const cus = await sdk(emu).customers.create({ email: 'soon@x.io' });
    const deadline = Date.now() + 3_000;
    while (!(fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes(cus.id)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(fs.readFileSync(file, 'utf8')).toContain(cus.id);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  } finally {
    await emu.close();
  }
});

test('a corrupt state file starts empty with one warning and is replaced', async () => {
  const file = path.join(dir, 'corrupt.json');
  fs.writeFileSync(file, '{"version":1,"tables":{"customer":[{"id":"cus_');
  const { emu, logs } = await start(file);
  try {
    expect(logs.filter((l) => /warning/i.test(l))).toHaveLength(1);
    const s = sdk(emu);
    expect((await s.customers.list()).data).toEqual([]);
    await s.customers.create({ email: 'after@x.io' });
  } finally {
    await emu.close();
  }
  const again = await start(file);
  try {
    expect(again.logs.filter((l) => /warning/i.test(l))).toHaveLength(0);
    expect((await sdk(again.emu).customers.list()).data.map((c) => c.email)).toEqual(['after@x.io']);
  } finally {
    await again.emu.close();
  }

  const garbage = path.join(dir, 'garbage.json');
  fs.writeFileSync(garbage, Buffer.from([0xff, 0x00, 0x13, 0x37]));
  const g = await start(garbage);
  try {
    expect(g.logs.filter((l) => /warning/i.test(l))).toHaveLength(1);
    expect(g.emu.events()).toEqual([]);
  } finally {
    await g.emu.close();
  }
});

test('API-created webhook endpoints persist with their secret; option endpoints are not duplicated', async () => {
  const received: { body: string; sig: string }[] = [];
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), sig: String(req.headers['stripe-signature']) });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const configUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/config`;
  const file = path.join(dir, 'hooks.json');
  const opts: EmulatorOptions = { webhookEndpoints: [{ url: configUrl, secret: 'whsec_config', enabledEvents: ['product.created'] }] };
  try {
    const a = await start(file, opts);
    const we = await sdk(a.emu).webhookEndpoints.create({ url: hookUrl, enabled_events: ['customer.created'] });
    await a.emu.close();
    expect(fs.readFileSync(file, 'utf8')).not.toContain('whsec_config');

    for (let round = 0; round < 2; round++) {
      const b = await start(file, opts);
      try {
        const s = sdk(b.emu);
        const list = (await s.webhookEndpoints.list()).data;
        expect(list.map((e) => e.url).sort()).toEqual([configUrl, hookUrl].sort());
        received.length = 0;
        const cus = await s.customers.create({ email: `hook${round}@x.io` });
        await b.emu.waitForWebhooks();
        expect(received).toHaveLength(1);
        const event = Stripe.webhooks.constructEvent(received[0].body, received[0].sig, we.secret as string);
        expect(event.type).toBe('customer.created');
        expect((event.data.object as Stripe.Customer).id).toBe(cus.id);
      } finally {
        await b.emu.close();
      }
    }
  } finally {
    await new Promise<void>((r) => receiver.close(() => r()));
  }
});

test('coupons, discounts, invoice items, draft invoices, setup intents, refunds, tax ids and portal configurations survive a restart', async () => {
  const file = path.join(dir, 'billing-objects.json');
  const a = await start(file);
  const s1 = sdk(a.emu);
  const customer = await s1.customers.create({ email: 'objects@x.io', payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
  const product = await s1.products.create({ name: 'Kept' });
  const price = await s1.prices.create({ product: product.id, currency: 'usd', unit_amount: 1000, recurring: { interval: 'month' } });
  const coupon = await s1.coupons.create({ percent_off: 20, duration: 'forever' });
  const promo = await s1.promotionCodes.create({ promotion: { type: 'coupon', coupon: coupon.id }, code: 'KEEP20' });
  const sub = await s1.subscriptions.create({ customer: customer.id, items: [{ price: price.id }], discounts: [{ promotion_code: promo.id }] });
  const pending = await s1.invoiceItems.create({ customer: customer.id, amount: 400, currency: 'usd' });
  const draft = await s1.invoices.create({ customer: customer.id });
  const si = await s1.setupIntents.create({ customer: customer.id, payment_method: 'pm_card_visa', confirm: true });
  const paid = await s1.paymentIntents.create({ amount: 900, currency: 'usd', customer: customer.id, payment_method: 'pm_card_visa', confirm: true });
  const refund = await s1.refunds.create({ payment_intent: paid.id, amount: 300 });
  const tax = await s1.customers.createTaxId(customer.id, { type: 'eu_vat', value: 'DE123456789' });
  const conf = await s1.billingPortal.configurations.create({ features: { invoice_history: { enabled: true } } });
  await a.emu.close();

  const b = await start(file);
  const s2 = sdk(b.emu);
  try {
    expect(plain(await s2.coupons.retrieve(coupon.id))).toEqual(expect.objectContaining({ id: coupon.id, percent_off: 20, times_redeemed: 1 }));
    expect((await s2.promotionCodes.retrieve(promo.id)).times_redeemed).toBe(1);
    expect((await s2.subscriptions.retrieve(sub.id)).discounts).toEqual(sub.discounts);
    expect((await s2.invoiceItems.retrieve(pending.id)).invoice).toBeNull();
    expect((await s2.invoices.retrieve(draft.id)).status).toBe('draft');
    expect((await s2.setupIntents.retrieve(si.id)).status).toBe('succeeded');
    expect((await s2.refunds.retrieve(refund.id)).amount).toBe(300);
    expect((await s2.charges.retrieve(refund.charge as string)).amount_refunded).toBe(300);
    expect((await s2.customers.retrieveTaxId(customer.id, tax.id)).value).toBe('DE123456789');
    expect((await s2.billingPortal.configurations.retrieve(conf.id)).features.invoice_history.enabled).toBe(true);
    // The discount still applies after the restart: the renewal is 20% off, the pending item included.
    b.emu.advanceClock(32 * 86400);
    const renewal = await s2.invoices.retrieve((await s2.subscriptions.retrieve(sub.id)).latest_invoice as string);
    expect([renewal.subtotal, renewal.total]).toEqual([1400, 1120]);
  } finally {
    await b.emu.close();
  }
});
