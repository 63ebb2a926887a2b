import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Stripe from 'stripe';
import { startHarness, recurringPrice, type Harness } from './helpers';

interface Received {
  body: string;
  signature: string;
  headers: http.IncomingHttpHeaders;
}

let h: Harness;
let receiver: http.Server;
let received: Received[] = [];
let failNext = 0;
let receiverUrl = '';

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (failNext > 0) {
        failNext--;
        res.writeHead(500).end('boom');
        return;
      }
      received.push({ body: Buffer.concat(chunks).toString('utf8'), signature: String(req.headers['stripe-signature']), headers: req.headers });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks`;
  h = await startHarness();
});
afterAll(async () => {
  await h.emu.close();
  await new Promise((r) => receiver.close(r));
});

async function waitFor<T>(fn: () => T | undefined, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('webhooks', () => {
  test('signed deliveries pass stripe.webhooks.constructEvent, retried after a 500', async () => {
    const { secret, id } = h.emu.addWebhookEndpoint({ url: receiverUrl, enabledEvents: ['customer.created', 'customer.updated'] });
    expect(secret).toMatch(/^whsec_/);
    expect(id).toMatch(/^we_/);
    received = [];
    failNext = 1;
    const c = await h.stripe.customers.create({ email: 'hook@x.io' });
    await h.stripe.customers.update(c.id, { name: 'Hooked' });
    await h.stripe.products.create({ name: 'not subscribed' });
    await waitFor(() => (received.length >= 2 ? true : undefined));
    const events = received.map((r) => h.stripe.webhooks.constructEvent(r.body, r.signature, secret));
    expect(events.map((e) => e.type)).toEqual(['customer.created', 'customer.updated']);
    expect((events[0].data.object as Stripe.Customer).id).toBe(c.id);
    expect(received[0].headers['content-type']).toBe('application/json; charset=utf-8');
    expect(received[0].headers['user-agent']).toBe('Stripe/1.0 (+https://stripe.com/docs/webhooks)');
    expect(received[0].signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(() => h.stripe.webhooks.constructEvent(received[0].body, received[0].signature, 'whsec_wrong')).toThrow();
    const log = await fetch(`${h.emu.url}/_emulator/webhook-deliveries`).then((r) => r.json());
    const first = log.deliveries.filter((d: { event: string }) => d.event === events[0].id);
    expect(first.map((d: { status: number }) => d.status)).toEqual([500, 200]);
    expect(events[0].pending_webhooks).toBe(1);
  });

  test('webhook endpoints API: secret on create only, list, retrieve, delete', async () => {
    const we = await h.stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['*'] });
    expect(we.secret).toMatch(/^whsec_/);
    const got = await h.stripe.webhookEndpoints.retrieve(we.id);
    expect(got.secret).toBeUndefined();
    expect(got.enabled_events).toEqual(['*']);
    expect((await h.stripe.webhookEndpoints.list()).data.map((x) => x.id)).toContain(we.id);
    received = [];
    await h.stripe.products.create({ name: 'Everything' });
    const r = await waitFor(() => received.find((x) => JSON.parse(x.body).type === 'product.created'));
    expect(h.stripe.webhooks.constructEvent(r.body, r.signature, we.secret!).type).toBe('product.created');
    expect(await h.stripe.webhookEndpoints.del(we.id)).toMatchObject({ deleted: true });
  });
});

describe('checkout', () => {
  test('hosted page: Pay completes the session, 303 to success_url, subscription exists', async () => {
    const price = await recurringPrice(h.stripe, 4900);
    const session = await h.stripe.checkout.sessions.create({
      mode: 'subscription',
      line_items: [{ price: price.id, quantity: 1 }],
      customer_email: 'buyer@x.io',
      client_reference_id: 'user_42',
      success_url: 'https://app.example/success?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://app.example/cancel',
      metadata: { orgId: 'org_1' },
      subscription_data: { metadata: { orgId: 'org_1' } },
    });
    expect(session).toMatchObject({ object: 'checkout.session', status: 'open', payment_status: 'unpaid', mode: 'subscription', amount_total: 4900, client_reference_id: 'user_42' });
    expect(session.id).toMatch(/^cs_test_/);
    const page = await fetch(session.url!);
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain('<button type="submit">Pay</button>');
    expect(html).toContain('href="https://app.example/cancel"');
    const action = /<form method="post" action="([^"]+)"/.exec(html)![1];
    const res = await fetch(new URL(action, h.emu.url), {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'card=pm_card_visa&name=Buyer',
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`https://app.example/success?session_id=${session.id}`);
    const done = await h.stripe.checkout.sessions.retrieve(session.id, { expand: ['subscription', 'line_items'] });
    expect(done).toMatchObject({ status: 'complete', payment_status: 'paid' });
    const sub = done.subscription as Stripe.Subscription;
    expect(sub).toMatchObject({ object: 'subscription', status: 'active', metadata: { orgId: 'org_1' } });
    expect(done.line_items!.data[0]).toMatchObject({ quantity: 1, amount_total: 4900 });
    const customer = await h.stripe.customers.retrieve(done.customer as string);
    expect((customer as Stripe.Customer).email).toBe('buyer@x.io');
    const types = (await h.stripe.events.list({ limit: 30 })).data.map((e) => e.type);
    expect(types).toContain('checkout.session.completed');
    expect(types).toContain('customer.subscription.created');
    expect(types).toContain('invoice.paid');
    const again = await fetch(session.url!);
    expect(again.status).toBe(410);
  });

  test('declined card on the hosted page leaves the session open', async () => {
    const price = await recurringPrice(h.stripe, 1900);
    const session = await h.stripe.checkout.sessions.create({ mode: 'subscription', line_items: [{ price: price.id, quantity: 1 }], success_url: 'https://app.example/ok' });
    const res = await fetch(session.url!, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'email=d%40x.io&card=pm_card_chargeDeclined', redirect: 'manual' });
    expect(res.status).toBe(402);
    expect(await res.text()).toContain('Your card was declined.');
    expect((await h.stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
    expect((await h.stripe.checkout.sessions.expire(session.id)).status).toBe('expired');
    await expect(h.stripe.checkout.sessions.expire(session.id)).rejects.toThrow(/open/);
  });

  test('payment mode, trial via subscription_data, list', async () => {
    const product = await h.stripe.products.create({ name: 'Credits' });
    const once = await h.stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 700 });
    const customer = await h.stripe.customers.create({ email: 'pm@x.io' });
    const s = await h.stripe.checkout.sessions.create({ mode: 'payment', customer: customer.id, line_items: [{ price: once.id, quantity: 2 }], success_url: 'https://app.example/ok' });
    await fetch(s.url!, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'card=pm_card_visa', redirect: 'manual' });
    const done = await h.stripe.checkout.sessions.retrieve(s.id, { expand: ['payment_intent'] });
    expect(done).toMatchObject({ status: 'complete', payment_status: 'paid', payment_intent: { status: 'succeeded', amount: 1400 } });
    const price = await recurringPrice(h.stripe, 1000);
    const t = await h.stripe.checkout.sessions.create({ mode: 'subscription', customer: customer.id, line_items: [{ price: price.id, quantity: 1 }], subscription_data: { trial_period_days: 7 } });
    await fetch(t.url!, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'card=pm_card_visa', redirect: 'manual' });
    const trialDone = await h.stripe.checkout.sessions.retrieve(t.id, { expand: ['subscription'] });
    expect(trialDone.payment_status).toBe('no_payment_required');
    expect((trialDone.subscription as Stripe.Subscription).status).toBe('trialing');
    const listed = await h.stripe.checkout.sessions.list({ customer: customer.id });
    expect(listed.data.map((x) => x.id)).toEqual([t.id, s.id]);
  });

  test('billing portal session with a hosted page linking back', async () => {
    const customer = await h.stripe.customers.create({ email: 'portal@x.io' });
    const ps = await h.stripe.billingPortal.sessions.create({ customer: customer.id, return_url: 'https://app.example/account' });
    expect(ps).toMatchObject({ object: 'billing_portal.session', customer: customer.id, return_url: 'https://app.example/account' });
    expect(ps.id).toMatch(/^bps_/);
    const html = await fetch(ps.url).then((r) => r.text());
    expect(html).toContain('href="https://app.example/account"');
    await expect(h.stripe.billingPortal.sessions.create({ customer: 'cus_nope' })).rejects.toThrow(/No such customer/);
  });
});
