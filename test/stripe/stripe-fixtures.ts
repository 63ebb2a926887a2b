import type Stripe from 'stripe';

/*
 * Factories for Stripe objects in the shape of the pinned API version. Only the fields the
 * mappers read are filled in; each factory takes overrides, and `extra` fields prove that
 * unknown attributes are ignored.
 */

const T0 = 1_767_225_600; // 2026-01-01T00:00:00Z
export const at = (seconds: number) => new Date(seconds * 1000);
export { T0 };

export function productFixture(overrides: Record<string, unknown> = {}): Stripe.Product {
  return {
    id: 'prod_starter',
    object: 'product',
    active: true,
    created: T0,
    updated: T0 + 60,
    name: 'Starter',
    description: 'For small teams',
    metadata: { plan_code: 'starter' },
    livemode: false,
    a_field_from_the_future: { nested: true },
    ...overrides,
  } as unknown as Stripe.Product;
}

export function priceFixture(overrides: Record<string, unknown> = {}): Stripe.Price {
  return {
    id: 'price_starter_month',
    object: 'price',
    active: true,
    created: T0,
    currency: 'usd',
    livemode: false,
    lookup_key: 'starter_monthly',
    metadata: {},
    nickname: null,
    product: 'prod_starter',
    recurring: { interval: 'month', interval_count: 1, meter: null, trial_period_days: null, usage_type: 'licensed' },
    type: 'recurring',
    unit_amount: 1900,
    unit_amount_decimal: '1900',
    ...overrides,
  } as unknown as Stripe.Price;
}

export function subscriptionItemFixture(overrides: Record<string, unknown> = {}): Stripe.SubscriptionItem {
  return {
    id: 'si_1',
    object: 'subscription_item',
    created: T0,
    current_period_start: T0,
    current_period_end: T0 + 31 * 86_400,
    metadata: {},
    price: priceFixture(),
    quantity: 1,
    subscription: 'sub_1',
    ...overrides,
  } as unknown as Stripe.SubscriptionItem;
}

export function invoiceFixture(overrides: Record<string, unknown> = {}): Stripe.Invoice {
  return {
    id: 'in_1',
    object: 'invoice',
    amount_due: 1900,
    amount_paid: 0,
    amount_remaining: 1900,
    billing_reason: 'subscription_create',
    created: T0,
    currency: 'usd',
    customer: 'cus_1',
    hosted_invoice_url: 'https://invoice.example/in_1',
    invoice_pdf: 'https://invoice.example/in_1.pdf',
    livemode: false,
    number: 'TG-0001',
    parent: {
      type: 'subscription_details',
      quote_details: null,
      subscription_details: { metadata: {}, subscription: 'sub_1' },
    },
    period_start: T0,
    period_end: T0,
    status: 'open',
    status_transitions: { finalized_at: T0, marked_uncollectible_at: null, paid_at: null, voided_at: null },
    subtotal: 1900,
    total: 1900,
    ...overrides,
  } as unknown as Stripe.Invoice;
}

export function subscriptionFixture(overrides: Record<string, unknown> = {}): Stripe.Subscription {
  return {
    id: 'sub_1',
    object: 'subscription',
    cancel_at: null,
    cancel_at_period_end: false,
    canceled_at: null,
    created: T0,
    currency: 'usd',
    customer: 'cus_1',
    ended_at: null,
    items: { object: 'list', data: [subscriptionItemFixture()], has_more: false, url: '/v1/subscription_items' },
    latest_invoice: 'in_1',
    livemode: false,
    metadata: { tollgate_subscription_id: 'row-1' },
    start_date: T0,
    status: 'active',
    trial_end: null,
    trial_start: null,
    ...overrides,
  } as unknown as Stripe.Subscription;
}

export function checkoutSessionFixture(overrides: Record<string, unknown> = {}): Stripe.Checkout.Session {
  return {
    id: 'cs_test_1',
    object: 'checkout.session',
    amount_total: 1900,
    client_reference_id: 'user-1',
    created: T0,
    currency: 'usd',
    customer: 'cus_1',
    expires_at: T0 + 86_400,
    livemode: false,
    metadata: { tollgate_price_id: 'p1' },
    mode: 'subscription',
    payment_status: 'unpaid',
    status: 'open',
    subscription: null,
    url: 'https://checkout.example/cs_test_1',
    ...overrides,
  } as unknown as Stripe.Checkout.Session;
}
