import { randomUUID } from 'node:crypto';
import { startEmulator } from '../../src/emulator';
import { ErrorCode, BillingError } from '../../src/common/errors';
import { idempotencyKey } from '../../src/stripe/idempotency';
import { StripeSdkGateway } from '../../src/stripe/stripe-sdk.gateway';
import type { PriceSnapshot } from '../../src/stripe/stripe.gateway';
import { changeClientSecret, toInvoicePreviewSnapshot, toScheduleSnapshot } from '../../src/stripe/subscription-change.mappers';
import { toPendingUpdateSnapshot } from '../../src/stripe/stripe.mappers';

/*
 * The gateway's plan-change calls through the real SDK over HTTP against the emulator, and the
 * pure mappers behind them.
 */
type Emulator = Awaited<ReturnType<typeof startEmulator>>;
const SECRET_KEY = 'sk_test_tollgate_change_calls';
const key = (scope: string) => idempotencyKey(scope, randomUUID());

let emu: Emulator;
let gateway: StripeSdkGateway;
let small: PriceSnapshot;
let big: PriceSnapshot;
let metered: PriceSnapshot;

beforeAll(async () => {
  emu = await startEmulator({ port: 0 });
  gateway = new StripeSdkGateway({ secretKey: SECRET_KEY, apiBase: emu.url, maxNetworkRetries: 0 });
  const product = await gateway.createProduct({ name: 'Plan', idempotencyKey: key('product') });
  const meter = await gateway.createMeter({ eventName: 'calls_change', displayName: 'Calls', aggregation: 'sum', idempotencyKey: key('meter') });
  small = await gateway.createPrice({ productId: product.id, currency: 'usd', unitAmount: 1000, recurring: { interval: 'month' }, idempotencyKey: key('price') });
  big = await gateway.createPrice({ productId: product.id, currency: 'usd', unitAmount: 5000, recurring: { interval: 'month' }, idempotencyKey: key('price') });
  metered = await gateway.createPrice({
    productId: product.id,
    currency: 'usd',
    unitAmount: 2,
    recurring: { interval: 'month', usageType: 'metered', meterId: meter.id },
    idempotencyKey: key('price'),
  });
});
afterAll(() => emu.close());

/** A customer whose default card works, or fails with `card`. */
async function activeSubscription(card = 'pm_card_visa') {
  const customer = await gateway.createCustomer({ userId: randomUUID(), idempotencyKey: key('customer') });
  const auth = { authorization: `Bearer ${SECRET_KEY}`, 'content-type': 'application/x-www-form-urlencoded' };
  // As on Stripe: attach the card, then make it the customer's default (customer updates take no `payment_method`).
  const visa = (await (await fetch(`${emu.url}/v1/payment_methods/pm_card_visa/attach`, { method: 'POST', headers: auth, body: `customer=${customer.id}` })).json()) as { id: string };
  const updated = await fetch(`${emu.url}/v1/customers/${customer.id}`, {
    method: 'POST',
    headers: auth,
    body: `invoice_settings[default_payment_method]=${visa.id}`,
  });
  expect(updated.status).toBe(200);
  const created = await gateway.createSubscription({
    customerId: customer.id,
    items: [{ priceId: small.id, quantity: 1 }, { priceId: metered.id }],
    paymentBehavior: 'allow_incomplete',
    idempotencyKey: key('subscription'),
  });
  if (card !== 'pm_card_visa') {
    const pm = (await (await fetch(`${emu.url}/v1/payment_methods/${card}/attach`, { method: 'POST', headers: auth, body: `customer=${customer.id}` })).json()) as { id: string };
    await fetch(`${emu.url}/v1/subscriptions/${created.subscription.id}`, { method: 'POST', headers: auth, body: `default_payment_method=${pm.id}` });
  }
  return created.subscription;
}

describe('SubscriptionChangeCalls (through StripeSdkGateway)', () => {
  it('changes several items in one update, deletions included, once per idempotency key', async () => {
    const sub = await activeSubscription();
    const licensed = sub.items.find((i) => i.price.id === small.id)!;
    const meteredItem = sub.items.find((i) => i.price.id === metered.id)!;
    const input = {
      id: sub.id,
      items: [{ itemId: licensed.id, priceId: big.id, quantity: 2 }, { itemId: meteredItem.id, deleted: true }],
      prorationBehavior: 'always_invoice' as const,
      paymentBehavior: 'error_if_incomplete' as const,
      idempotencyKey: key('change'),
    };
    const changed = await gateway.changeSubscriptionItems(input);
    expect(changed.subscription.items.map((i) => [i.price.id, i.quantity])).toEqual([[big.id, 2]]);
    expect(changed.clientSecret).toBeNull();
    const again = await gateway.changeSubscriptionItems(input);
    expect(again.subscription.latestInvoiceId).toBe(changed.subscription.latestInvoiceId);
  });

  it('answers a pending update with its client secret when the card is declined', async () => {
    const sub = await activeSubscription('pm_card_chargeCustomerFail');
    const licensed = sub.items.find((i) => i.price.id === small.id)!;
    const changed = await gateway.changeSubscriptionItems({
      id: sub.id,
      items: [{ itemId: licensed.id, priceId: big.id }],
      prorationBehavior: 'always_invoice',
      paymentBehavior: 'pending_if_incomplete',
      idempotencyKey: key('change'),
    });
    expect(changed.clientSecret).toMatch(/_secret_/);
    expect(changed.subscription.pendingUpdate?.items.map((i) => i.priceId).sort()).toEqual([big.id, metered.id].sort());
    expect(changed.subscription.items.map((i) => i.price.id)).toContain(small.id);
  });

  it('previews the change now and the recurring invoice after it, storing nothing', async () => {
    const sub = await activeSubscription();
    const licensed = sub.items.find((i) => i.price.id === small.id)!;
    const items = [{ itemId: licensed.id, priceId: big.id, quantity: 1 }];
    const base = { customerId: sub.customerId, subscriptionId: sub.id, items, prorationBehavior: 'always_invoice' as const };
    const now = await gateway.previewSubscriptionInvoice(base);
    expect(now.billingReason).toBe('subscription_update');
    expect(now.lines.every((l) => l.proration)).toBe(true);
    expect(now.amountDue).toBe(now.lines.reduce((s, l) => s + l.amount, 0));
    const recurring = await gateway.previewSubscriptionInvoice({ ...base, previewMode: 'recurring' });
    expect(recurring.amountDue).toBe(5000);
    expect((await gateway.listInvoices({ customerId: sub.customerId })).data).toHaveLength(1);
  });

  it('creates a schedule from a subscription, replaces its phases, releases it', async () => {
    const sub = await activeSubscription();
    const schedule = await gateway.createScheduleFromSubscription({ subscriptionId: sub.id, idempotencyKey: key('schedule') });
    expect(schedule).toMatchObject({ status: 'active', subscriptionId: sub.id, customerId: sub.customerId });
    const end = sub.items[0].currentPeriodEnd!;
    const updated = await gateway.updateSchedulePhases({
      id: schedule.id,
      phases: [
        { items: [{ priceId: small.id, quantity: 1 }, { priceId: metered.id }], startDate: schedule.currentPhase!.startDate, endDate: end },
        { items: [{ priceId: big.id, quantity: 1 }], startDate: end, duration: { interval: 'month', intervalCount: 1 } },
      ],
      endBehavior: 'release',
      idempotencyKey: key('phases'),
    });
    expect(updated.phases.map((p) => p.items.map((i) => i.priceId))).toEqual([[small.id, metered.id], [big.id]]);
    expect(updated.phases[1].startDate).toEqual(end);
    expect((await gateway.retrieveSubscription(sub.id)).scheduleId).toBe(schedule.id);
    const released = await gateway.releaseSchedule({ id: schedule.id, idempotencyKey: key('release') });
    expect(released).toMatchObject({ status: 'released', currentPhase: null });
    expect((await gateway.retrieveSchedule(schedule.id)).status).toBe('released');
    const notFound = await gateway.retrieveSchedule('sub_sched_missing').catch((e) => e);
    expect(notFound).toBeInstanceOf(BillingError);
    expect(notFound.code).toBe(ErrorCode.NOT_FOUND);
  });
});

describe('plan change mappers', () => {
  it('maps a schedule, ids or expanded objects alike', () => {
    const s = toScheduleSnapshot({
      id: 'sub_sched_1',
      object: 'subscription_schedule',
      subscription: { id: 'sub_1' },
      customer: 'cus_1',
      status: 'active',
      end_behavior: 'release',
      current_phase: { start_date: 100, end_date: 200 },
      phases: [{ start_date: 100, end_date: 200, items: [{ price: { id: 'price_1' }, quantity: 2 }, { price: 'price_m' }] }],
      created: 50,
    } as never);
    expect(s).toEqual({
      id: 'sub_sched_1',
      subscriptionId: 'sub_1',
      customerId: 'cus_1',
      status: 'active',
      endBehavior: 'release',
      currentPhase: { startDate: new Date(100_000), endDate: new Date(200_000) },
      phases: [{ startDate: new Date(100_000), endDate: new Date(200_000), items: [{ priceId: 'price_1', quantity: 2 }, { priceId: 'price_m', quantity: null }] }],
      createdAt: new Date(50_000),
    });
  });

  it('maps preview lines with their proration flag and drops non-integer amounts', () => {
    const p = toInvoicePreviewSnapshot({
      billing_reason: 'subscription_update',
      currency: 'USD',
      amount_due: 12.5,
      total: 100,
      lines: { data: [{ amount: -50, description: 'Unused', quantity: 1, parent: { subscription_item_details: { proration: true } }, period: { start: 1, end: 2 } }] },
    } as never);
    expect(p).toMatchObject({ currency: 'usd', amountDue: 0, total: 100, lines: [{ amount: -50, proration: true, periodStart: new Date(1000) }] });
  });

  it('gives the client secret only while a change waits for the customer', () => {
    const invoice = { status: 'open', confirmation_secret: { client_secret: 'pi_1_secret_x' } };
    expect(changeClientSecret({ status: 'active', pending_update: { expires_at: 1 }, latest_invoice: invoice } as never)).toBe('pi_1_secret_x');
    expect(changeClientSecret({ status: 'active', pending_update: null, latest_invoice: invoice } as never)).toBeNull();
    expect(changeClientSecret({ status: 'past_due', pending_update: null, latest_invoice: { ...invoice, status: 'paid' } } as never)).toBeNull();
    expect(toPendingUpdateSnapshot(null)).toBeNull();
    expect(toPendingUpdateSnapshot({ expires_at: 10, subscription_items: [{ price: { id: 'price_2' }, quantity: 3 }] } as never)).toEqual({
      items: [{ priceId: 'price_2', quantity: 3 }],
      expiresAt: new Date(10_000),
    });
  });
});
