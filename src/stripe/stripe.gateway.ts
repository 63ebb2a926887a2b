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

import type {
  CancelSubscriptionInput,
  ChangeSubscriptionItemsInput,
  ChangedSubscription,
  CreateBillingPortalSessionInput,
  CreateCheckoutSessionInput,
  CreateCustomerInput,
  CreateMeterInput,
  CreatePriceInput,
  CreateProductInput,
  CreateSubscriptionInput,
  ListInvoicesInput,
  ListPricesInput,
  PreviewSubscriptionChangeInput,
  UpdatePriceInput,
  UpdateProductInput,
  UpdateSchedulePhasesInput,
  UpdateSubscriptionInput,
} from './stripe.inputs';
import type {
  ActiveEntitlementSnapshot,
  BillingPortalSessionSnapshot,
  CheckoutSessionSnapshot,
  CreatedSubscription,
  CustomerSnapshot,
  FeatureSnapshot,
  InvoicePreviewSnapshot,
  InvoiceSnapshot,
  MeterEventInput,
  MeterSnapshot,
  Page,
  PriceSnapshot,
  ProductFeatureSnapshot,
  ProductSnapshot,
  SendMeterEventsResult,
  StripeEventSnapshot,
  SubscriptionScheduleSnapshot,
  SubscriptionSnapshot,
  TestCardSwitch,
  TestClockSnapshot,
} from './stripe.snapshots';
import type { StripeMode } from '../config/stripe-keys';

export type * from './stripe.inputs';
export type * from './stripe.snapshots';

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
