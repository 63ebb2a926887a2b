import Stripe from 'stripe';
import { chunk } from '../common/chunk';
import { BillingError, ErrorCode } from '../common/errors';
import {
  isStripeSdkError,
  WebhookSignatureError,
  type StripeErrorContext,
} from './stripe-errors';
import type {
  ActiveEntitlementSnapshot,
  BillingPortalSessionSnapshot,
  CancelSubscriptionInput,
  CheckoutSessionSnapshot,
  CreateBillingPortalSessionInput,
  CreateCheckoutSessionInput,
  CreateCustomerInput,
  CreatedSubscription,
  CreateMeterInput,
  CreatePriceInput,
  CreateProductInput,
  CreateSubscriptionInput,
  CustomerSnapshot,
  FeatureSnapshot,
  InvoiceSnapshot,
  ListInvoicesInput,
  ListPricesInput,
  MeterEventInput,
  MeterSnapshot,
  Page,
  PriceSnapshot,
  ProductFeatureSnapshot,
  ProductSnapshot,
  SendMeterEventsResult,
  StripeEventSnapshot,
  StripeGateway,
  StripeMode,
  SubscriptionSnapshot,
  UpdatePriceInput,
  UpdateProductInput,
  UpdateSubscriptionInput,
} from './stripe.gateway';
import { stripeModeFor } from '../config/stripe-keys';
import { MeterEventSender, METER_STREAM_BATCH_SIZE } from './meter-event-sender';
import { StripeCallPolicy, type StripeGatewayLogger } from './stripe-call-policy';
import { SubscriptionChangeCalls } from './subscription-change.calls';
import {
  subscriptionClientSecret,
  toBillingPortalSessionSnapshot,
  toCheckoutSessionSnapshot,
  toCustomerSnapshot,
  toEventSnapshot,
  toInvoiceSnapshot,
  toMeterSnapshot,
  toPriceSnapshot,
  toProductSnapshot,
  toSubscriptionSnapshot,
  USER_ID_METADATA_KEY,
} from './stripe.mappers';

export interface StripeSdkGatewayOptions {
  secretKey: string;
  /** Point the SDK at an emulator or stripe-mock, e.g. `http://127.0.0.1:12111`. */
  apiBase?: string;
  /** Per-request timeout; the SDK default (80 s) when omitted. */
  timeoutMs?: number;
  /** How often the SDK retries connection errors, 409 and 5xx (same idempotency key). Default 2. */
  maxNetworkRetries?: number;
  webhookSecret?: string;
  /** Maximum age of a webhook signature timestamp. Default 300 s. */
  webhookToleranceSeconds?: number;
  logger?: StripeGatewayLogger;
  /**
   * How usage is sent: `auto` (default) uses the v2 meter event stream and falls back to v1
   * when the stream is unavailable; `v1` always sends one event per request.
   */
  meterEventTransport?: 'auto' | 'v1';
}

const PAGINATION_LIMIT = 10_000;

const noopLogger: StripeGatewayLogger = { warn: () => undefined };

export { METER_STREAM_BATCH_SIZE };
export type { StripeGatewayLogger };

export { stripeModeFor };

function sdkHostConfig(apiBase: string): Pick<Stripe.StripeConfig, 'host' | 'port' | 'protocol'> {
  let url: URL;
  try {
    url = new URL(apiBase);
  } catch {
    throw new TypeError('apiBase must be an absolute URL such as http://127.0.0.1:12111');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError('apiBase must use http or https');
  }
  if (url.pathname !== '/' && url.pathname !== '') {
    throw new TypeError('apiBase must not have a path: the SDK always sends /v1/... and /v2/...');
  }
  const protocol = url.protocol === 'https:' ? 'https' : 'http';
  return { host: url.hostname, port: url.port || (protocol === 'https' ? 443 : 80), protocol };
}

/**
 * The StripeGateway over the official SDK: the only value import of 'stripe' in the app.
 * The SDK's pinned API version is used (not overridden), so response shapes match its types.
 */
export class StripeSdkGateway implements StripeGateway {
  readonly mode: StripeMode;
  private readonly stripe: Stripe;
  private readonly secretKey: string;
  private readonly webhookSecret: string | undefined;
  private readonly webhookTolerance: number;
  private readonly logger: StripeGatewayLogger;
  private readonly policy: StripeCallPolicy;
  private readonly meterEvents: MeterEventSender;
  /** Plan changes: item updates, schedules, invoice previews. */
  private readonly changes: SubscriptionChangeCalls;

  constructor(options: StripeSdkGatewayOptions) {
    if (!options.secretKey) throw new TypeError('secretKey is required');
    this.secretKey = options.secretKey;
    this.mode = stripeModeFor(options.secretKey, options.apiBase);
    this.webhookSecret = options.webhookSecret || undefined;
    this.webhookTolerance = options.webhookToleranceSeconds ?? 300;
    const maxRetries = options.maxNetworkRetries ?? 2;
    const logger = (this.logger = options.logger ?? noopLogger);
    this.stripe = new Stripe(options.secretKey, {
      maxNetworkRetries: maxRetries,
      ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}),
      ...(options.apiBase ? sdkHostConfig(options.apiBase) : {}),
      telemetry: false,
      appInfo: { name: 'tollgate' },
    });
    this.policy = new StripeCallPolicy({ secretKey: options.secretKey, maxRetries, logger });
    this.meterEvents = new MeterEventSender(this.stripe, this.policy, { transport: options.meterEventTransport ?? 'auto', logger });
    this.changes = new SubscriptionChangeCalls(this.stripe, (operation, fn, context) => this.call(operation, fn, context));
  }

  changeSubscriptionItems: StripeGateway['changeSubscriptionItems'] = (input) => this.changes.changeSubscriptionItems(input);
  previewSubscriptionInvoice: StripeGateway['previewSubscriptionInvoice'] = (input) => this.changes.previewSubscriptionInvoice(input);
  createScheduleFromSubscription: StripeGateway['createScheduleFromSubscription'] = (input) => this.changes.createScheduleFromSubscription(input);
  updateSchedulePhases: StripeGateway['updateSchedulePhases'] = (input) => this.changes.updateSchedulePhases(input);
  releaseSchedule: StripeGateway['releaseSchedule'] = (input) => this.changes.releaseSchedule(input);
  retrieveSchedule: StripeGateway['retrieveSchedule'] = (id) => this.changes.retrieveSchedule(id);

  /** One SDK call under the call policy (rate-limit retries, errors mapped to BillingError). */
  private call<T>(operation: string, fn: () => Promise<T>, context: StripeErrorContext = {}): Promise<T> {
    return this.policy.run(operation, fn, context);
  }

  // Customers

  async createCustomer(input: CreateCustomerInput): Promise<CustomerSnapshot> {
    const customer = await this.call('customers.create', () =>
      this.stripe.customers.create(
        {
          ...(input.email ? { email: input.email } : {}),
          ...(input.name ? { name: input.name } : {}),
          metadata: { [USER_ID_METADATA_KEY]: input.userId },
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toCustomerSnapshot(customer);
  }

  async retrieveCustomer(id: string): Promise<CustomerSnapshot> {
    const customer = await this.call('customers.retrieve', () => this.stripe.customers.retrieve(id), {
      resource: 'Customer',
    });
    return toCustomerSnapshot(customer);
  }

  // Catalog

  async createProduct(input: CreateProductInput): Promise<ProductSnapshot> {
    const product = await this.call('products.create', () =>
      this.stripe.products.create(
        {
          name: input.name,
          ...(input.description ? { description: input.description } : {}),
          ...(input.active !== undefined ? { active: input.active } : {}),
          ...(input.metadata ? { metadata: input.metadata } : {}),
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toProductSnapshot(product);
  }

  async updateProduct(input: UpdateProductInput): Promise<ProductSnapshot> {
    const product = await this.call(
      'products.update',
      () =>
        this.stripe.products.update(
          input.id,
          {
            ...(input.name !== undefined ? { name: input.name } : {}),
            ...(input.description !== undefined ? { description: input.description } : {}),
            ...(input.active !== undefined ? { active: input.active } : {}),
            ...(input.metadata ? { metadata: input.metadata } : {}),
          },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Product' },
    );
    return toProductSnapshot(product);
  }

  async listProducts(filter: { active?: boolean } = {}): Promise<ProductSnapshot[]> {
    const products = await this.call('products.list', () =>
      this.stripe.products
        .list({ limit: 100, ...(filter.active !== undefined ? { active: filter.active } : {}) })
        .autoPagingToArray({ limit: PAGINATION_LIMIT }),
    );
    return products.map(toProductSnapshot);
  }

  async createPrice(input: CreatePriceInput): Promise<PriceSnapshot> {
    if (!Number.isInteger(input.unitAmount) || input.unitAmount < 0) {
      throw BillingError.badInput('unitAmount must be a non-negative integer number of minor units', 'unitAmount');
    }
    const recurring = input.recurring;
    if (recurring?.usageType === 'metered' && !recurring.meterId) {
      throw BillingError.badInput('A metered price needs a meter', 'meterId');
    }
    const price = await this.call('prices.create', () =>
      this.stripe.prices.create(
        {
          product: input.productId,
          currency: input.currency.toLowerCase(),
          unit_amount: input.unitAmount,
          ...(input.lookupKey ? { lookup_key: input.lookupKey } : {}),
          ...(input.transferLookupKey ? { transfer_lookup_key: true } : {}),
          ...(input.nickname ? { nickname: input.nickname } : {}),
          ...(input.metadata ? { metadata: input.metadata } : {}),
          ...(recurring
            ? {
                recurring: {
                  interval: recurring.interval,
                  ...(recurring.intervalCount ? { interval_count: recurring.intervalCount } : {}),
                  ...(recurring.usageType ? { usage_type: recurring.usageType } : {}),
                  ...(recurring.usageType === 'metered' ? { meter: recurring.meterId } : {}),
                },
              }
            : {}),
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toPriceSnapshot(price);
  }

  async updatePrice(input: UpdatePriceInput): Promise<PriceSnapshot> {
    const price = await this.call(
      'prices.update',
      () =>
        this.stripe.prices.update(
          input.id,
          {
            ...(input.active !== undefined ? { active: input.active } : {}),
            ...(input.lookupKey !== undefined ? { lookup_key: input.lookupKey } : {}),
            ...(input.transferLookupKey ? { transfer_lookup_key: true } : {}),
            ...(input.nickname !== undefined ? { nickname: input.nickname } : {}),
            ...(input.metadata ? { metadata: input.metadata } : {}),
          },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Price' },
    );
    return toPriceSnapshot(price);
  }

  async listPrices(filter: ListPricesInput = {}): Promise<PriceSnapshot[]> {
    const base: Stripe.PriceListParams = {
      limit: 100,
      ...(filter.productId ? { product: filter.productId } : {}),
      ...(filter.active !== undefined ? { active: filter.active } : {}),
    };
    const fetch = (params: Stripe.PriceListParams) =>
      this.call('prices.list', () => this.stripe.prices.list(params).autoPagingToArray({ limit: PAGINATION_LIMIT }));
    if (filter.lookupKeys !== undefined) {
      if (filter.lookupKeys.length === 0) return [];
      // Stripe accepts at most 10 lookup keys per request.
      const pages = await Promise.all(chunk(filter.lookupKeys, 10).map((keys) => fetch({ ...base, lookup_keys: keys })));
      return pages.flat().map(toPriceSnapshot);
    }
    return (await fetch(base)).map(toPriceSnapshot);
  }

  async retrievePrice(id: string): Promise<PriceSnapshot> {
    const price = await this.call('prices.retrieve', () => this.stripe.prices.retrieve(id, { expand: ['product'] }), {
      resource: 'Price',
    });
    return toPriceSnapshot(price);
  }

  async createMeter(input: CreateMeterInput): Promise<MeterSnapshot> {
    const meter = await this.call('billing.meters.create', () =>
      this.stripe.billing.meters.create(
        {
          event_name: input.eventName,
          display_name: input.displayName,
          default_aggregation: { formula: input.aggregation },
          customer_mapping: { type: 'by_id', event_payload_key: input.customerPayloadKey ?? 'stripe_customer_id' },
          value_settings: { event_payload_key: input.valuePayloadKey ?? 'value' },
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toMeterSnapshot(meter);
  }

  async listMeters(filter: { status?: 'active' | 'inactive' } = {}): Promise<MeterSnapshot[]> {
    const meters = await this.call('billing.meters.list', () =>
      this.stripe.billing.meters
        .list({ limit: 100, ...(filter.status ? { status: filter.status } : {}) })
        .autoPagingToArray({ limit: PAGINATION_LIMIT }),
    );
    return meters.map(toMeterSnapshot);
  }

  // Subscriptions

  async createSubscription(input: CreateSubscriptionInput): Promise<CreatedSubscription> {
    if (input.items.length === 0) throw BillingError.badInput('A subscription needs at least one price', 'items');
    const paymentBehavior = input.paymentBehavior ?? 'default_incomplete';
    const subscription = await this.call('subscriptions.create', () =>
      this.stripe.subscriptions.create(
        {
          customer: input.customerId,
          items: input.items.map((item) => ({
            price: item.priceId,
            ...(item.quantity !== undefined ? { quantity: item.quantity } : {}),
          })),
          payment_behavior: paymentBehavior,
          // The card confirmed for the first invoice becomes the default for renewals.
          ...(paymentBehavior === 'default_incomplete'
            ? { payment_settings: { save_default_payment_method: 'on_subscription' as const } }
            : {}),
          ...(input.trialDays ? { trial_period_days: input.trialDays } : {}),
          ...(input.metadata ? { metadata: input.metadata } : {}),
          expand: ['latest_invoice.confirmation_secret'],
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return { subscription: toSubscriptionSnapshot(subscription), clientSecret: subscriptionClientSecret(subscription) };
  }

  async retrieveSubscription(id: string): Promise<SubscriptionSnapshot> {
    const subscription = await this.call('subscriptions.retrieve', () => this.stripe.subscriptions.retrieve(id), {
      resource: 'Subscription',
    });
    return toSubscriptionSnapshot(subscription);
  }

  async updateSubscription(input: UpdateSubscriptionInput): Promise<SubscriptionSnapshot> {
    if (input.priceId === undefined && input.quantity === undefined) {
      throw BillingError.badInput('Nothing to change: give a price or a quantity');
    }
    const subscription = await this.call(
      'subscriptions.update',
      () =>
        this.stripe.subscriptions.update(
          input.id,
          {
            items: [
              {
                id: input.itemId,
                ...(input.priceId !== undefined ? { price: input.priceId } : {}),
                ...(input.quantity !== undefined ? { quantity: input.quantity } : {}),
              },
            ],
            ...(input.prorationBehavior ? { proration_behavior: input.prorationBehavior } : {}),
          },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Subscription' },
    );
    return toSubscriptionSnapshot(subscription);
  }

  async cancelSubscription(input: CancelSubscriptionInput): Promise<SubscriptionSnapshot> {
    if (input.atPeriodEnd) {
      const subscription = await this.call(
        'subscriptions.update',
        () =>
          this.stripe.subscriptions.update(
            input.id,
            { cancel_at_period_end: true },
            { idempotencyKey: input.idempotencyKey },
          ),
        { resource: 'Subscription' },
      );
      return toSubscriptionSnapshot(subscription);
    }
    // DELETE requests take no idempotency key at Stripe; cancelling twice is made harmless by
    // answering with the already canceled subscription instead.
    try {
      const subscription = await this.call('subscriptions.cancel', () => this.stripe.subscriptions.cancel(input.id), {
        resource: 'Subscription',
      });
      return toSubscriptionSnapshot(subscription);
    } catch (error) {
      // Stripe answers a DELETE on a canceled subscription with an error (resource_missing,
      // although the subscription can still be read); a retried cancel must not fail for it.
      const rejected =
        error instanceof BillingError &&
        (error.code === ErrorCode.NOT_FOUND || error.details.statusCode === 400);
      if (rejected) {
        const current = await this.retrieveSubscription(input.id);
        if (current.status === 'canceled') return current;
      }
      throw error;
    }
  }

  async resumeSubscription(input: { id: string; idempotencyKey: string }): Promise<SubscriptionSnapshot> {
    // Stripe's POST /v1/subscriptions/:id/resume is for *paused* subscriptions. Undoing a
    // scheduled cancellation is clearing cancel_at_period_end.
    const subscription = await this.call(
      'subscriptions.update',
      () =>
        this.stripe.subscriptions.update(
          input.id,
          { cancel_at_period_end: false },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Subscription' },
    );
    return toSubscriptionSnapshot(subscription);
  }

  async listSubscriptions(customerId: string): Promise<SubscriptionSnapshot[]> {
    const subscriptions = await this.call(
      'subscriptions.list',
      () =>
        this.stripe.subscriptions
          .list({ customer: customerId, status: 'all', limit: 100 })
          .autoPagingToArray({ limit: PAGINATION_LIMIT }),
      { resource: 'Customer' },
    );
    return subscriptions.map(toSubscriptionSnapshot);
  }

  // Checkout and portal

  async createCheckoutSession(input: CreateCheckoutSessionInput): Promise<CheckoutSessionSnapshot> {
    const metadata = input.metadata && Object.keys(input.metadata).length ? input.metadata : undefined;
    const session = await this.call('checkout.sessions.create', () =>
      this.stripe.checkout.sessions.create(
        {
          customer: input.customerId,
          mode: input.mode,
          // Metered line items take no quantity: Stripe rejects one.
          line_items: [{ price: input.priceId, quantity: input.quantity }, ...(input.meteredPriceIds ?? []).map((price) => ({ price }))],
          success_url: input.successUrl,
          cancel_url: input.cancelUrl,
          ...(input.clientReferenceId ? { client_reference_id: input.clientReferenceId } : {}),
          ...(metadata ? { metadata } : {}),
          ...(metadata && input.mode === 'subscription' ? { subscription_data: { metadata } } : {}),
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toCheckoutSessionSnapshot(session);
  }

  async retrieveCheckoutSession(id: string): Promise<CheckoutSessionSnapshot> {
    const session = await this.call(
      'checkout.sessions.retrieve',
      () => this.stripe.checkout.sessions.retrieve(id, { expand: ['subscription'] }),
      { resource: 'Checkout session' },
    );
    return toCheckoutSessionSnapshot(session);
  }

  async expireCheckoutSession(input: { id: string; idempotencyKey: string }): Promise<CheckoutSessionSnapshot> {
    const session = await this.call(
      'checkout.sessions.expire',
      async () => {
        try {
          return await this.stripe.checkout.sessions.expire(input.id, { expand: ['subscription'] }, { idempotencyKey: input.idempotencyKey });
        } catch (error) {
          // Stripe refuses to expire a session that is no longer open (paid or expired meanwhile):
          // what the session is now is the answer, read below.
          if (isStripeSdkError(error) && error.type === 'StripeInvalidRequestError' && error.code !== 'resource_missing') return null;
          throw error;
        }
      },
      { resource: 'Checkout session' },
    );
    if (session) return toCheckoutSessionSnapshot(session);
    const current = await this.retrieveCheckoutSession(input.id);
    if (current.status === 'open') {
      this.logger.warn({ operation: 'checkout.sessions.expire' }, 'Stripe refused to expire an open Checkout session');
      throw new BillingError(ErrorCode.PAYMENT_PROVIDER_ERROR, 'The payment provider could not close an earlier Checkout session; try again later.', { retryable: true });
    }
    return current;
  }

  async createBillingPortalSession(input: CreateBillingPortalSessionInput): Promise<BillingPortalSessionSnapshot> {
    const session = await this.call('billing_portal.sessions.create', () =>
      this.stripe.billingPortal.sessions.create(
        { customer: input.customerId, return_url: input.returnUrl },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toBillingPortalSessionSnapshot(session);
  }

  // Invoices

  async listInvoices(input: ListInvoicesInput): Promise<Page<InvoiceSnapshot>> {
    const limit = Math.min(Math.max(Math.trunc(input.limit ?? 10), 1), 100);
    const page = await this.call(
      'invoices.list',
      () =>
        this.stripe.invoices.list({
          customer: input.customerId,
          limit,
          ...(input.startingAfter ? { starting_after: input.startingAfter } : {}),
        }),
      { resource: 'Invoice' },
    );
    const data = page.data.map(toInvoiceSnapshot);
    return { data, hasMore: page.has_more, nextCursor: page.has_more && data.length ? data[data.length - 1].id : null };
  }

  async retrieveInvoice(id: string): Promise<InvoiceSnapshot> {
    const invoice = await this.call('invoices.retrieve', () => this.stripe.invoices.retrieve(id), {
      resource: 'Invoice',
    });
    return toInvoiceSnapshot(invoice);
  }

  // Usage

  sendMeterEvents(events: MeterEventInput[]): Promise<SendMeterEventsResult> {
    return this.meterEvents.send(events);
  }

  // Events and webhooks

  async retrieveEvent(id: string): Promise<StripeEventSnapshot> {
    const event = await this.call('events.retrieve', () => this.stripe.events.retrieve(id), { resource: 'Event' });
    return toEventSnapshot(event);
  }

  async listEvents(input: { createdAfter?: Date; startingAfter?: string; limit?: number }): Promise<Page<StripeEventSnapshot>> {
    const limit = Math.min(Math.max(Math.trunc(input.limit ?? 100), 1), 100);
    const page = await this.call(
      'events.list',
      () =>
        this.stripe.events.list({
          limit,
          ...(input.createdAfter ? { created: { gt: Math.floor(input.createdAfter.getTime() / 1000) } } : {}),
          ...(input.startingAfter ? { starting_after: input.startingAfter } : {}),
        }),
      { resource: 'Event' },
    );
    const data = page.data.map((event) => toEventSnapshot(event));
    return { data, hasMore: page.has_more, nextCursor: page.has_more && data.length ? data[data.length - 1].id : null };
  }

  constructWebhookEvent(rawBody: Buffer | string, signatureHeader: string | undefined): StripeEventSnapshot {
    if (!this.webhookSecret) {
      throw new BillingError(ErrorCode.INTERNAL_SERVER_ERROR, 'Webhook secret is not configured');
    }
    if (!signatureHeader) throw new WebhookSignatureError('missing_signature', 'Missing Stripe-Signature header.');
    let event: Stripe.Event;
    try {
      event = this.stripe.webhooks.constructEvent(rawBody, signatureHeader, this.webhookSecret, this.webhookTolerance);
    } catch (error) {
      if (isStripeSdkError(error) && error.type === 'StripeSignatureVerificationError') {
        const stale = /timestamp outside the tolerance zone/i.test(error.message);
        throw new WebhookSignatureError(
          'invalid_signature',
          stale ? 'Webhook signature timestamp is too old.' : 'Invalid webhook signature.',
        );
      }
      // The signature matched but the body is not JSON: signed garbage is still not an event.
      throw new WebhookSignatureError('invalid_payload', 'Webhook payload is not a valid event.');
    }
    if (!isEventShaped(event)) {
      throw new WebhookSignatureError('invalid_payload', 'Webhook payload is not a valid event.');
    }
    // constructEvent parsed the body: the event is plain JSON already, with nothing to copy.
    return toEventSnapshot(event, { plainJson: true });
  }

  // Entitlements

  async listFeatures(): Promise<FeatureSnapshot[]> {
    const features = await this.call('entitlements.features.list', () =>
      this.stripe.entitlements.features.list({ limit: 100 }).autoPagingToArray({ limit: PAGINATION_LIMIT }),
    );
    return features.map(toFeatureSnapshot);
  }

  async createFeature(input: { name: string; lookupKey: string; metadata?: Record<string, string>; idempotencyKey: string }): Promise<FeatureSnapshot> {
    const feature = await this.call('entitlements.features.create', () =>
      this.stripe.entitlements.features.create(
        { name: input.name, lookup_key: input.lookupKey, ...(input.metadata ? { metadata: input.metadata } : {}) },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toFeatureSnapshot(feature);
  }

  async updateFeature(input: { id: string; name?: string; active?: boolean; idempotencyKey: string }): Promise<FeatureSnapshot> {
    const feature = await this.call(
      'entitlements.features.update',
      () =>
        this.stripe.entitlements.features.update(
          input.id,
          { ...(input.name !== undefined ? { name: input.name } : {}), ...(input.active !== undefined ? { active: input.active } : {}) },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Feature' },
    );
    return toFeatureSnapshot(feature);
  }

  async listProductFeatures(productId: string): Promise<ProductFeatureSnapshot[]> {
    const features = await this.call(
      'products.listFeatures',
      () => this.stripe.products.listFeatures(productId, { limit: 100 }).autoPagingToArray({ limit: PAGINATION_LIMIT }),
      { resource: 'Product' },
    );
    return features.map((pf) => ({ id: pf.id, productId, feature: toFeatureSnapshot(pf.entitlement_feature) }));
  }

  async attachProductFeature(input: { productId: string; featureId: string; idempotencyKey: string }): Promise<ProductFeatureSnapshot> {
    const pf = await this.call(
      'products.createFeature',
      () => this.stripe.products.createFeature(input.productId, { entitlement_feature: input.featureId }, { idempotencyKey: input.idempotencyKey }),
      { resource: 'Product' },
    );
    return { id: pf.id, productId: input.productId, feature: toFeatureSnapshot(pf.entitlement_feature) };
  }

  async detachProductFeature(input: { productId: string; productFeatureId: string }): Promise<void> {
    try {
      await this.call('products.deleteFeature', () => this.stripe.products.deleteFeature(input.productId, input.productFeatureId), { resource: 'Product feature' });
    } catch (error) {
      if (!(error instanceof BillingError && error.code === ErrorCode.NOT_FOUND)) throw error;
    }
  }

  async listActiveEntitlements(customerId: string): Promise<ActiveEntitlementSnapshot[]> {
    const entitlements = await this.call(
      'entitlements.activeEntitlements.list',
      () => this.stripe.entitlements.activeEntitlements.list({ customer: customerId, limit: 100 }).autoPagingToArray({ limit: PAGINATION_LIMIT }),
      { resource: 'Customer' },
    );
    return entitlements.map((e) => ({ id: e.id, featureId: typeof e.feature === 'string' ? e.feature : e.feature.id, lookupKey: e.lookup_key }));
  }
}

function toFeatureSnapshot(feature: Stripe.Entitlements.Feature): FeatureSnapshot {
  return { id: feature.id, lookupKey: feature.lookup_key, name: feature.name, active: feature.active, metadata: { ...(feature.metadata ?? {}) } };
}

/** Latest `created` accepted: far beyond any real event, and still a date PostgreSQL can store. */
const MAX_EVENT_CREATED = 10 ** 11;

/**
 * What recording an event relies on. Stripe's own events always pass; a correctly signed body
 * that does not (an empty id, a `created` no database can store) is refused like any other
 * non-event instead of failing to record with a 500 that Stripe would retry for days.
 */
function isEventShaped(event: unknown): event is Stripe.Event {
  if (!event || typeof event !== 'object' || Array.isArray(event)) return false;
  const e = event as Record<string, unknown>;
  const nonEmpty = (v: unknown) => typeof v === 'string' && v.length > 0;
  const created = e.created;
  const data = e.data;
  return (
    nonEmpty(e.id) &&
    nonEmpty(e.type) &&
    (created === undefined || (typeof created === 'number' && Number.isInteger(created) && created >= 0 && created <= MAX_EVENT_CREATED)) &&
    (e.api_version === undefined || e.api_version === null || typeof e.api_version === 'string') &&
    (data === undefined || (typeof data === 'object' && data !== null && !Array.isArray(data)))
  );
}
