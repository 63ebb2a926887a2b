/** What the gateway answers: Stripe's objects in our terms (Dates, integer minor units, plain ids). */

import type { StripeMode } from '../config/stripe-keys';

export type { StripeMode };

export type SubscriptionStatus =
  | 'active'
  | 'canceled'
  | 'incomplete'
  | 'incomplete_expired'
  | 'past_due'
  | 'paused'
  | 'trialing'
  | 'unpaid';

export type RecurringInterval = 'day' | 'week' | 'month' | 'year';
export type UsageType = 'licensed' | 'metered';
export type MeterAggregation = 'sum' | 'count' | 'last';
export type ProrationBehavior = 'create_prorations' | 'always_invoice' | 'none';
export type PaymentBehavior =
  | 'default_incomplete'
  | 'allow_incomplete'
  | 'error_if_incomplete'
  | 'pending_if_incomplete';
export type CheckoutMode = 'subscription' | 'payment';
export type InvoiceStatus = 'draft' | 'open' | 'paid' | 'uncollectible' | 'void';

export interface CustomerSnapshot {
  id: string;
  email: string | null;
  name: string | null;
  /** Our app user id, from `metadata.tollgate_user_id` (null for customers made elsewhere). */
  userId: string | null;
  metadata: Record<string, string>;
  livemode: boolean;
  /** True when Stripe answered with a deleted-customer stub. */
  deleted: boolean;
  createdAt: Date | null;
}

export interface ProductSnapshot {
  id: string;
  name: string;
  description: string | null;
  active: boolean;
  metadata: Record<string, string>;
  livemode: boolean;
  /** True for a deleted-product stub (for example in a `product.deleted` event). */
  deleted: boolean;
  createdAt: Date | null;
  updatedAt: Date | null;
}

export interface PriceRecurring {
  interval: RecurringInterval;
  intervalCount: number;
  usageType: UsageType;
  /** The Billing Meter id of a metered price. */
  meterId: string | null;
}

export interface PriceSnapshot {
  id: string;
  productId: string;
  /** The product, when Stripe sent it expanded. */
  product: ProductSnapshot | null;
  active: boolean;
  currency: string;
  /** Integer minor units; null for prices without a flat unit amount (tiers, custom amounts). */
  unitAmount: number | null;
  lookupKey: string | null;
  nickname: string | null;
  type: 'one_time' | 'recurring';
  /** Null for one-time prices. */
  recurring: PriceRecurring | null;
  metadata: Record<string, string>;
  livemode: boolean;
  deleted: boolean;
  createdAt: Date | null;
}

export interface MeterSnapshot {
  id: string;
  eventName: string;
  displayName: string;
  aggregation: MeterAggregation;
  status: 'active' | 'inactive';
  /** The payload key that carries the Stripe customer id (default `stripe_customer_id`). */
  customerPayloadKey: string;
  /** The payload key that carries the value (default `value`). */
  valuePayloadKey: string;
  livemode: boolean;
  createdAt: Date | null;
  updatedAt: Date | null;
}

export interface SubscriptionItemSnapshot {
  id: string;
  price: PriceSnapshot;
  /** Null for metered items, which have no quantity. */
  quantity: number | null;
  /** Since API 2025-03-31 billing periods are per item. */
  currentPeriodStart: Date | null;
  currentPeriodEnd: Date | null;
}

export interface SubscriptionSnapshot {
  id: string;
  customerId: string;
  status: SubscriptionStatus;
  items: SubscriptionItemSnapshot[];
  /** The earliest start and latest end across the items' periods (they agree for one-interval subscriptions). */
  currentPeriodStart: Date | null;
  currentPeriodEnd: Date | null;
  cancelAtPeriodEnd: boolean;
  cancelAt: Date | null;
  canceledAt: Date | null;
  endedAt: Date | null;
  trialStart: Date | null;
  trialEnd: Date | null;
  latestInvoiceId: string | null;
  metadata: Record<string, string>;
  livemode: boolean;
  createdAt: Date;
  /** The subscription schedule managing it, if any. */
  scheduleId?: string | null;
  /** A change waiting for its invoice to be paid (`payment_behavior: pending_if_incomplete`). */
  pendingUpdate?: SubscriptionPendingUpdateSnapshot | null;
}

export interface SubscriptionPendingUpdateSnapshot {
  /** The items the subscription will have once the invoice is paid. */
  items: Array<{ priceId: string; quantity: number | null }>;
  /** Stripe drops the change when the invoice is not paid by then (23 hours). */
  expiresAt: Date | null;
}

export type ScheduleStatus = 'not_started' | 'active' | 'completed' | 'released' | 'canceled';

export interface SchedulePhaseSnapshot {
  startDate: Date;
  endDate: Date | null;
  items: Array<{ priceId: string; quantity: number | null }>;
}

export interface SubscriptionScheduleSnapshot {
  id: string;
  subscriptionId: string | null;
  customerId: string;
  status: ScheduleStatus;
  endBehavior: string;
  /** The phase in force now; null once the schedule is released, canceled or completed. */
  currentPhase: { startDate: Date; endDate: Date | null } | null;
  phases: SchedulePhaseSnapshot[];
  createdAt: Date | null;
}

export interface InvoicePreviewLineSnapshot {
  description: string | null;
  /** Integer minor units; negative for credits. */
  amount: number;
  quantity: number | null;
  proration: boolean;
  priceId: string | null;
  periodStart: Date | null;
  periodEnd: Date | null;
}

export interface InvoicePreviewSnapshot {
  /** `subscription_update` for the invoice a change creates at once; otherwise the next renewal. */
  billingReason: string | null;
  currency: string;
  /** Integer minor units. */
  amountDue: number;
  total: number;
  periodStart: Date | null;
  periodEnd: Date | null;
  lines: InvoicePreviewLineSnapshot[];
}

export interface CreatedSubscription {
  subscription: SubscriptionSnapshot;
  /**
   * The client secret the browser uses to confirm the first payment (Stripe.js
   * `confirmPayment`), present while the latest invoice is open and awaits payment.
   */
  clientSecret: string | null;  /** The subscription's first invoice, when Stripe sent it expanded (stored as it arrives). */
  latestInvoice?: InvoiceSnapshot | null;
}

export interface CheckoutSessionSnapshot {
  id: string;
  /** The hosted page; null once the session is complete or expired. */
  url: string | null;
  status: 'open' | 'complete' | 'expired' | null;
  mode: CheckoutMode | 'setup';
  paymentStatus: 'paid' | 'unpaid' | 'no_payment_required' | null;
  customerId: string | null;
  subscriptionId: string | null;
  /** The created subscription, when Stripe sent it expanded. */
  subscription: SubscriptionSnapshot | null;
  clientReferenceId: string | null;
  metadata: Record<string, string>;
  /** Integer minor units. */
  amountTotal: number | null;
  currency: string | null;
  expiresAt: Date | null;
  livemode: boolean;
  createdAt: Date | null;
}

export interface BillingPortalSessionSnapshot {
  id: string;
  url: string;
  customerId: string;
  returnUrl: string | null;
  createdAt: Date | null;
}

export interface InvoiceSnapshot {
  id: string;
  customerId: string | null;
  /** From `parent.subscription_details.subscription` (API 2025-03-31 and later). */
  subscriptionId: string | null;
  status: InvoiceStatus | null;
  number: string | null;
  currency: string;
  /** All amounts are integer minor units. */
  amountDue: number;
  amountPaid: number;
  amountRemaining: number;
  subtotal: number;
  total: number;
  hostedInvoiceUrl: string | null;
  invoicePdf: string | null;
  billingReason: string | null;
  periodStart: Date | null;
  periodEnd: Date | null;
  paidAt: Date | null;
  /** Payment attempts so far on Stripe's retry schedule (the first attempt counts as 1). */
  attemptCount: number;
  /** When Stripe retries the payment next (smart retries); null when none is scheduled. */
  nextPaymentAttempt: Date | null;
  /** The payment's client secret when Stripe sent `confirmation_secret` (expanded). */
  clientSecret: string | null;
  livemode: boolean;
  createdAt: Date | null;
}

/** A Stripe test clock: objects of its customers move with `frozenTime` instead of real time. */
export interface TestClockSnapshot {
  id: string;
  name: string | null;
  frozenTime: Date;
  /** `advancing` while Stripe moves the clock's objects, `ready` once done, `internal_failure` when it failed. */
  status: string;
  /** Where an advance under way goes. */
  advancingTo: Date | null;
  /** When Stripe deletes the clock and its objects by itself. */
  deletesAfter: Date | null;
  createdAt: Date | null;
}

/** What switchTestCard changed. */
export interface TestCardSwitch {
  customerId: string;
  paymentMethodId: string;
  /** Subscriptions whose own default payment method now is the new card. */
  subscriptionIds: string[];
}

export interface Page<T> {
  data: T[];
  hasMore: boolean;
  /** Pass as `startingAfter` to read the next page; null on the last page. */
  nextCursor: string | null;
}

export interface MeterEventInput {
  /** The meter's `event_name`. */
  eventName: string;
  stripeCustomerId: string;
  value: number;
  /** Stable per usage row; Stripe drops a second event with the same identifier (24 h at least). */
  identifier: string;
  timestamp: Date;
}

export interface MeterEventOutcome {
  identifier: string;
  /**
   * `accepted`: Stripe took the event (the v2 stream validates asynchronously, so this is not
   * a guarantee it was counted). `duplicate`: Stripe already had this identifier, which counts
   * as delivered. `failed`: not delivered.
   */
  status: 'accepted' | 'duplicate' | 'failed';
  /** For failures: whether sending again later may succeed (rate limit, outage, network). */
  retryable: boolean;
  /** A user-safe reason for failures. */
  error?: { code: string; message: string };
}

export interface SendMeterEventsResult {
  transport: 'v2_stream' | 'v1';
  outcomes: MeterEventOutcome[];
}

/** The typed `data.object` of an event, mapped when it is an object we know. */
export type StripeObjectSnapshot =
  | { kind: 'customer'; customer: CustomerSnapshot }
  | { kind: 'product'; product: ProductSnapshot }
  | { kind: 'price'; price: PriceSnapshot }
  | { kind: 'billing.meter'; meter: MeterSnapshot }
  | { kind: 'subscription'; subscription: SubscriptionSnapshot }
  | { kind: 'checkout.session'; session: CheckoutSessionSnapshot }
  | { kind: 'invoice'; invoice: InvoiceSnapshot }
  | { kind: 'other'; objectType: string | null; id: string | null };

export interface StripeEventSnapshot {
  id: string;
  type: string;
  livemode: boolean;
  apiVersion: string | null;
  createdAt: Date;
  /** `data.object` as sent (plain JSON). Map it with `toObjectSnapshot` in `stripe.mappers.ts`. */
  object: Record<string, unknown>;
  /** `data.previous_attributes` for `*.updated` events. */
  previousAttributes: Record<string, unknown> | null;
  /** The whole event as plain JSON, for storing in `stripe_events.payload`. */
  payload: Record<string, unknown>;
}


/** A Stripe Entitlements feature: what a plan unlocks, named by a lookup key. */
export interface FeatureSnapshot {
  id: string;
  lookupKey: string;
  name: string;
  /** False once archived: it can no longer be attached to products. */
  active: boolean;
  metadata: Record<string, string>;
}

/** A feature attached to a product: subscribers of the product are entitled to it. */
export interface ProductFeatureSnapshot {
  id: string;
  productId: string;
  feature: FeatureSnapshot;
}

/** One of a customer's active entitlements as Stripe computes them. */
export interface ActiveEntitlementSnapshot {
  id: string;
  featureId: string;
  lookupKey: string;
}
