import Stripe from 'stripe';
import { BillingError, ErrorCode } from '../common/errors';
import { meterEventIdempotencyKey } from './idempotency';
import {
  isStripeSdkError,
  loggableStripeError,
  toBillingError,
  WebhookSignatureError,
  type StripeErrorContext,
} from './stripe-errors';
import type {
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
  InvoiceSnapshot,
  ListInvoicesInput,
  ListPricesInput,
  MeterEventInput,
  MeterEventOutcome,
  MeterSnapshot,
  Page,
  PriceSnapshot,
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

export interface StripeGatewayLogger {
  warn(obj: object, msg?: string): void;
}

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

/** Stripe takes at most this many events per v2 meter event stream request. */
export const METER_STREAM_BATCH_SIZE = 100;
/** Renew the stream session this long before Stripe says it expires. */
const METER_SESSION_RENEW_MARGIN_MS = 60_000;
/** Concurrency of the one-by-one v1 fallback. */
const V1_METER_EVENT_CONCURRENCY = 5;
const MAX_RATE_LIMIT_DELAY_MS = 5_000;
const PAGINATION_LIMIT = 10_000;

type MeterEventStreamParams = Parameters<Stripe['v2']['billing']['meterEventStream']['create']>[0];

const noopLogger: StripeGatewayLogger = { warn: () => undefined };

/** Derives the mode from configuration alone, so start-up can print it before any request. */
export function stripeModeFor(secretKey: string, apiBase?: string): StripeMode {
  if (apiBase) return 'emulator';
  if (/^(sk|rk)_live_/.test(secretKey)) return 'live';
  return 'test';
}

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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}

function toUnixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
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
  private readonly maxRetries: number;
  private readonly logger: StripeGatewayLogger;
  private readonly meterEventTransport: 'auto' | 'v1';
  private meterSession: { token: string; expiresAt: number } | null = null;
  private meterSessionPending: Promise<string> | null = null;
  private meterStreamUnavailable = false;
  /** Plan changes: item updates, schedules, invoice previews. */
  private readonly changes: SubscriptionChangeCalls;

  constructor(options: StripeSdkGatewayOptions) {
    if (!options.secretKey) throw new TypeError('secretKey is required');
    this.secretKey = options.secretKey;
    this.mode = stripeModeFor(options.secretKey, options.apiBase);
    this.webhookSecret = options.webhookSecret || undefined;
    this.webhookTolerance = options.webhookToleranceSeconds ?? 300;
    this.maxRetries = options.maxNetworkRetries ?? 2;
    this.logger = options.logger ?? noopLogger;
    this.meterEventTransport = options.meterEventTransport ?? 'auto';
    this.stripe = new Stripe(options.secretKey, {
      maxNetworkRetries: this.maxRetries,
      ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}),
      ...(options.apiBase ? sdkHostConfig(options.apiBase) : {}),
      telemetry: false,
      appInfo: { name: 'tollgate' },
    });
    this.changes = new SubscriptionChangeCalls(this.stripe, (operation, fn, context) => this.call(operation, fn, context));
  }

  changeSubscriptionItems: StripeGateway['changeSubscriptionItems'] = (input) => this.changes.changeSubscriptionItems(input);
  previewSubscriptionInvoice: StripeGateway['previewSubscriptionInvoice'] = (input) => this.changes.previewSubscriptionInvoice(input);
  createScheduleFromSubscription: StripeGateway['createScheduleFromSubscription'] = (input) => this.changes.createScheduleFromSubscription(input);
  updateSchedulePhases: StripeGateway['updateSchedulePhases'] = (input) => this.changes.updateSchedulePhases(input);
  releaseSchedule: StripeGateway['releaseSchedule'] = (input) => this.changes.releaseSchedule(input);
  retrieveSchedule: StripeGateway['retrieveSchedule'] = (id) => this.changes.retrieveSchedule(id);

  /**
   * Runs one SDK call and maps its failure to a BillingError. The SDK retries connection
   * errors, 409 and 5xx itself; a 429 is retried by the SDK only when Stripe sends
   * `Stripe-Should-Retry: true`, so other rate limits are retried here, with backoff and the
   * same request (hence the same idempotency key).
   */
  private async call<T>(operation: string, fn: () => Promise<T>, context: StripeErrorContext = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (this.isRateLimit(error) && attempt < this.maxRetries) {
          const delay = this.rateLimitDelay(error, attempt);
          this.logger.warn({ operation, attempt: attempt + 1, delayMs: delay, ...loggableStripeError(error) }, 'Stripe rate limit, retrying');
          await sleep(delay);
          continue;
        }
        const mapped = toBillingError(error, { ...context, secrets: [this.secretKey, ...(context.secrets ?? [])] });
        if (mapped.code === ErrorCode.PAYMENT_PROVIDER_ERROR || mapped.code === ErrorCode.INTERNAL_SERVER_ERROR) {
          this.logger.warn({ operation, code: mapped.code, ...loggableStripeError(error) }, 'Stripe request failed');
        }
        throw mapped;
      }
    }
  }

  /**
   * A rate limit the SDK did not retry. With `Stripe-Should-Retry: true` the SDK has already
   * spent its retries on it, and retrying again here would multiply the attempts.
   */
  private isRateLimit(error: unknown): boolean {
    if (!isStripeSdkError(error)) return false;
    const limited = error.type === 'StripeRateLimitError' || error.type === 'RateLimitError' || error.statusCode === 429;
    const sdkRetried = (error as { headers?: Record<string, string> }).headers?.['stripe-should-retry'] === 'true';
    return limited && !sdkRetried;
  }

  private rateLimitDelay(error: unknown, attempt: number): number {
    const header = (error as { headers?: Record<string, string> }).headers?.['retry-after'];
    const seconds = header !== undefined ? Number(header) : NaN;
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_RATE_LIMIT_DELAY_MS);
    const base = Math.min(250 * 2 ** attempt, MAX_RATE_LIMIT_DELAY_MS);
    return base / 2 + Math.random() * (base / 2);
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

  async sendMeterEvents(events: MeterEventInput[]): Promise<SendMeterEventsResult> {
    for (const event of events) {
      if (!Number.isFinite(event.value)) throw BillingError.badInput('Meter event value must be a finite number', 'value');
      if (!event.identifier) throw BillingError.badInput('Meter event identifier is required', 'identifier');
    }
    if (events.length === 0) return { transport: this.useStream() ? 'v2_stream' : 'v1', outcomes: [] };
    if (this.useStream()) {
      const outcomes = await this.sendThroughStream(events);
      if (outcomes) return { transport: 'v2_stream', outcomes };
    }
    return { transport: 'v1', outcomes: await this.sendThroughV1(events) };
  }

  private useStream(): boolean {
    return this.meterEventTransport === 'auto' && !this.meterStreamUnavailable;
  }

  /** Null when the stream turned out to be unavailable (the caller falls back to v1). */
  private async sendThroughStream(events: MeterEventInput[]): Promise<MeterEventOutcome[] | null> {
    const outcomes: MeterEventOutcome[] = [];
    for (const batch of chunk(events, METER_STREAM_BATCH_SIZE)) {
      const result = await this.sendStreamBatch(batch);
      if (result === 'unavailable') {
        if (outcomes.length === 0) return null;
        outcomes.push(...(await this.sendThroughV1(events.slice(outcomes.length))));
        return outcomes;
      }
      outcomes.push(...result);
    }
    return outcomes;
  }

  private async sendStreamBatch(batch: MeterEventInput[]): Promise<MeterEventOutcome[] | 'unavailable'> {
    const body: MeterEventStreamParams = {
      events: batch.map((e) => ({
        event_name: e.eventName,
        identifier: e.identifier,
        timestamp: e.timestamp.toISOString(),
        payload: { stripe_customer_id: e.stripeCustomerId, value: String(e.value) },
      })),
    };
    for (let attempt = 0; ; attempt++) {
      let token: string;
      try {
        token = await this.meterSessionToken();
      } catch (error) {
        if (this.isEndpointMissing(error)) return this.markStreamUnavailable(error);
        return this.failAll(batch, error);
      }
      try {
        // The stream authenticates with the session token, not the secret key. The SDK sends it
        // to meter-events.stripe.com, or to the configured custom host (emulator, stripe-mock).
        await this.stripe.v2.billing.meterEventStream.create(body, { apiKey: token });
        return batch.map((e) => ({ identifier: e.identifier, status: 'accepted', retryable: false }));
      } catch (error) {
        if (isStripeSdkError(error) && error.type === 'TemporarySessionExpiredError' && attempt === 0) {
          this.meterSession = null;
          continue;
        }
        if (this.isEndpointMissing(error)) return this.markStreamUnavailable(error);
        if (this.isRateLimit(error) && attempt < this.maxRetries) {
          await sleep(this.rateLimitDelay(error, attempt));
          continue;
        }
        if (isStripeSdkError(error) && error.statusCode === 400) {
          // One invalid event fails the whole batch; v1 validates each event on its own,
          // which tells the caller which ones are at fault.
          this.logger.warn({ count: batch.length, ...loggableStripeError(error) }, 'Meter event batch rejected, resending one by one');
          return this.sendThroughV1(batch);
        }
        return this.failAll(batch, error);
      }
    }
  }

  private isEndpointMissing(error: unknown): boolean {
    return isStripeSdkError(error) && error.statusCode === 404;
  }

  private markStreamUnavailable(error: unknown): 'unavailable' {
    this.meterStreamUnavailable = true;
    this.logger.warn(loggableStripeError(error), 'Meter event stream unavailable, using v1 meter events');
    return 'unavailable';
  }

  private failAll(batch: MeterEventInput[], error: unknown): MeterEventOutcome[] {
    const mapped = toBillingError(error, { secrets: [this.secretKey] });
    this.logger.warn({ count: batch.length, ...loggableStripeError(error) }, 'Meter events not delivered');
    return batch.map((e) => ({
      identifier: e.identifier,
      status: 'failed',
      retryable: mapped.details.retryable === true,
      error: { code: mapped.code, message: mapped.message },
    }));
  }

  /** A valid session token, shared by concurrent callers and renewed before it expires. */
  private async meterSessionToken(): Promise<string> {
    const session = this.meterSession;
    if (session && session.expiresAt - Date.now() > METER_SESSION_RENEW_MARGIN_MS) return session.token;
    if (!this.meterSessionPending) {
      this.meterSessionPending = (async () => {
        try {
          const created = await this.stripe.v2.billing.meterEventSession.create();
          const expiresAt = Date.parse(created.expires_at);
          this.meterSession = {
            token: created.authentication_token,
            // Stripe documents 15 minutes; trust its answer when it is readable.
            expiresAt: Number.isFinite(expiresAt) ? expiresAt : Date.now() + 15 * 60_000,
          };
          return created.authentication_token;
        } finally {
          this.meterSessionPending = null;
        }
      })();
    }
    return this.meterSessionPending;
  }

  private async sendThroughV1(events: MeterEventInput[]): Promise<MeterEventOutcome[]> {
    const outcomes = new Array<MeterEventOutcome>(events.length);
    let next = 0;
    const worker = async () => {
      while (next < events.length) {
        const index = next++;
        outcomes[index] = await this.sendOneV1(events[index]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(V1_METER_EVENT_CONCURRENCY, events.length) }, worker));
    return outcomes;
  }

  private async sendOneV1(event: MeterEventInput): Promise<MeterEventOutcome> {
    try {
      await this.call('billing.meter_events.create', () =>
        this.stripe.billing.meterEvents.create(
          {
            event_name: event.eventName,
            identifier: event.identifier,
            timestamp: toUnixSeconds(event.timestamp),
            payload: { stripe_customer_id: event.stripeCustomerId, value: String(event.value) },
          },
          { idempotencyKey: meterEventIdempotencyKey(event.identifier) },
        ),
      );
      return { identifier: event.identifier, status: 'accepted', retryable: false };
    } catch (error) {
      const mapped = error instanceof BillingError ? error : toBillingError(error);
      const cause = (mapped as { cause?: unknown }).cause;
      // Stripe rejects a second event with an identifier it has seen: it was delivered before.
      if (
        mapped.code === ErrorCode.CONFLICT ||
        (isStripeSdkError(cause) && /identifier/i.test(cause.message) && /already|duplicate|exists/i.test(cause.message))
      ) {
        return { identifier: event.identifier, status: 'duplicate', retryable: false };
      }
      return {
        identifier: event.identifier,
        status: 'failed',
        retryable: mapped.details.retryable === true,
        error: { code: mapped.code, message: mapped.message },
      };
    }
  }

  // Events and webhooks

  async retrieveEvent(id: string): Promise<StripeEventSnapshot> {
    const event = await this.call('events.retrieve', () => this.stripe.events.retrieve(id), { resource: 'Event' });
    return toEventSnapshot(event);
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
    return toEventSnapshot(event);
  }
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
