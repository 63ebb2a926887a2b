/**
 * The application's only door to Stripe: domain-shaped inputs in our terms, domain snapshots
 * out (Dates, integer minor units, plain ids). Nothing outside `src/stripe/` sees an SDK
 * object, so services and webhook handlers can be tested against a fake gateway and the SDK
 * can be upgraded in one place.
 *
 * Error contract: every method rejects with a `BillingError` (see `stripe-errors.ts`):
 * `NOT_FOUND` for an id Stripe does not know, `BAD_USER_INPUT` for input Stripe rejects,
 * `IDEMPOTENCY_CONFLICT` when a key is reused with different parameters, and
 * `PAYMENT_PROVIDER_ERROR` (user-safe message, original error as `cause`) for everything
 * Stripe-side. `constructWebhookEvent` rejects bad signatures with `WebhookSignatureError`.
 *
 * Idempotency: every write takes an `idempotencyKey` the caller derives deterministically
 * (`idempotency.ts`) from our own row id or the client's key. The same key is sent on every
 * network retry, so Stripe creates each object at most once.
 */

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

export interface CreateCustomerInput {
  /** Our app user id (the JWT `sub`), stored as `metadata.tollgate_user_id`. */
  userId: string;
  email?: string;
  name?: string;
  /** A test clock (test mode only): the customer and its subscriptions then move with that clock's time. */
  testClockId?: string;
  idempotencyKey: string;
}

export interface CreateProductInput {
  name: string;
  description?: string;
  active?: boolean;
  metadata?: Record<string, string>;
  idempotencyKey: string;
}

export interface UpdateProductInput {
  id: string;
  name?: string;
  /** An empty string clears it. */
  description?: string;
  active?: boolean;
  metadata?: Record<string, string>;
  idempotencyKey: string;
}

export interface CreatePriceInput {
  productId: string;
  currency: string;
  /** Integer minor units; for metered prices, the amount per unit of usage. */
  unitAmount: number;
  lookupKey?: string;
  /** Move the lookup key from the price that holds it to this one. */
  transferLookupKey?: boolean;
  nickname?: string;
  /** Omit for a one-time price. */
  recurring?: {
    interval: RecurringInterval;
    intervalCount?: number;
    usageType?: UsageType;
    /** Required with `usageType: 'metered'`. */
    meterId?: string;
  };
  metadata?: Record<string, string>;
  idempotencyKey: string;
}

export interface UpdatePriceInput {
  id: string;
  active?: boolean;
  /** An empty string removes the lookup key. */
  lookupKey?: string;
  transferLookupKey?: boolean;
  nickname?: string;
  metadata?: Record<string, string>;
  idempotencyKey: string;
}

export interface ListPricesInput {
  /** At most 10 per Stripe request; more are fetched in several requests. */
  lookupKeys?: string[];
  productId?: string;
  active?: boolean;
}

export interface CreateMeterInput {
  eventName: string;
  displayName: string;
  aggregation: MeterAggregation;
  customerPayloadKey?: string;
  valuePayloadKey?: string;
  idempotencyKey: string;
}

export interface CreateSubscriptionInput {
  customerId: string;
  items: Array<{ priceId: string; quantity?: number }>;
  trialDays?: number;
  /** Default `default_incomplete`: the first payment is confirmed by the customer in the browser. */
  paymentBehavior?: PaymentBehavior;
  metadata?: Record<string, string>;
  idempotencyKey: string;
}

export interface UpdateSubscriptionInput {
  id: string;
  /** The subscription item to change (a subscription may hold a licensed and a metered item). */
  itemId: string;
  priceId?: string;
  quantity?: number;
  prorationBehavior?: ProrationBehavior;
  idempotencyKey: string;
}

/** One entry of Stripe's `items[]` on a subscription update. */
export interface SubscriptionItemChange {
  /** The existing item; omit to add one. */
  itemId?: string;
  priceId?: string;
  /** Omit for metered prices. */
  quantity?: number;
  /** Removes the item; usage of a metered item up to now is still billed. */
  deleted?: boolean;
}

export interface ChangeSubscriptionItemsInput {
  id: string;
  items: SubscriptionItemChange[];
  prorationBehavior: ProrationBehavior;
  /** Prorate as of this time (pass the preview's so the invoice equals the preview). */
  prorationDate?: Date;
  /**
   * `pending_if_incomplete`: when the invoice the change creates is not paid at once, the
   * subscription keeps its items and carries a pending update until the invoice is paid.
   * Stripe allows only price and quantity changes with it (no deletions).
   */
  paymentBehavior: PaymentBehavior;
  idempotencyKey: string;
}

export interface ChangedSubscription {
  subscription: SubscriptionSnapshot;
  /** The latest invoice's client secret while that invoice is open and awaits the customer. */
  clientSecret: string | null;  /** The invoice the change left latest (its proration invoice, when invoiced at once), when Stripe sent it expanded. */
  latestInvoice?: InvoiceSnapshot | null;
}

export interface SchedulePhaseInput {
  items: Array<{ priceId: string; quantity?: number }>;
  startDate: Date;
  /** Give an end date or a duration. */
  endDate?: Date;
  duration?: { interval: RecurringInterval; intervalCount: number };
}

export interface UpdateSchedulePhasesInput {
  id: string;
  /** The first phase is the current one: its start date cannot change. */
  phases: SchedulePhaseInput[];
  endBehavior: 'release' | 'cancel';
  idempotencyKey: string;
}

export interface PreviewSubscriptionChangeInput {
  customerId: string;
  subscriptionId: string;
  /** Omit to preview the next renewal as things stand. */
  items?: SubscriptionItemChange[];
  prorationBehavior?: ProrationBehavior;
  prorationDate?: Date;
  /** `next` (default): the next invoice, prorations included. `recurring`: a regular cycle's invoice after the change. */
  previewMode?: 'next' | 'recurring';
}

export interface CancelSubscriptionInput {
  id: string;
  /** True: keep it until the period ends (undo with `resumeSubscription`). False: end it now. */
  atPeriodEnd: boolean;
  idempotencyKey: string;
}

export interface CreateCheckoutSessionInput {
  customerId: string;
  mode: CheckoutMode;
  priceId: string;
  quantity: number;
  /** Metered prices of the plan, added as line items without a quantity (Stripe bills their usage). */
  meteredPriceIds?: string[];
  successUrl: string;
  cancelUrl: string;
  clientReferenceId?: string;
  /** Copied to the session and to the subscription it creates (subscription mode). */
  metadata?: Record<string, string>;
  idempotencyKey: string;
}

export interface CreateBillingPortalSessionInput {
  customerId: string;
  returnUrl: string;
  idempotencyKey: string;
}

export interface ListInvoicesInput {
  customerId: string;
  /** 1 to 100, default 10. */
  limit?: number;
  /** An invoice id from a previous page's `nextCursor`. */
  startingAfter?: string;
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

export interface StripeGateway {
  /**
   * False for the stand-in used when billing is disabled (DisabledStripeGateway), whose every
   * call fails with BILLING_DISABLED. Code that would otherwise call Stripe on its own (jobs,
   * syncs, refreshes on read) checks this; request paths need not, `@RequiresBilling` answers first.
   */
  readonly enabled: boolean;
  /**
   * Where this gateway sends requests, fixed at construction. Only `live` expects events with
   * `livemode: true`; the webhook route rejects events whose livemode does not match.
   */
  readonly mode: StripeMode;

  // Customers

  /** Creates the Stripe customer for one app user. The same key returns the first customer. */
  createCustomer(input: CreateCustomerInput): Promise<CustomerSnapshot>;
  /** Reads a customer; a deleted customer comes back with `deleted: true`. */
  retrieveCustomer(id: string): Promise<CustomerSnapshot>;

  // Test clocks (test mode only; see test-clock.calls.ts)

  /**
   * The name of the test clock new customers are put on (local mode, or a setting in test
   * mode), or null: customers then live in real time.
   */
  readonly customerTestClock: string | null;
  /** The clock named `name` that is not being deleted, created (frozen at now) when there is none. */
  findOrCreateTestClock(name: string): Promise<TestClockSnapshot>;
  retrieveTestClock(id: string): Promise<TestClockSnapshot>;
  /** Every test clock of the account. */
  listTestClocks(): Promise<TestClockSnapshot[]>;
  /** Starts moving the clock to `to`; it is `advancing` until Stripe has moved its objects, then `ready`. */
  advanceTestClock(input: { id: string; to: Date }): Promise<TestClockSnapshot>;
  /** Test mode: replaces a customer's card with a test card, as the billing portal would. */
  switchTestCard(input: { customer: string; card: string }): Promise<TestCardSwitch>;

  // Catalog

  /** Creates a product. */
  createProduct(input: CreateProductInput): Promise<ProductSnapshot>;
  /** Changes the given fields of a product; omitted fields stay as they are. */
  updateProduct(input: UpdateProductInput): Promise<ProductSnapshot>;
  /** Every product (all pages), optionally only active or inactive ones. */
  listProducts(filter?: { active?: boolean }): Promise<ProductSnapshot[]>;
  /** Creates a one-time, recurring licensed or recurring metered price. */
  createPrice(input: CreatePriceInput): Promise<PriceSnapshot>;
  /** Changes what Stripe allows on a price: active, lookup key, nickname, metadata. Amounts are immutable. */
  updatePrice(input: UpdatePriceInput): Promise<PriceSnapshot>;
  /** Every price matching the filter (all pages). */
  listPrices(filter?: ListPricesInput): Promise<PriceSnapshot[]>;
  /** Reads one price with its product expanded. */
  retrievePrice(id: string): Promise<PriceSnapshot>;
  /** Creates a Billing Meter (the only way usage reaches Stripe since API 2025-03-31). */
  createMeter(input: CreateMeterInput): Promise<MeterSnapshot>;
  /** Every meter (all pages). */
  listMeters(filter?: { status?: 'active' | 'inactive' }): Promise<MeterSnapshot[]>;

  // Subscriptions

  /**
   * Creates a subscription, by default with `payment_behavior: default_incomplete`: it starts
   * `incomplete` and `clientSecret` lets the browser confirm the first invoice's payment.
   * With `trialDays` it starts `trialing` and no payment is due yet.
   */
  createSubscription(input: CreateSubscriptionInput): Promise<CreatedSubscription>;
  /** Reads a subscription (also canceled ones). */
  retrieveSubscription(id: string): Promise<SubscriptionSnapshot>;
  /** Changes one item's price and/or quantity, prorating as asked (Stripe's default: create_prorations). */
  updateSubscription(input: UpdateSubscriptionInput): Promise<SubscriptionSnapshot>;
  /**
   * `atPeriodEnd`: schedules the end (`cancel_at_period_end`), reversible with
   * `resumeSubscription`. Otherwise ends it now; cancelling an already canceled subscription
   * returns it unchanged.
   */
  cancelSubscription(input: CancelSubscriptionInput): Promise<SubscriptionSnapshot>;
  /** Undoes a scheduled cancellation (`cancel_at_period_end: false`). */
  resumeSubscription(input: { id: string; idempotencyKey: string }): Promise<SubscriptionSnapshot>;
  /** All subscriptions of a customer, every status, newest first. */
  listSubscriptions(customerId: string): Promise<SubscriptionSnapshot[]>;
  /**
   * One subscription update over several items (swap, add, delete with `deleted: true`),
   * prorated as asked, with the latest invoice's client secret when its payment awaits the customer.
   */
  changeSubscriptionItems(input: ChangeSubscriptionItemsInput): Promise<ChangedSubscription>;
  /** What an invoice would be, stored nowhere (`invoices.createPreview` with `subscription_details`). */
  previewSubscriptionInvoice(input: PreviewSubscriptionChangeInput): Promise<InvoicePreviewSnapshot>;

  // Subscription schedules

  /** A schedule taking over a subscription: one phase, its current items until its period ends. */
  createScheduleFromSubscription(input: { subscriptionId: string; idempotencyKey: string }): Promise<SubscriptionScheduleSnapshot>;
  /** Replaces the phases of a schedule. */
  updateSchedulePhases(input: UpdateSchedulePhasesInput): Promise<SubscriptionScheduleSnapshot>;
  /** Detaches the schedule; the subscription carries on as it is now. */
  releaseSchedule(input: { id: string; idempotencyKey: string }): Promise<SubscriptionScheduleSnapshot>;
  retrieveSchedule(id: string): Promise<SubscriptionScheduleSnapshot>;

  // Checkout and portal

  /** Creates a hosted Checkout session for one price. */
  createCheckoutSession(input: CreateCheckoutSessionInput): Promise<CheckoutSessionSnapshot>;
  /** Reads a Checkout session with its subscription expanded. */
  retrieveCheckoutSession(id: string): Promise<CheckoutSessionSnapshot>;
  /**
   * Expires an open Checkout session, so it can no longer be paid. A session that is no longer
   * open (paid meanwhile, or expired) is returned as it is, with its subscription expanded.
   */
  expireCheckoutSession(input: { id: string; idempotencyKey: string }): Promise<CheckoutSessionSnapshot>;
  /** Creates a customer portal session; its `url` is short-lived and single-use. */
  createBillingPortalSession(input: CreateBillingPortalSessionInput): Promise<BillingPortalSessionSnapshot>;

  // Invoices

  /** One page of a customer's invoices, newest first. */
  listInvoices(input: ListInvoicesInput): Promise<Page<InvoiceSnapshot>>;
  /** Reads one invoice. */
  retrieveInvoice(id: string): Promise<InvoiceSnapshot>;

  // Usage

  /**
   * Sends usage to Billing Meters: through the v2 meter event stream (a session token cached
   * and renewed before its 15 minutes run out, up to 100 events a request) and, when the stream
   * is unavailable, through v1 one event at a time. Never rejects for Stripe-side failures:
   * each event gets an outcome, and failed ones say whether a retry may help.
   */
  sendMeterEvents(events: MeterEventInput[]): Promise<SendMeterEventsResult>;

  // Events and webhooks

  /** Reads an event (for replays and to re-check a delivery). */
  retrieveEvent(id: string): Promise<StripeEventSnapshot>;
  /**
   * One page of events, newest first (Stripe keeps 30 days), created after `createdAfter` when
   * given; `startingAfter` (the previous page's `nextCursor`) reads the next, older page.
   */
  listEvents(input: { createdAfter?: Date; startingAfter?: string; limit?: number }): Promise<Page<StripeEventSnapshot>>;
  /**
   * Verifies a webhook delivery: the `Stripe-Signature` header against the exact raw bytes and
   * the webhook secret, with the timestamp tolerance. Throws `WebhookSignatureError`
   * (answer 400) when the signature, the timestamp or the payload is bad, and a
   * `BillingError` INTERNAL_SERVER_ERROR when no webhook secret is configured.
   */
  constructWebhookEvent(rawBody: Buffer | string, signatureHeader: string | undefined): StripeEventSnapshot;

  // Entitlements

  /** Every feature (all pages), archived ones included. */
  listFeatures(): Promise<FeatureSnapshot[]>;
  /** Creates a feature; its lookup key is unique in the account. */
  createFeature(input: { name: string; lookupKey: string; metadata?: Record<string, string>; idempotencyKey: string }): Promise<FeatureSnapshot>;
  /** Renames, archives (`active: false`) or restores a feature. */
  updateFeature(input: { id: string; name?: string; active?: boolean; idempotencyKey: string }): Promise<FeatureSnapshot>;
  /** The features attached to a product (all pages). */
  listProductFeatures(productId: string): Promise<ProductFeatureSnapshot[]>;
  /** Attaches a feature to a product. */
  attachProductFeature(input: { productId: string; featureId: string; idempotencyKey: string }): Promise<ProductFeatureSnapshot>;
  /** Detaches a feature from a product; detaching one already gone is not an error. */
  detachProductFeature(input: { productId: string; productFeatureId: string }): Promise<void>;
  /** A customer's active entitlements, every page. */
  listActiveEntitlements(customerId: string): Promise<ActiveEntitlementSnapshot[]>;
}
