import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startEmulator } from '../../src/emulator';
import { BillingError, ErrorCode } from '../../src/common/errors';
import { idempotencyKey } from '../../src/stripe/idempotency';
import { WebhookSignatureError } from '../../src/stripe/stripe-errors';
import { StripeSdkGateway, stripeModeFor } from '../../src/stripe/stripe-sdk.gateway';
import type { MeterSnapshot, PriceSnapshot, ProductSnapshot } from '../../src/stripe/stripe.gateway';
import { startRecordingProxy } from './recording-proxy';

/*
 * Every gateway method through the real SDK over HTTP against the Stripe emulator.
 */

type Emulator = Awaited<ReturnType<typeof startEmulator>>;

const SECRET_KEY = 'sk_test_tollgate_gateway_suite';
const WEBHOOK_SECRET = 'whsec_tollgate_gateway_suite_secret';

let emu: Emulator;
let gateway: StripeSdkGateway;
let product: ProductSnapshot;
let monthly: PriceSnapshot;
let yearly: PriceSnapshot;
let oneTime: PriceSnapshot;
let meter: MeterSnapshot;
let metered: PriceSnapshot;

/** A fresh key per test run, so reruns against a long-lived emulator never collide. */
const key = (scope: string, ...parts: string[]) => idempotencyKey(scope, ...parts, randomUUID());

async function expectBillingError(promise: Promise<unknown>, code: ErrorCode): Promise<BillingError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(BillingError);
    expect((error as BillingError).code).toBe(code);
    return error as BillingError;
  }
  throw new Error(`expected a BillingError ${code}`);
}

async function addFault(spec: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${emu.url}/_emulator/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(spec),
  });
  expect(res.ok).toBe(true);
}

async function newCustomer(label: string) {
  return gateway.createCustomer({ userId: `user-${label}-${randomUUID()}`, email: `${label}@example.com`, idempotencyKey: key('customer.create', label) });
}

/** Lists a customer's objects straight from the emulator, bypassing the gateway. */
async function rawList(path: string): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${emu.url}${path}`, { headers: { authorization: `Bearer ${SECRET_KEY}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: Array<Record<string, unknown>> }).data;
}

beforeAll(async () => {
  emu = await startEmulator({ port: 0 });
  gateway = new StripeSdkGateway({
    secretKey: SECRET_KEY,
    apiBase: emu.url,
    maxNetworkRetries: 2,
    timeoutMs: 5_000,
    webhookSecret: WEBHOOK_SECRET,
  });
  product = await gateway.createProduct({ name: 'Pro', description: 'For growing teams', idempotencyKey: key('product.create', 'pro') });
  const suffix = randomUUID().slice(0, 8);
  monthly = await gateway.createPrice({
    productId: product.id,
    currency: 'usd',
    unitAmount: 9900,
    lookupKey: `pro_monthly_${suffix}`,
    recurring: { interval: 'month' },
    idempotencyKey: key('price.create', 'pro_monthly'),
  });
  yearly = await gateway.createPrice({
    productId: product.id,
    currency: 'usd',
    unitAmount: 99900,
    lookupKey: `pro_yearly_${suffix}`,
    recurring: { interval: 'year' },
    idempotencyKey: key('price.create', 'pro_yearly'),
  });
  oneTime = await gateway.createPrice({
    productId: product.id,
    currency: 'usd',
    unitAmount: 49900,
    idempotencyKey: key('price.create', 'one_time'),
  });
  meter = await gateway.createMeter({
    eventName: `api_calls_${suffix}`,
    displayName: 'API calls',
    aggregation: 'sum',
    idempotencyKey: key('meter.create', 'api_calls'),
  });
  metered = await gateway.createPrice({
    productId: product.id,
    currency: 'usd',
    unitAmount: 2,
    recurring: { interval: 'month', usageType: 'metered', meterId: meter.id },
    idempotencyKey: key('price.create', 'metered'),
  });
});

afterAll(async () => {
  await emu?.close();
});

describe(StripeSdkGateway.name, () => {
  describe('mode', () => {
    it('is emulator when an API base is configured, otherwise follows the key', () => {
      expect(gateway.mode).toBe('emulator');
      expect(stripeModeFor('sk_live_abc')).toBe('live');
      expect(stripeModeFor('rk_live_abc')).toBe('live');
      expect(stripeModeFor('sk_test_abc')).toBe('test');
    });
  });

  describe('customers', () => {
    it('creates one customer for two calls with the same key', async () => {
      const userId = `user-${randomUUID()}`;
      const k = key('customer.create', userId);
      const first = await gateway.createCustomer({ userId, email: 'ada@example.com', name: 'Ada', idempotencyKey: k });
      const second = await gateway.createCustomer({ userId, email: 'ada@example.com', name: 'Ada', idempotencyKey: k });
      expect(second.id).toBe(first.id);
      expect(first).toMatchObject({ userId, email: 'ada@example.com', name: 'Ada', livemode: false, deleted: false });
      const all = await rawList('/v1/customers?limit=100&email=ada@example.com');
      expect(all.filter((c) => (c.metadata as Record<string, string>)?.tollgate_user_id === userId)).toHaveLength(1);
    });

    it('retrieves a customer, and answers NOT_FOUND for an unknown id', async () => {
      const created = await newCustomer('retrieve');
      await expect(gateway.retrieveCustomer(created.id)).resolves.toMatchObject({ id: created.id, userId: created.userId });
      const error = await expectBillingError(gateway.retrieveCustomer('cus_doesnotexist'), ErrorCode.NOT_FOUND);
      expect(error.message).toBe('Customer not found');
    });

    it('rejects a different request under a used key with IDEMPOTENCY_CONFLICT', async () => {
      const k = key('customer.create', 'conflict');
      await gateway.createCustomer({ userId: 'u-1', idempotencyKey: k });
      await expectBillingError(gateway.createCustomer({ userId: 'u-2', idempotencyKey: k }), ErrorCode.IDEMPOTENCY_CONFLICT);
    });
  });

  describe('catalog', () => {
    it('creates, updates and lists products', async () => {
      expect(product).toMatchObject({ name: 'Pro', description: 'For growing teams', active: true });
      const updated = await gateway.updateProduct({ id: product.id, name: 'Pro plan', metadata: { plan_code: 'pro' }, idempotencyKey: key('product.update', product.id) });
      expect(updated).toMatchObject({ id: product.id, name: 'Pro plan', metadata: { plan_code: 'pro' } });
      const listed = await gateway.listProducts({ active: true });
      expect(listed.map((p) => p.id)).toContain(product.id);
    });

    it('creates recurring, one-time and metered prices', () => {
      expect(monthly).toMatchObject({ productId: product.id, unitAmount: 9900, currency: 'usd', type: 'recurring', recurring: { interval: 'month', usageType: 'licensed' } });
      expect(yearly.recurring?.interval).toBe('year');
      expect(oneTime).toMatchObject({ type: 'one_time', recurring: null, unitAmount: 49900 });
      expect(metered.recurring).toMatchObject({ usageType: 'metered', meterId: meter.id });
    });

    it('retrieves a price with its product expanded', async () => {
      const price = await gateway.retrievePrice(monthly.id);
      expect(price.product).toMatchObject({ id: product.id });
      await expectBillingError(gateway.retrievePrice('price_missing'), ErrorCode.NOT_FOUND);
    });

    it('finds prices by lookup key and moves a lookup key with transferLookupKey', async () => {
      const lookupKey = `starter_${randomUUID().slice(0, 8)}`;
      const first = await gateway.createPrice({ productId: product.id, currency: 'usd', unitAmount: 1900, lookupKey, recurring: { interval: 'month' }, idempotencyKey: key('price.create', lookupKey, '1') });
      expect((await gateway.listPrices({ lookupKeys: [lookupKey] })).map((p) => p.id)).toEqual([first.id]);
      const second = await gateway.createPrice({ productId: product.id, currency: 'usd', unitAmount: 2900, lookupKey, transferLookupKey: true, recurring: { interval: 'month' }, idempotencyKey: key('price.create', lookupKey, '2') });
      expect((await gateway.listPrices({ lookupKeys: [lookupKey] })).map((p) => p.id)).toEqual([second.id]);
      expect((await gateway.retrievePrice(first.id)).lookupKey).toBeNull();
    });

    it('updates a price and filters the list by product and active', async () => {
      const price = await gateway.createPrice({ productId: product.id, currency: 'usd', unitAmount: 500, idempotencyKey: key('price.create', 'deactivate') });
      const updated = await gateway.updatePrice({ id: price.id, active: false, nickname: 'old', idempotencyKey: key('price.update', price.id) });
      expect(updated).toMatchObject({ active: false, nickname: 'old' });
      const active = await gateway.listPrices({ productId: product.id, active: true });
      expect(active.map((p) => p.id)).toEqual(expect.arrayContaining([monthly.id, yearly.id]));
      expect(active.map((p) => p.id)).not.toContain(price.id);
    });

    it('creates and lists meters', async () => {
      expect(meter).toMatchObject({ aggregation: 'sum', status: 'active', customerPayloadKey: 'stripe_customer_id', valuePayloadKey: 'value' });
      expect((await gateway.listMeters()).map((m) => m.id)).toContain(meter.id);
    });
  });

  describe('subscriptions', () => {
    it('walks the lifecycle: incomplete with a client secret, update, cancel at period end, resume, cancel now', async () => {
      const customer = await newCustomer('lifecycle');
      const createKey = key('subscription.create', customer.id);
      const created = await gateway.createSubscription({
        customerId: customer.id,
        items: [{ priceId: monthly.id, quantity: 1 }],
        metadata: { tollgate_subscription_id: 'row-1' },
        idempotencyKey: createKey,
      });
      expect(created.subscription).toMatchObject({ customerId: customer.id, status: 'incomplete', metadata: { tollgate_subscription_id: 'row-1' } });
      expect(created.clientSecret).toEqual(expect.any(String));
      expect(created.subscription.items).toHaveLength(1);
      expect(created.subscription.currentPeriodStart).toBeInstanceOf(Date);
      expect(created.subscription.currentPeriodEnd!.getTime()).toBeGreaterThan(created.subscription.currentPeriodStart!.getTime());

      const again = await gateway.createSubscription({
        customerId: customer.id,
        items: [{ priceId: monthly.id, quantity: 1 }],
        metadata: { tollgate_subscription_id: 'row-1' },
        idempotencyKey: createKey,
      });
      expect(again.subscription.id).toBe(created.subscription.id);

      const id = created.subscription.id;
      const itemId = created.subscription.items[0].id;
      const moreSeats = await gateway.updateSubscription({ id, itemId, quantity: 3, prorationBehavior: 'none', idempotencyKey: key('subscription.update', id, 'qty') });
      expect(moreSeats.items[0].quantity).toBe(3);
      const yearlyPlan = await gateway.updateSubscription({ id, itemId, priceId: yearly.id, idempotencyKey: key('subscription.update', id, 'price') });
      expect(yearlyPlan.items[0].price.id).toBe(yearly.id);

      const scheduled = await gateway.cancelSubscription({ id, atPeriodEnd: true, idempotencyKey: key('subscription.cancel', id) });
      expect(scheduled.cancelAtPeriodEnd).toBe(true);
      expect(scheduled.status).not.toBe('canceled');
      const resumed = await gateway.resumeSubscription({ id, idempotencyKey: key('subscription.resume', id) });
      expect(resumed.cancelAtPeriodEnd).toBe(false);

      const canceled = await gateway.cancelSubscription({ id, atPeriodEnd: false, idempotencyKey: key('subscription.cancel', id, 'now') });
      expect(canceled.status).toBe('canceled');
      expect(canceled.canceledAt).toBeInstanceOf(Date);
      const canceledAgain = await gateway.cancelSubscription({ id, atPeriodEnd: false, idempotencyKey: key('subscription.cancel', id, 'again') });
      expect(canceledAgain.status).toBe('canceled');

      await expect(gateway.retrieveSubscription(id)).resolves.toMatchObject({ id, status: 'canceled' });
      expect((await gateway.listSubscriptions(customer.id)).map((s) => s.id)).toEqual([id]);
    });

    it('starts a trial as trialing with no payment due', async () => {
      const customer = await newCustomer('trial');
      const created = await gateway.createSubscription({ customerId: customer.id, items: [{ priceId: monthly.id }], trialDays: 14, idempotencyKey: key('subscription.create', customer.id) });
      expect(created.subscription.status).toBe('trialing');
      expect(created.clientSecret).toBeNull();
      const days = (created.subscription.trialEnd!.getTime() - created.subscription.trialStart!.getTime()) / 86_400_000;
      expect(Math.round(days)).toBe(14);
    });

    it('subscribes to a licensed and a metered price together', async () => {
      const customer = await newCustomer('metered');
      const created = await gateway.createSubscription({ customerId: customer.id, items: [{ priceId: monthly.id }, { priceId: metered.id }], trialDays: 7, idempotencyKey: key('subscription.create', customer.id) });
      const meteredItem = created.subscription.items.find((i) => i.price.id === metered.id);
      expect(meteredItem?.quantity ?? null).toBeNull();
      expect(meteredItem?.price.recurring?.meterId).toBe(meter.id);
    });

    it('answers NOT_FOUND for an unknown subscription or price', async () => {
      await expectBillingError(gateway.retrieveSubscription('sub_missing'), ErrorCode.NOT_FOUND);
      const customer = await newCustomer('bad-price');
      await expectBillingError(
        gateway.createSubscription({ customerId: customer.id, items: [{ priceId: 'price_missing' }], idempotencyKey: key('subscription.create', customer.id) }),
        ErrorCode.NOT_FOUND,
      );
    });
  });

  describe('checkout and portal', () => {
    it('creates and retrieves a subscription-mode checkout session', async () => {
      const customer = await newCustomer('checkout');
      const session = await gateway.createCheckoutSession({
        customerId: customer.id,
        mode: 'subscription',
        priceId: monthly.id,
        quantity: 2,
        successUrl: 'https://app.example/success',
        cancelUrl: 'https://app.example/cancel',
        clientReferenceId: customer.userId!,
        metadata: { tollgate_checkout_id: 'row-9' },
        idempotencyKey: key('checkout.create', customer.id),
      });
      expect(session).toMatchObject({ status: 'open', mode: 'subscription', customerId: customer.id, clientReferenceId: customer.userId, metadata: { tollgate_checkout_id: 'row-9' } });
      expect(session.url).toMatch(/^https?:\/\//);
      expect(session.expiresAt!.getTime()).toBeGreaterThan(Date.now());
      const read = await gateway.retrieveCheckoutSession(session.id);
      expect(read).toMatchObject({ id: session.id, status: 'open', subscription: null });
      await expectBillingError(gateway.retrieveCheckoutSession('cs_test_missing'), ErrorCode.NOT_FOUND);
    });

    it('expires an open session; one no longer open comes back as it is', async () => {
      const customer = await newCustomer('checkout-expire');
      const session = await gateway.createCheckoutSession({ customerId: customer.id, mode: 'payment', priceId: oneTime.id, quantity: 1, successUrl: 'https://app.example/s', cancelUrl: 'https://app.example/c', idempotencyKey: key('checkout.create', customer.id) });
      const expired = await gateway.expireCheckoutSession({ id: session.id, idempotencyKey: key('checkout.expire', session.id) });
      expect(expired).toMatchObject({ id: session.id, status: 'expired', url: null });
      // Again under another key: Stripe refuses (not open), the gateway answers what the session is.
      const again = await gateway.expireCheckoutSession({ id: session.id, idempotencyKey: key('checkout.expire', session.id, 'again') });
      expect(again).toMatchObject({ id: session.id, status: 'expired' });
      expect((await gateway.retrieveCheckoutSession(session.id)).status).toBe('expired');
      await expectBillingError(gateway.expireCheckoutSession({ id: 'cs_test_missing', idempotencyKey: key('checkout.expire', 'missing') }), ErrorCode.NOT_FOUND);
    });

    it('creates a payment-mode session for a one-time price', async () => {
      const customer = await newCustomer('checkout-payment');
      const session = await gateway.createCheckoutSession({ customerId: customer.id, mode: 'payment', priceId: oneTime.id, quantity: 1, successUrl: 'https://app.example/s', cancelUrl: 'https://app.example/c', idempotencyKey: key('checkout.create', customer.id) });
      expect(session).toMatchObject({ mode: 'payment', status: 'open' });
    });

    it('creates a billing portal session', async () => {
      const customer = await newCustomer('portal');
      const portal = await gateway.createBillingPortalSession({ customerId: customer.id, returnUrl: 'https://app.example/account', idempotencyKey: key('portal.create', customer.id) });
      expect(portal).toMatchObject({ customerId: customer.id, returnUrl: 'https://app.example/account' });
      expect(portal.url).toMatch(/^https?:\/\//);
    });
  });

  describe('invoices', () => {
    it('lists a customer invoices page by page and retrieves one', async () => {
      const customer = await newCustomer('invoices');
      const first = await gateway.createSubscription({ customerId: customer.id, items: [{ priceId: monthly.id }], idempotencyKey: key('subscription.create', customer.id, '1') });
      await gateway.createSubscription({ customerId: customer.id, items: [{ priceId: yearly.id }], idempotencyKey: key('subscription.create', customer.id, '2') });
      const page1 = await gateway.listInvoices({ customerId: customer.id, limit: 1 });
      expect(page1.data).toHaveLength(1);
      expect(page1.hasMore).toBe(true);
      expect(page1.nextCursor).toBe(page1.data[0].id);
      const page2 = await gateway.listInvoices({ customerId: customer.id, limit: 10, startingAfter: page1.nextCursor! });
      expect(page2.data.length).toBeGreaterThanOrEqual(1);
      expect(page2.data.map((i) => i.id)).not.toContain(page1.data[0].id);
      const all = [...page1.data, ...page2.data];
      const invoice = all.find((i) => i.id === first.subscription.latestInvoiceId)!;
      expect(invoice).toMatchObject({ customerId: customer.id, subscriptionId: first.subscription.id, currency: 'usd', amountDue: 9900 });
      await expect(gateway.retrieveInvoice(invoice.id)).resolves.toMatchObject({ id: invoice.id, subscriptionId: first.subscription.id });
      await expectBillingError(gateway.retrieveInvoice('in_missing'), ErrorCode.NOT_FOUND);
    });
  });

  describe('meter events', () => {
    it('sends through the v2 stream and Stripe counts each identifier once', async () => {
      const customer = await newCustomer('usage');
      const ids = [randomUUID(), randomUUID(), randomUUID()];
      const events = ids.map((identifier, i) => ({ eventName: meter.eventName, stripeCustomerId: customer.id, value: i + 1, identifier, timestamp: new Date() }));
      const first = await gateway.sendMeterEvents(events);
      expect(first.transport).toBe('v2_stream');
      expect(first.outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted', 'accepted']);
      await gateway.sendMeterEvents([events[0], events[0]]);
      for (const identifier of ids) expect(emu.meterEventCount(identifier)).toBe(1);
    });

    it('splits more than 100 events into several stream requests', async () => {
      const customer = await newCustomer('usage-batch');
      const proxy = await startRecordingProxy(emu.url);
      try {
        const viaProxy = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: proxy.url, maxNetworkRetries: 0 });
        const events = Array.from({ length: 250 }, () => ({ eventName: meter.eventName, stripeCustomerId: customer.id, value: 1, identifier: randomUUID(), timestamp: new Date() }));
        const result = await viaProxy.sendMeterEvents(events);
        expect(result.outcomes.filter((o) => o.status === 'accepted')).toHaveLength(250);
        expect(proxy.requests.filter((r) => r.path === '/v2/billing/meter_event_stream')).toHaveLength(3);
        expect(proxy.requests.filter((r) => r.path === '/v2/billing/meter_event_session')).toHaveLength(1);
        expect(emu.meterEventCount(events[249].identifier)).toBe(1);
      } finally {
        await proxy.close();
      }
    });

    it('falls back to v1 one by one, deduplicated by identifier', async () => {
      const customer = await newCustomer('usage-v1');
      const v1 = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: emu.url, meterEventTransport: 'v1' });
      const identifier = randomUUID();
      const event = { eventName: meter.eventName, stripeCustomerId: customer.id, value: 5, identifier, timestamp: new Date() };
      const first = await v1.sendMeterEvents([event]);
      expect(first).toEqual({ transport: 'v1', outcomes: [{ identifier, status: 'accepted', retryable: false }] });
      const second = await v1.sendMeterEvents([event]);
      expect(['accepted', 'duplicate']).toContain(second.outcomes[0].status);
      expect(emu.meterEventCount(identifier)).toBe(1);
    });

    it('uses v1 automatically when the stream endpoint does not exist', async () => {
      const customer = await newCustomer('usage-fallback');
      const warnings: string[] = [];
      // A 404 on /v2 is what a server without the v2 API (stripe-mock, an old proxy) answers.
      const proxy = await startRecordingProxy(emu.url, ({ path }) =>
        path.startsWith('/v2/') ? { status: 404, body: { error: { type: 'invalid_request_error', message: 'Unrecognized request URL' } } } : undefined,
      );
      try {
        const noV2 = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: proxy.url, maxNetworkRetries: 0, logger: { warn: (_o, msg) => warnings.push(msg ?? '') } });
        const send = (identifier: string) =>
          noV2.sendMeterEvents([{ eventName: meter.eventName, stripeCustomerId: customer.id, value: 1, identifier, timestamp: new Date() }]);
        const first = randomUUID();
        const result = await send(first);
        expect(result.transport).toBe('v1');
        expect(result.outcomes[0].status).toBe('accepted');
        expect(emu.meterEventCount(first)).toBe(1);
        expect(warnings).toContain('Meter event stream unavailable, using v1 meter events');
        // The gateway remembers: later batches go straight to v1.
        expect((await send(randomUUID())).transport).toBe('v1');
        expect(proxy.requests.filter((r) => r.path.startsWith('/v2/'))).toHaveLength(1);
      } finally {
        await proxy.close();
      }
    });

    it('renews the stream session when Stripe says it expired, and before it runs out', async () => {
      const customer = await newCustomer('usage-session');
      let expireNext = true;
      const proxy = await startRecordingProxy(emu.url, ({ path }) => {
        if (path !== '/v2/billing/meter_event_stream' || !expireNext) return undefined;
        expireNext = false;
        return { status: 401, body: { error: { type: 'temporary_session_expired', code: 'billing_meter_event_session_expired', message: 'The meter event session has expired.' } } };
      });
      try {
        const streaming = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: proxy.url, maxNetworkRetries: 0 });
        const event = () => ({ eventName: meter.eventName, stripeCustomerId: customer.id, value: 1, identifier: randomUUID(), timestamp: new Date() });
        const sessions = () => proxy.requests.filter((r) => r.path === '/v2/billing/meter_event_session').length;
        const first = event();
        expect((await streaming.sendMeterEvents([first])).outcomes[0].status).toBe('accepted');
        expect(sessions()).toBe(2);
        expect(emu.meterEventCount(first.identifier)).toBe(1);
        await streaming.sendMeterEvents([event()]);
        expect(sessions()).toBe(2);
        // A session within a minute of its end is replaced before use.
        const cached = (streaming as unknown as { meterSession: { expiresAt: number } }).meterSession;
        cached.expiresAt = Date.now() + 30_000;
        await streaming.sendMeterEvents([event()]);
        expect(sessions()).toBe(3);
      } finally {
        await proxy.close();
      }
    });

    it('resends a rejected stream batch one by one to find the bad events', async () => {
      const customer = await newCustomer('usage-invalid');
      const proxy = await startRecordingProxy(emu.url, ({ path }) =>
        path === '/v2/billing/meter_event_stream'
          ? { status: 400, body: { error: { type: 'invalid_request_error', code: 'invalid_fields', message: 'events[1] is invalid' } } }
          : undefined,
      );
      try {
        const streaming = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: proxy.url, maxNetworkRetries: 0 });
        const good = { eventName: meter.eventName, stripeCustomerId: customer.id, value: 1, identifier: randomUUID(), timestamp: new Date() };
        const bad = { ...good, identifier: randomUUID(), stripeCustomerId: '' };
        const result = await streaming.sendMeterEvents([good, bad]);
        expect(result.outcomes[0]).toEqual({ identifier: good.identifier, status: 'accepted', retryable: false });
        expect(result.outcomes[1]).toMatchObject({ identifier: bad.identifier, status: 'failed', retryable: false, error: { code: ErrorCode.BAD_USER_INPUT } });
        expect(emu.meterEventCount(good.identifier)).toBe(1);
        expect(emu.meterEventCount(bad.identifier)).toBe(0);
      } finally {
        await proxy.close();
      }
    });

    it('reports failures per event instead of throwing when Stripe is down', async () => {
      const customer = await newCustomer('usage-down');
      const fragile = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: emu.url, maxNetworkRetries: 0 });
      await addFault({ status: 500, count: 1, path: '/v2/billing/meter_event_s' });
      const identifier = randomUUID();
      const result = await fragile.sendMeterEvents([{ eventName: meter.eventName, stripeCustomerId: customer.id, value: 1, identifier, timestamp: new Date() }]);
      expect(result.outcomes[0]).toMatchObject({ identifier, status: 'failed', retryable: true, error: { code: ErrorCode.PAYMENT_PROVIDER_ERROR } });
    });
  });

  describe('webhooks', () => {
    let receiver: http.Server;
    let receiverUrl: string;
    const deliveries: Array<{ body: Buffer; signature: string }> = [];

    beforeAll(async () => {
      receiver = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          deliveries.push({ body: Buffer.concat(chunks), signature: String(req.headers['stripe-signature'] ?? '') });
          res.writeHead(200).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/stripe`;
      emu.addWebhookEndpoint({ url: receiverUrl, secret: WEBHOOK_SECRET });
    });

    afterAll(async () => {
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    });

    async function deliveryFor(customerId: string) {
      for (let i = 0; i < 100; i++) {
        const found = deliveries.find((d) => d.body.toString('utf8').includes(customerId) && d.body.toString('utf8').includes('"customer.created"'));
        if (found) return found;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error('no webhook delivery for ' + customerId);
    }

    it('verifies an event delivered by the emulator, and retrieves it by id', async () => {
      const customer = await newCustomer('webhook');
      const delivery = await deliveryFor(customer.id);
      const event = gateway.constructWebhookEvent(delivery.body, delivery.signature);
      expect(event).toMatchObject({ type: 'customer.created', livemode: false });
      expect(event.object.id).toBe(customer.id);
      expect(event.payload.id).toBe(event.id);
      const again = await gateway.retrieveEvent(event.id);
      expect(again).toMatchObject({ id: event.id, type: 'customer.created' });
      await expectBillingError(gateway.retrieveEvent('evt_missing'), ErrorCode.NOT_FOUND);
    });

    it('rejects a tampered body, a wrong secret, a stale timestamp and a missing header', async () => {
      const customer = await newCustomer('webhook-bad');
      const delivery = await deliveryFor(customer.id);
      const tampered = Buffer.from(delivery.body.toString('utf8').replace('webhook-bad@example.com', 'evil@example.com'));
      expect(() => gateway.constructWebhookEvent(tampered, delivery.signature)).toThrow(WebhookSignatureError);

      const wrongSecret = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: emu.url, webhookSecret: 'whsec_not_the_one' });
      expect(() => wrongSecret.constructWebhookEvent(delivery.body, delivery.signature)).toThrow(WebhookSignatureError);

      // A correctly signed payload whose timestamp is older than the 300 s tolerance.
      const old = Math.floor(Date.now() / 1000) - 301;
      const signature = createHmac('sha256', WEBHOOK_SECRET).update(`${old}.${delivery.body.toString('utf8')}`).digest('hex');
      let stale: unknown;
      try {
        gateway.constructWebhookEvent(delivery.body, `t=${old},v1=${signature}`);
      } catch (error) {
        stale = error;
      }
      expect(stale).toBeInstanceOf(WebhookSignatureError);
      expect((stale as WebhookSignatureError).message).toMatch(/too old/);

      expect(() => gateway.constructWebhookEvent(delivery.body, undefined)).toThrow(WebhookSignatureError);
      expect(() => gateway.constructWebhookEvent(delivery.body, '')).toThrow(WebhookSignatureError);
    });

    it('rejects a correctly signed body that is not an event', () => {
      const body = 'not json';
      const t = Math.floor(Date.now() / 1000);
      const signature = createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${body}`).digest('hex');
      try {
        gateway.constructWebhookEvent(body, `t=${t},v1=${signature}`);
        throw new Error('expected an error');
      } catch (error) {
        expect(error).toBeInstanceOf(WebhookSignatureError);
        expect((error as WebhookSignatureError).reason).toBe('invalid_payload');
      }
    });

    it('refuses to verify without a configured webhook secret', () => {
      const noSecret = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: emu.url });
      try {
        noSecret.constructWebhookEvent('{}', 't=1,v1=x');
        throw new Error('expected an error');
      } catch (error) {
        expect(error).not.toBeInstanceOf(WebhookSignatureError);
        expect((error as BillingError).code).toBe(ErrorCode.INTERNAL_SERVER_ERROR);
      }
    });
  });

  describe('faults', () => {
    let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
    let viaProxy: StripeSdkGateway;

    beforeAll(async () => {
      proxy = await startRecordingProxy(emu.url);
      viaProxy = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: proxy.url, maxNetworkRetries: 2, timeoutMs: 5_000 });
    });

    afterAll(async () => {
      await proxy.close();
    });

    it('retries 429 answers with the same idempotency key and creates one customer', async () => {
      const userId = `user-429-${randomUUID()}`;
      const k = key('customer.create', userId);
      await addFault({ status: 429, count: 2, path: '/v1/customers', method: 'POST' });
      const customer = await viaProxy.createCustomer({ userId, email: 'rl@example.com', idempotencyKey: k });
      const attempts = proxy.requests.filter((r) => r.idempotencyKey === k);
      expect(attempts.map((r) => r.status)).toEqual([429, 429, 200]);
      const matching = (await rawList('/v1/customers?limit=100&email=rl@example.com')).filter((c) => (c.metadata as Record<string, string>)?.tollgate_user_id === userId);
      expect(matching.map((c) => c.id)).toEqual([customer.id]);
    });

    it('retries 500 answers with the same idempotency key and creates one subscription', async () => {
      const customer = await newCustomer('faults-500');
      const k = key('subscription.create', customer.id);
      await addFault({ status: 500, count: 2, path: '/v1/subscriptions', method: 'POST' });
      const created = await viaProxy.createSubscription({ customerId: customer.id, items: [{ priceId: monthly.id }], idempotencyKey: k });
      expect(proxy.requests.filter((r) => r.idempotencyKey === k).map((r) => r.status)).toEqual([500, 500, 200]);
      expect((await gateway.listSubscriptions(customer.id)).map((s) => s.id)).toEqual([created.subscription.id]);
    });

    it('creates one object when a timed-out request is retried and the first one still lands', async () => {
      const slow = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: proxy.url, maxNetworkRetries: 1, timeoutMs: 300 });
      const userId = `user-timeout-${randomUUID()}`;
      const k = key('customer.create', userId);
      await addFault({ delayMs: 500, count: 1, path: '/v1/customers', method: 'POST' });
      const customer = await slow.createCustomer({ userId, email: 'slow@example.com', idempotencyKey: k });
      expect(proxy.requests.filter((r) => r.idempotencyKey === k).length).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 400));
      const matching = (await rawList('/v1/customers?limit=100&email=slow@example.com')).filter((c) => (c.metadata as Record<string, string>)?.tollgate_user_id === userId);
      expect(matching.map((c) => c.id)).toEqual([customer.id]);
    });

    it('also retries a 429 that does not carry Stripe-Should-Retry, with the same key', async () => {
      let limited = 2;
      const strict = await startRecordingProxy(emu.url, ({ method, path }) => {
        if (method !== 'POST' || path !== '/v1/customers' || limited === 0) return undefined;
        limited--;
        return { status: 429, body: { error: { type: 'rate_limit_error', code: 'rate_limit', message: 'Too many requests' } } };
      });
      try {
        const limitedGateway = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: strict.url, maxNetworkRetries: 2 });
        const k = key('customer.create', 'strict-429');
        await limitedGateway.createCustomer({ userId: 'u-strict', idempotencyKey: k });
        expect(strict.requests.filter((r) => r.idempotencyKey === k).map((r) => r.status)).toEqual([429, 429, 200]);
      } finally {
        await strict.close();
      }
    });

    it('gives up after the configured retries with a retryable PAYMENT_PROVIDER_ERROR', async () => {
      await addFault({ status: 500, count: 3, path: '/v1/customers', method: 'POST' });
      const error = await expectBillingError(viaProxy.createCustomer({ userId: 'u-down', idempotencyKey: key('customer.create', 'down') }), ErrorCode.PAYMENT_PROVIDER_ERROR);
      expect(error.details.retryable).toBe(true);
    });

    it('maps a refused connection to PAYMENT_PROVIDER_ERROR without the key in the message', async () => {
      const closed = http.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const unreachable = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: `http://127.0.0.1:${port}`, maxNetworkRetries: 0 });
      const error = await expectBillingError(unreachable.retrieveCustomer('cus_1'), ErrorCode.PAYMENT_PROVIDER_ERROR);
      expect(error.details.retryable).toBe(true);
      expect(error.message).not.toContain(SECRET_KEY);
    });

    it('maps a timeout to PAYMENT_PROVIDER_ERROR', async () => {
      const impatient = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: emu.url, maxNetworkRetries: 0, timeoutMs: 100 });
      await addFault({ delayMs: 400, count: 1, path: '/v1/customers/cus_timeout' });
      await expectBillingError(impatient.retrieveCustomer('cus_timeout'), ErrorCode.PAYMENT_PROVIDER_ERROR);
    });

    it('maps a rejected key to PAYMENT_PROVIDER_ERROR and never echoes the key', async () => {
      const badKey = 'sk_live_this_key_is_not_accepted_by_the_emulator';
      const logged: object[] = [];
      const wrong = new StripeSdkGateway({ secretKey: badKey, apiBase: emu.url, maxNetworkRetries: 0, logger: { warn: (o) => logged.push(o) } });
      const error = await expectBillingError(wrong.retrieveCustomer('cus_1'), ErrorCode.PAYMENT_PROVIDER_ERROR);
      expect(error.message).not.toContain(badKey);
      expect(JSON.stringify(error.details)).not.toContain(badKey);
      expect(String((error as { cause?: Error }).cause?.message)).not.toContain(badKey);
      expect(JSON.stringify(logged)).not.toContain(badKey);
      expect(logged.length).toBeGreaterThan(0);
    });
  });
});
