import type Stripe from 'stripe';
import type {
  BillingPortalSessionSnapshot,
  CheckoutSessionSnapshot,
  CustomerSnapshot,
  FeatureSnapshot,
  InvoiceSnapshot,
  InvoiceStatus,
  MeterAggregation,
  MeterSnapshot,
  PriceSnapshot,
  ProductSnapshot,
  RecurringInterval,
  StripeEventSnapshot,
  StripeObjectSnapshot,
  SubscriptionItemSnapshot,
  SubscriptionPendingUpdateSnapshot,
  SubscriptionSnapshot,
  SubscriptionStatus,
  UsageType,
} from './stripe.gateway';

/*
 * Pure functions from Stripe objects to domain snapshots. They serve both API responses and
 * webhook payloads, so they accept every expandable field as an id or as the expanded object,
 * read only the fields they need (extra or unknown fields are ignored), and treat fields that
 * older payloads or the emulator may omit as absent rather than failing.
 */

/** The `metadata.tollgate_user_id` key that links a Stripe customer to our app user. */
export const USER_ID_METADATA_KEY = 'tollgate_user_id';

type Expandable = string | { id?: string | null } | null | undefined;

/** The id of a field that Stripe sends either as an id or as an expanded object. */
export function idOf(value: Expandable): string | null {
  if (value == null) return null;
  if (typeof value === 'string') return value;
  return typeof value.id === 'string' ? value.id : null;
}

/** The expanded object of a field, or null when Stripe sent only the id. */
function expanded<T extends object>(value: string | T | null | undefined): T | null {
  return value != null && typeof value === 'object' ? value : null;
}

/** Stripe timestamps are Unix seconds. */
export function fromUnix(seconds: number | null | undefined): Date | null {
  return typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000) : null;
}

function metadataOf(value: unknown): Record<string, string> {
  if (value == null || typeof value !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v != null) out[k] = String(v);
  }
  return out;
}

function isDeleted(value: { deleted?: unknown }): boolean {
  return value.deleted === true;
}

/** Amounts must be integer minor units; anything else from the wire is treated as absent. */
function minorUnits(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) ? value : null;
}

export function toCustomerSnapshot(customer: Stripe.Customer | Stripe.DeletedCustomer): CustomerSnapshot {
  if (isDeleted(customer)) {
    return {
      id: customer.id,
      email: null,
      name: null,
      userId: null,
      metadata: {},
      livemode: false,
      deleted: true,
      createdAt: null,
    };
  }
  const c = customer as Stripe.Customer;
  const metadata = metadataOf(c.metadata);
  return {
    id: c.id,
    email: c.email ?? null,
    name: c.name ?? null,
    userId: metadata[USER_ID_METADATA_KEY] ?? null,
    metadata,
    livemode: c.livemode === true,
    deleted: false,
    createdAt: fromUnix(c.created),
  };
}

export function toProductSnapshot(product: Stripe.Product | Stripe.DeletedProduct): ProductSnapshot {
  const p = product as Partial<Stripe.Product> & { id: string };
  return {
    id: p.id,
    name: p.name ?? '',
    description: p.description ?? null,
    active: isDeleted(product) ? false : p.active !== false,
    metadata: metadataOf(p.metadata),
    livemode: p.livemode === true,
    deleted: isDeleted(product),
    createdAt: fromUnix(p.created),
    updatedAt: fromUnix(p.updated),
  };
}

const INTERVALS: readonly RecurringInterval[] = ['day', 'week', 'month', 'year'];

export function toPriceSnapshot(price: Stripe.Price | Stripe.DeletedPrice): PriceSnapshot {
  const p = price as Partial<Stripe.Price> & { id: string };
  const recurring = p.recurring ?? null;
  const product = p.product as Stripe.Price['product'] | undefined;
  const expandedProduct = expanded(product);
  let mappedRecurring: PriceSnapshot['recurring'] = null;
  if (recurring && INTERVALS.includes(recurring.interval as RecurringInterval)) {
    mappedRecurring = {
      interval: recurring.interval as RecurringInterval,
      intervalCount: recurring.interval_count ?? 1,
      usageType: (recurring.usage_type === 'metered' ? 'metered' : 'licensed') as UsageType,
      meterId: recurring.meter ?? null,
    };
  }
  return {
    id: p.id,
    productId: idOf(product) ?? '',
    product: expandedProduct ? toProductSnapshot(expandedProduct) : null,
    active: isDeleted(price) ? false : p.active !== false,
    currency: (p.currency ?? '').toLowerCase(),
    unitAmount: minorUnits(p.unit_amount),
    lookupKey: p.lookup_key ?? null,
    nickname: p.nickname ?? null,
    type: mappedRecurring || p.type === 'recurring' ? 'recurring' : 'one_time',
    recurring: mappedRecurring,
    metadata: metadataOf(p.metadata),
    livemode: p.livemode === true,
    deleted: isDeleted(price),
    createdAt: fromUnix(p.created),
  };
}

const AGGREGATIONS: readonly MeterAggregation[] = ['sum', 'count', 'last'];

export function toMeterSnapshot(meter: Stripe.Billing.Meter): MeterSnapshot {
  const formula = meter.default_aggregation?.formula;
  return {
    id: meter.id,
    eventName: meter.event_name,
    displayName: meter.display_name ?? meter.event_name,
    aggregation: AGGREGATIONS.includes(formula as MeterAggregation) ? (formula as MeterAggregation) : 'sum',
    status: meter.status === 'inactive' ? 'inactive' : 'active',
    customerPayloadKey: meter.customer_mapping?.event_payload_key ?? 'stripe_customer_id',
    valuePayloadKey: meter.value_settings?.event_payload_key ?? 'value',
    livemode: meter.livemode === true,
    createdAt: fromUnix(meter.created),
    updatedAt: fromUnix(meter.updated),
  };
}

const SUBSCRIPTION_STATUSES: readonly SubscriptionStatus[] = [
  'active',
  'canceled',
  'incomplete',
  'incomplete_expired',
  'past_due',
  'paused',
  'trialing',
  'unpaid',
];

function subscriptionStatus(status: string): SubscriptionStatus {
  if ((SUBSCRIPTION_STATUSES as readonly string[]).includes(status)) return status as SubscriptionStatus;
  throw new TypeError(`Unknown Stripe subscription status "${status}"`);
}

export function toSubscriptionItemSnapshot(item: Stripe.SubscriptionItem): SubscriptionItemSnapshot {
  // Before API 2025-03-31 the period lived on the subscription; items of older payloads lack it.
  const legacy = item as Partial<Stripe.SubscriptionItem>;
  return {
    id: item.id,
    price: toPriceSnapshot(item.price),
    quantity: typeof item.quantity === 'number' ? item.quantity : null,
    currentPeriodStart: fromUnix(legacy.current_period_start),
    currentPeriodEnd: fromUnix(legacy.current_period_end),
  };
}

function minDate(dates: Array<Date | null>): Date | null {
  const valid = dates.filter((d): d is Date => d !== null);
  return valid.length ? new Date(Math.min(...valid.map((d) => d.getTime()))) : null;
}

function maxDate(dates: Array<Date | null>): Date | null {
  const valid = dates.filter((d): d is Date => d !== null);
  return valid.length ? new Date(Math.max(...valid.map((d) => d.getTime()))) : null;
}

export function toSubscriptionSnapshot(subscription: Stripe.Subscription): SubscriptionSnapshot {
  const items = (subscription.items?.data ?? []).map(toSubscriptionItemSnapshot);
  // Payloads from before API 2025-03-31 carry the period on the subscription itself.
  const legacy = subscription as unknown as { current_period_start?: number; current_period_end?: number };
  const start = minDate(items.map((i) => i.currentPeriodStart)) ?? fromUnix(legacy.current_period_start);
  const end = maxDate(items.map((i) => i.currentPeriodEnd)) ?? fromUnix(legacy.current_period_end);
  return {
    id: subscription.id,
    customerId: idOf(subscription.customer) ?? '',
    status: subscriptionStatus(subscription.status),
    items,
    currentPeriodStart: start,
    currentPeriodEnd: end,
    cancelAtPeriodEnd: subscription.cancel_at_period_end === true,
    cancelAt: fromUnix(subscription.cancel_at),
    canceledAt: fromUnix(subscription.canceled_at),
    endedAt: fromUnix(subscription.ended_at),
    trialStart: fromUnix(subscription.trial_start),
    trialEnd: fromUnix(subscription.trial_end),
    latestInvoiceId: idOf(subscription.latest_invoice),
    metadata: metadataOf(subscription.metadata),
    livemode: subscription.livemode === true,
    createdAt: fromUnix(subscription.created) ?? new Date(0),
    scheduleId: idOf(subscription.schedule),
    pendingUpdate: toPendingUpdateSnapshot(subscription.pending_update),
  };
}

/** `pending_update`: the items a subscription gets once the update's invoice is paid. */
export function toPendingUpdateSnapshot(update: Stripe.Subscription.PendingUpdate | null | undefined): SubscriptionPendingUpdateSnapshot | null {
  if (!update) return null;
  return {
    items: (update.subscription_items ?? []).map((i) => ({ priceId: idOf(i.price) ?? '', quantity: typeof i.quantity === 'number' ? i.quantity : null })),
    expiresAt: fromUnix(update.expires_at),
  };
}

/**
 * The client secret the browser needs to pay a subscription's first invoice: present when the
 * latest invoice was expanded with its `confirmation_secret` and still awaits payment. Since
 * API 2025-03-31 invoices expose `confirmation_secret` instead of `payment_intent`.
 */
export function subscriptionClientSecret(subscription: Stripe.Subscription): string | null {
  const invoice = expanded(subscription.latest_invoice);
  if (!invoice) return null;
  if (!['incomplete', 'past_due', 'unpaid'].includes(subscription.status)) return null;
  if (invoice.status !== 'open') return null;
  return invoice.confirmation_secret?.client_secret ?? null;
}

/** The subscription's latest invoice, when the response carried it expanded. */
export function latestInvoiceSnapshot(subscription: Stripe.Subscription): InvoiceSnapshot | null {
  const invoice = expanded(subscription.latest_invoice);
  return invoice ? toInvoiceSnapshot(invoice) : null;
}

const INVOICE_STATUSES: readonly InvoiceStatus[] = ['draft', 'open', 'paid', 'uncollectible', 'void'];

export function toInvoiceSnapshot(invoice: Stripe.Invoice): InvoiceSnapshot {
  const subscriptionId =
    idOf(invoice.parent?.subscription_details?.subscription) ??
    // Payloads from before API 2025-03-31 carry `subscription` at the top level.
    idOf((invoice as unknown as { subscription?: Expandable }).subscription);
  const status = invoice.status ?? null;
  return {
    id: invoice.id,
    customerId: idOf(invoice.customer),
    subscriptionId,
    status: status && (INVOICE_STATUSES as readonly string[]).includes(status) ? (status as InvoiceStatus) : null,
    number: invoice.number ?? null,
    currency: (invoice.currency ?? '').toLowerCase(),
    amountDue: minorUnits(invoice.amount_due) ?? 0,
    amountPaid: minorUnits(invoice.amount_paid) ?? 0,
    amountRemaining: minorUnits(invoice.amount_remaining) ?? 0,
    subtotal: minorUnits(invoice.subtotal) ?? 0,
    total: minorUnits(invoice.total) ?? 0,
    hostedInvoiceUrl: invoice.hosted_invoice_url ?? null,
    invoicePdf: invoice.invoice_pdf ?? null,
    billingReason: invoice.billing_reason ?? null,
    periodStart: fromUnix(invoice.period_start),
    periodEnd: fromUnix(invoice.period_end),
    paidAt: fromUnix(invoice.status_transitions?.paid_at),
    attemptCount: typeof invoice.attempt_count === 'number' ? invoice.attempt_count : 0,
    nextPaymentAttempt: fromUnix(invoice.next_payment_attempt),
    clientSecret: invoice.confirmation_secret?.client_secret ?? null,
    livemode: invoice.livemode === true,
    createdAt: fromUnix(invoice.created),
  };
}

export function toCheckoutSessionSnapshot(session: Stripe.Checkout.Session): CheckoutSessionSnapshot {
  const subscription = expanded(session.subscription);
  const status = session.status as string | null;
  const paymentStatus = session.payment_status as string | null;
  const mode = session.mode as string;
  return {
    id: session.id,
    url: session.url ?? null,
    status: status === 'open' || status === 'complete' || status === 'expired' ? status : null,
    mode: mode === 'payment' || mode === 'setup' ? mode : 'subscription',
    paymentStatus:
      paymentStatus === 'paid' || paymentStatus === 'unpaid' || paymentStatus === 'no_payment_required'
        ? paymentStatus
        : null,
    customerId: idOf(session.customer),
    subscriptionId: idOf(session.subscription),
    subscription: subscription ? toSubscriptionSnapshot(subscription) : null,
    clientReferenceId: session.client_reference_id ?? null,
    metadata: metadataOf(session.metadata),
    amountTotal: minorUnits(session.amount_total),
    currency: session.currency ? session.currency.toLowerCase() : null,
    expiresAt: fromUnix(session.expires_at),
    livemode: session.livemode === true,
    createdAt: fromUnix(session.created),
  };
}

export function toBillingPortalSessionSnapshot(
  session: Stripe.BillingPortal.Session,
): BillingPortalSessionSnapshot {
  return {
    id: session.id,
    url: session.url,
    customerId: idOf(session.customer) ?? '',
    returnUrl: session.return_url ?? null,
    createdAt: fromUnix(session.created),
  };
}

/**
 * Maps an event's `data.object` by its `object` field. Webhook handlers call this on the
 * verified payload; objects we do not model come back as `kind: 'other'`.
 */
export function toObjectSnapshot(object: Record<string, unknown>): StripeObjectSnapshot {
  const type = typeof object.object === 'string' ? object.object : null;
  const any = object as never;
  switch (type) {
    case 'customer':
      return { kind: 'customer', customer: toCustomerSnapshot(any) };
    case 'product':
      return { kind: 'product', product: toProductSnapshot(any) };
    case 'price':
      return { kind: 'price', price: toPriceSnapshot(any) };
    case 'billing.meter':
      return { kind: 'billing.meter', meter: toMeterSnapshot(any) };
    case 'subscription':
      return { kind: 'subscription', subscription: toSubscriptionSnapshot(any) };
    case 'checkout.session':
      return { kind: 'checkout.session', session: toCheckoutSessionSnapshot(any) };
    case 'invoice':
      return { kind: 'invoice', invoice: toInvoiceSnapshot(any) };
    default:
      return { kind: 'other', objectType: type, id: typeof object.id === 'string' ? object.id : null };
  }
}

/**
 * An event as plain JSON plus the fields handlers route on. The payload is copied through JSON
 * so it can be stored in jsonb as is.
 */
export function toEventSnapshot(event: Stripe.Event, options: { plainJson?: boolean } = {}): StripeEventSnapshot {
  // A plain copy, unless the event is one already (a verified webhook body, just parsed).
  const payload = (options.plainJson ? event : JSON.parse(JSON.stringify(event))) as unknown as Record<string, unknown>;
  const data = (payload.data ?? {}) as { object?: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
  return {
    id: event.id,
    type: event.type,
    livemode: event.livemode === true,
    apiVersion: event.api_version ?? null,
    createdAt: fromUnix(event.created) ?? new Date(0),
    object: data.object ?? {},
    previousAttributes: data.previous_attributes ?? null,
    payload,
  };
}

export function toFeatureSnapshot(feature: Stripe.Entitlements.Feature): FeatureSnapshot {
  return { id: feature.id, lookupKey: feature.lookup_key, name: feature.name, active: feature.active, metadata: { ...(feature.metadata ?? {}) } };
}
