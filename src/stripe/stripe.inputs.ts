/** What the gateway's calls take: inputs in our terms, each write with its idempotency key. */

import type { CheckoutMode, InvoiceSnapshot, MeterAggregation, PaymentBehavior, ProrationBehavior, RecurringInterval, SubscriptionSnapshot, UsageType } from './stripe.snapshots';

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
