import type Stripe from 'stripe';
import {
  idOf,
  subscriptionClientSecret,
  toBillingPortalSessionSnapshot,
  toCheckoutSessionSnapshot,
  toCustomerSnapshot,
  toEventSnapshot,
  toInvoiceSnapshot,
  toMeterSnapshot,
  toObjectSnapshot,
  toPriceSnapshot,
  toProductSnapshot,
  toSubscriptionSnapshot,
} from '../../src/stripe/stripe.mappers';
import {
  at,
  checkoutSessionFixture,
  invoiceFixture,
  priceFixture,
  productFixture,
  subscriptionFixture,
  subscriptionItemFixture,
  T0,
} from './stripe-fixtures';

describe('stripe.mappers', () => {
  describe('idOf', () => {
    it('reads ids from strings and expanded objects', () => {
      expect(idOf('cus_1')).toBe('cus_1');
      expect(idOf({ id: 'cus_2' })).toBe('cus_2');
      expect(idOf(null)).toBeNull();
      expect(idOf(undefined)).toBeNull();
    });
  });

  describe('toCustomerSnapshot', () => {
    it('maps the app user id from metadata', () => {
      const customer = {
        id: 'cus_1',
        object: 'customer',
        email: 'a@example.com',
        name: 'Ada',
        metadata: { tollgate_user_id: 'user-1' },
        livemode: false,
        created: T0,
      } as unknown as Stripe.Customer;
      expect(toCustomerSnapshot(customer)).toEqual({
        id: 'cus_1',
        email: 'a@example.com',
        name: 'Ada',
        userId: 'user-1',
        metadata: { tollgate_user_id: 'user-1' },
        livemode: false,
        deleted: false,
        createdAt: at(T0),
      });
    });

    it('flags deleted customers', () => {
      const snapshot = toCustomerSnapshot({ id: 'cus_1', object: 'customer', deleted: true } as Stripe.DeletedCustomer);
      expect(snapshot).toMatchObject({ id: 'cus_1', deleted: true, userId: null });
    });
  });

  describe('toProductSnapshot', () => {
    it('maps a product and ignores unknown fields', () => {
      expect(toProductSnapshot(productFixture())).toEqual({
        id: 'prod_starter',
        name: 'Starter',
        description: 'For small teams',
        active: true,
        metadata: { plan_code: 'starter' },
        livemode: false,
        deleted: false,
        createdAt: at(T0),
        updatedAt: at(T0 + 60),
      });
    });

    it('treats a deleted product stub as inactive', () => {
      const snapshot = toProductSnapshot({ id: 'prod_x', object: 'product', deleted: true } as Stripe.DeletedProduct);
      expect(snapshot).toMatchObject({ id: 'prod_x', active: false, deleted: true, name: '' });
    });
  });

  describe('toPriceSnapshot', () => {
    it('maps a recurring licensed price with the product as an id', () => {
      expect(toPriceSnapshot(priceFixture())).toEqual({
        id: 'price_starter_month',
        productId: 'prod_starter',
        product: null,
        active: true,
        currency: 'usd',
        unitAmount: 1900,
        lookupKey: 'starter_monthly',
        nickname: null,
        type: 'recurring',
        recurring: { interval: 'month', intervalCount: 1, usageType: 'licensed', meterId: null },
        metadata: {},
        livemode: false,
        deleted: false,
        createdAt: at(T0),
      });
    });

    it('maps an expanded product', () => {
      const snapshot = toPriceSnapshot(priceFixture({ product: productFixture() }));
      expect(snapshot.productId).toBe('prod_starter');
      expect(snapshot.product).toMatchObject({ id: 'prod_starter', name: 'Starter' });
    });

    it('maps a metered price with its meter', () => {
      const snapshot = toPriceSnapshot(
        priceFixture({
          id: 'price_api_calls',
          unit_amount: 2,
          recurring: { interval: 'month', interval_count: 1, meter: 'mtr_1', trial_period_days: null, usage_type: 'metered' },
        }),
      );
      expect(snapshot.recurring).toEqual({ interval: 'month', intervalCount: 1, usageType: 'metered', meterId: 'mtr_1' });
      expect(snapshot.unitAmount).toBe(2);
    });

    it('maps a one-time price', () => {
      const snapshot = toPriceSnapshot(priceFixture({ type: 'one_time', recurring: null, unit_amount: 49900 }));
      expect(snapshot).toMatchObject({ type: 'one_time', recurring: null, unitAmount: 49900 });
    });

    it('leaves unitAmount null for prices without a flat amount', () => {
      expect(toPriceSnapshot(priceFixture({ unit_amount: null })).unitAmount).toBeNull();
    });
  });

  describe('toMeterSnapshot', () => {
    it('maps the aggregation and payload keys', () => {
      const meter = {
        id: 'mtr_1',
        object: 'billing.meter',
        created: T0,
        updated: T0,
        customer_mapping: { event_payload_key: 'stripe_customer_id', type: 'by_id' },
        default_aggregation: { formula: 'sum' },
        display_name: 'API calls',
        event_name: 'api_calls',
        event_time_window: null,
        livemode: false,
        status: 'active',
        status_transitions: { deactivated_at: null },
        value_settings: { event_payload_key: 'value' },
      } as unknown as Stripe.Billing.Meter;
      expect(toMeterSnapshot(meter)).toEqual({
        id: 'mtr_1',
        eventName: 'api_calls',
        displayName: 'API calls',
        aggregation: 'sum',
        status: 'active',
        customerPayloadKey: 'stripe_customer_id',
        valuePayloadKey: 'value',
        livemode: false,
        createdAt: at(T0),
        updatedAt: at(T0),
      });
    });
  });

  describe('toSubscriptionSnapshot', () => {
    it('takes the billing period from the items', () => {
      const snapshot = toSubscriptionSnapshot(subscriptionFixture());
      expect(snapshot).toMatchObject({
        id: 'sub_1',
        customerId: 'cus_1',
        status: 'active',
        currentPeriodStart: at(T0),
        currentPeriodEnd: at(T0 + 31 * 86_400),
        cancelAtPeriodEnd: false,
        latestInvoiceId: 'in_1',
        metadata: { tollgate_subscription_id: 'row-1' },
        createdAt: at(T0),
      });
      expect(snapshot.items).toEqual([
        {
          id: 'si_1',
          price: expect.objectContaining({ id: 'price_starter_month', unitAmount: 1900 }),
          quantity: 1,
          currentPeriodStart: at(T0),
          currentPeriodEnd: at(T0 + 31 * 86_400),
        },
      ]);
    });

    it('spans all items when a licensed and a metered item are present', () => {
      const metered = subscriptionItemFixture({
        id: 'si_2',
        quantity: undefined,
        current_period_start: T0 - 10,
        current_period_end: T0 + 40 * 86_400,
        price: priceFixture({
          id: 'price_metered',
          recurring: { interval: 'month', interval_count: 1, meter: 'mtr_1', trial_period_days: null, usage_type: 'metered' },
        }),
      });
      const snapshot = toSubscriptionSnapshot(
        subscriptionFixture({ items: { object: 'list', data: [subscriptionItemFixture(), metered], has_more: false } }),
      );
      expect(snapshot.items[1].quantity).toBeNull();
      expect(snapshot.currentPeriodStart).toEqual(at(T0 - 10));
      expect(snapshot.currentPeriodEnd).toEqual(at(T0 + 40 * 86_400));
    });

    it('maps a trialing subscription', () => {
      const snapshot = toSubscriptionSnapshot(
        subscriptionFixture({ status: 'trialing', trial_start: T0, trial_end: T0 + 14 * 86_400 }),
      );
      expect(snapshot).toMatchObject({ status: 'trialing', trialStart: at(T0), trialEnd: at(T0 + 14 * 86_400) });
    });

    it('maps a canceled subscription and an expanded customer', () => {
      const snapshot = toSubscriptionSnapshot(
        subscriptionFixture({
          status: 'canceled',
          canceled_at: T0 + 100,
          ended_at: T0 + 100,
          customer: { id: 'cus_9', object: 'customer' },
        }),
      );
      expect(snapshot).toMatchObject({ status: 'canceled', canceledAt: at(T0 + 100), endedAt: at(T0 + 100), customerId: 'cus_9' });
    });

    it('maps a scheduled cancellation', () => {
      const snapshot = toSubscriptionSnapshot(subscriptionFixture({ cancel_at_period_end: true, cancel_at: T0 + 31 * 86_400 }));
      expect(snapshot).toMatchObject({ cancelAtPeriodEnd: true, cancelAt: at(T0 + 31 * 86_400) });
    });

    it('reads the period from the subscription in payloads older than API 2025-03-31', () => {
      const item = subscriptionItemFixture({ current_period_start: undefined, current_period_end: undefined });
      const snapshot = toSubscriptionSnapshot(
        subscriptionFixture({
          items: { object: 'list', data: [item], has_more: false },
          current_period_start: T0,
          current_period_end: T0 + 100,
        }),
      );
      expect(snapshot.currentPeriodStart).toEqual(at(T0));
      expect(snapshot.currentPeriodEnd).toEqual(at(T0 + 100));
    });
  });

  describe('subscriptionClientSecret', () => {
    it('returns the confirmation secret of an incomplete subscription whose invoice is open', () => {
      const subscription = subscriptionFixture({
        status: 'incomplete',
        latest_invoice: invoiceFixture({ confirmation_secret: { client_secret: 'pi_1_secret_x', type: 'payment_intent' } }),
      });
      expect(subscriptionClientSecret(subscription)).toBe('pi_1_secret_x');
      expect(toSubscriptionSnapshot(subscription).latestInvoiceId).toBe('in_1');
    });

    it('returns null when the invoice is paid, not expanded, or the subscription is trialing', () => {
      const secret = { client_secret: 'pi_1_secret_x', type: 'payment_intent' };
      expect(
        subscriptionClientSecret(
          subscriptionFixture({ status: 'active', latest_invoice: invoiceFixture({ status: 'paid', confirmation_secret: secret }) }),
        ),
      ).toBeNull();
      expect(subscriptionClientSecret(subscriptionFixture({ status: 'incomplete', latest_invoice: 'in_1' }))).toBeNull();
      expect(
        subscriptionClientSecret(
          subscriptionFixture({ status: 'trialing', latest_invoice: invoiceFixture({ status: 'paid', amount_due: 0 }) }),
        ),
      ).toBeNull();
    });
  });

  describe('toInvoiceSnapshot', () => {
    it('takes the subscription from parent.subscription_details', () => {
      expect(toInvoiceSnapshot(invoiceFixture())).toEqual({
        id: 'in_1',
        customerId: 'cus_1',
        subscriptionId: 'sub_1',
        status: 'open',
        number: 'TG-0001',
        currency: 'usd',
        amountDue: 1900,
        amountPaid: 0,
        amountRemaining: 1900,
        subtotal: 1900,
        total: 1900,
        hostedInvoiceUrl: 'https://invoice.example/in_1',
        invoicePdf: 'https://invoice.example/in_1.pdf',
        billingReason: 'subscription_create',
        periodStart: at(T0),
        periodEnd: at(T0),
        paidAt: null,
        attemptCount: 0,
        nextPaymentAttempt: null,
        clientSecret: null,
        livemode: false,
        createdAt: at(T0),
      });
    });

    it('maps the retry schedule of a failed payment', () => {
      const snapshot = toInvoiceSnapshot(invoiceFixture({ attempt_count: 2, next_payment_attempt: T0 + 5 * 86_400 }));
      expect(snapshot).toMatchObject({ attemptCount: 2, nextPaymentAttempt: at(T0 + 5 * 86_400) });
    });

    it('maps a paid invoice with an expanded subscription', () => {
      const snapshot = toInvoiceSnapshot(
        invoiceFixture({
          status: 'paid',
          amount_paid: 1900,
          amount_remaining: 0,
          status_transitions: { finalized_at: T0, marked_uncollectible_at: null, paid_at: T0 + 5, voided_at: null },
          parent: { type: 'subscription_details', quote_details: null, subscription_details: { metadata: {}, subscription: subscriptionFixture() } },
        }),
      );
      expect(snapshot).toMatchObject({ status: 'paid', subscriptionId: 'sub_1', amountPaid: 1900, paidAt: at(T0 + 5) });
    });

    it('has no subscription for a one-off invoice', () => {
      expect(toInvoiceSnapshot(invoiceFixture({ parent: null })).subscriptionId).toBeNull();
    });
  });

  describe('toCheckoutSessionSnapshot', () => {
    it('maps an open session', () => {
      expect(toCheckoutSessionSnapshot(checkoutSessionFixture())).toEqual({
        id: 'cs_test_1',
        url: 'https://checkout.example/cs_test_1',
        status: 'open',
        mode: 'subscription',
        paymentStatus: 'unpaid',
        customerId: 'cus_1',
        subscriptionId: null,
        subscription: null,
        clientReferenceId: 'user-1',
        metadata: { tollgate_price_id: 'p1' },
        amountTotal: 1900,
        currency: 'usd',
        expiresAt: at(T0 + 86_400),
        livemode: false,
        createdAt: at(T0),
      });
    });

    it('maps a completed session with the subscription as id or expanded', () => {
      const asId = toCheckoutSessionSnapshot(
        checkoutSessionFixture({ status: 'complete', payment_status: 'paid', url: null, subscription: 'sub_1' }),
      );
      expect(asId).toMatchObject({ status: 'complete', paymentStatus: 'paid', url: null, subscriptionId: 'sub_1', subscription: null });
      const expandedSession = toCheckoutSessionSnapshot(
        checkoutSessionFixture({ status: 'complete', subscription: subscriptionFixture(), customer: { id: 'cus_1', object: 'customer' } }),
      );
      expect(expandedSession.subscriptionId).toBe('sub_1');
      expect(expandedSession.subscription).toMatchObject({ id: 'sub_1', status: 'active' });
      expect(expandedSession.customerId).toBe('cus_1');
    });

    it('maps a payment-mode session', () => {
      expect(toCheckoutSessionSnapshot(checkoutSessionFixture({ mode: 'payment' })).mode).toBe('payment');
    });
  });

  describe('toBillingPortalSessionSnapshot', () => {
    it('maps the url and customer', () => {
      const session = {
        id: 'bps_1',
        object: 'billing_portal.session',
        customer: 'cus_1',
        url: 'https://portal.example/bps_1',
        return_url: 'https://app.example/account',
        created: T0,
      } as unknown as Stripe.BillingPortal.Session;
      expect(toBillingPortalSessionSnapshot(session)).toEqual({
        id: 'bps_1',
        url: 'https://portal.example/bps_1',
        customerId: 'cus_1',
        returnUrl: 'https://app.example/account',
        createdAt: at(T0),
      });
    });
  });

  describe('toObjectSnapshot and toEventSnapshot', () => {
    it('maps event objects by their object type', () => {
      expect(toObjectSnapshot(subscriptionFixture() as unknown as Record<string, unknown>).kind).toBe('subscription');
      expect(toObjectSnapshot(invoiceFixture() as unknown as Record<string, unknown>).kind).toBe('invoice');
      expect(toObjectSnapshot(checkoutSessionFixture() as unknown as Record<string, unknown>).kind).toBe('checkout.session');
      expect(toObjectSnapshot(priceFixture() as unknown as Record<string, unknown>).kind).toBe('price');
      expect(toObjectSnapshot(productFixture() as unknown as Record<string, unknown>).kind).toBe('product');
      expect(toObjectSnapshot({ object: 'charge', id: 'ch_1' })).toEqual({ kind: 'other', objectType: 'charge', id: 'ch_1' });
    });

    it('keeps the payload as plain JSON and exposes routing fields', () => {
      const event = {
        id: 'evt_1',
        object: 'event',
        api_version: '2026-10-28.endive',
        created: T0,
        livemode: false,
        type: 'customer.subscription.updated',
        data: { object: subscriptionFixture(), previous_attributes: { cancel_at_period_end: false } },
        pending_webhooks: 1,
        request: { id: null, idempotency_key: null },
      } as unknown as Stripe.Event;
      const snapshot = toEventSnapshot(event);
      expect(snapshot).toMatchObject({
        id: 'evt_1',
        type: 'customer.subscription.updated',
        livemode: false,
        apiVersion: '2026-10-28.endive',
        createdAt: at(T0),
        previousAttributes: { cancel_at_period_end: false },
      });
      expect(snapshot.object.id).toBe('sub_1');
      expect(JSON.parse(JSON.stringify(snapshot.payload))).toEqual(snapshot.payload);
    });
  });
});
