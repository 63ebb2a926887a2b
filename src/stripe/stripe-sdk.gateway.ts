import Stripe from 'stripe';
import { stripeModeFor } from '../config/stripe-keys';
import { CatalogCalls } from './catalog.calls';
import { CheckoutCalls } from './checkout.calls';
import { CustomerCalls } from './customer.calls';
import { EntitlementCalls } from './entitlement.calls';
import { EventCalls } from './event.calls';
import { InvoiceCalls } from './invoice.calls';
import { MeterEventSender, METER_STREAM_BATCH_SIZE } from './meter-event-sender';
import { StripeCallPolicy, type CallPolicy, type StripeGatewayLogger } from './stripe-call-policy';
import type { StripeGateway, StripeMode } from './stripe.gateway';
import { SubscriptionCalls } from './subscription.calls';
import { SubscriptionChangeCalls } from './subscription-change.calls';
import { TestClockCalls } from './test-clock.calls';

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
  /** The name of the test clock new customers are put on (test mode only). */
  customerTestClock?: string;
}

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
 * The StripeGateway over the official SDK: the only place the SDK client is made. It builds the
 * client and the call policy, and hands each group of calls (one file per Stripe resource,
 * `*.calls.ts`) the client and the policy; the calls map Stripe's objects with the pure
 * mappers. The SDK's pinned API version is used (not overridden), so response shapes match its types.
 */
export class StripeSdkGateway implements StripeGateway {
  readonly enabled = true;
  readonly mode: StripeMode;
  private readonly stripe: Stripe;
  private readonly policy: StripeCallPolicy;
  private readonly customers: CustomerCalls;
  private readonly catalog: CatalogCalls;
  private readonly subscriptions: SubscriptionCalls;
  /** Plan changes: item updates, schedules, invoice previews. */
  private readonly changes: SubscriptionChangeCalls;
  /** Test clocks (test mode): the clock new customers are put on, and `npm run clock`. */
  readonly customerTestClock: string | null;
  private readonly clocks: TestClockCalls;
  private readonly checkout: CheckoutCalls;
  private readonly invoices: InvoiceCalls;
  private readonly meterEvents: MeterEventSender;
  private readonly events: EventCalls;
  private readonly entitlements: EntitlementCalls;

  constructor(options: StripeSdkGatewayOptions) {
    if (!options.secretKey) throw new TypeError('secretKey is required');
    this.mode = stripeModeFor(options.secretKey, options.apiBase);
    const maxRetries = options.maxNetworkRetries ?? 2;
    const logger = options.logger ?? noopLogger;
    this.stripe = new Stripe(options.secretKey, {
      maxNetworkRetries: maxRetries,
      ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}),
      ...(options.apiBase ? sdkHostConfig(options.apiBase) : {}),
      telemetry: false,
      appInfo: { name: 'tollgate' },
    });
    this.policy = new StripeCallPolicy({ secretKey: options.secretKey, maxRetries, logger });
    const call: CallPolicy = (operation, fn, context) => this.policy.run(operation, fn, context);
    this.customers = new CustomerCalls(this.stripe, call);
    this.catalog = new CatalogCalls(this.stripe, call);
    this.subscriptions = new SubscriptionCalls(this.stripe, call);
    this.changes = new SubscriptionChangeCalls(this.stripe, call);
    this.clocks = new TestClockCalls(this.stripe, call);
    this.customerTestClock = options.customerTestClock ?? null;
    this.checkout = new CheckoutCalls(this.stripe, call, logger);
    this.invoices = new InvoiceCalls(this.stripe, call);
    this.meterEvents = new MeterEventSender(this.stripe, this.policy, { transport: options.meterEventTransport ?? 'auto', logger });
    this.events = new EventCalls(this.stripe, call, options.webhookSecret || undefined, options.webhookToleranceSeconds ?? 300);
    this.entitlements = new EntitlementCalls(this.stripe, call);
  }

  // Customers and the billing portal

  createCustomer: StripeGateway['createCustomer'] = (input) => this.customers.createCustomer(input);
  retrieveCustomer: StripeGateway['retrieveCustomer'] = (id) => this.customers.retrieveCustomer(id);
  createBillingPortalSession: StripeGateway['createBillingPortalSession'] = (input) => this.customers.createBillingPortalSession(input);

  // Catalog

  createProduct: StripeGateway['createProduct'] = (input) => this.catalog.createProduct(input);
  updateProduct: StripeGateway['updateProduct'] = (input) => this.catalog.updateProduct(input);
  listProducts: StripeGateway['listProducts'] = (filter) => this.catalog.listProducts(filter);
  createPrice: StripeGateway['createPrice'] = (input) => this.catalog.createPrice(input);
  updatePrice: StripeGateway['updatePrice'] = (input) => this.catalog.updatePrice(input);
  listPrices: StripeGateway['listPrices'] = (filter) => this.catalog.listPrices(filter);
  retrievePrice: StripeGateway['retrievePrice'] = (id) => this.catalog.retrievePrice(id);
  createMeter: StripeGateway['createMeter'] = (input) => this.catalog.createMeter(input);
  listMeters: StripeGateway['listMeters'] = (filter) => this.catalog.listMeters(filter);

  // Subscriptions

  createSubscription: StripeGateway['createSubscription'] = (input) => this.subscriptions.createSubscription(input);
  retrieveSubscription: StripeGateway['retrieveSubscription'] = (id) => this.subscriptions.retrieveSubscription(id);
  updateSubscription: StripeGateway['updateSubscription'] = (input) => this.subscriptions.updateSubscription(input);
  cancelSubscription: StripeGateway['cancelSubscription'] = (input) => this.subscriptions.cancelSubscription(input);
  resumeSubscription: StripeGateway['resumeSubscription'] = (input) => this.subscriptions.resumeSubscription(input);
  listSubscriptions: StripeGateway['listSubscriptions'] = (customerId) => this.subscriptions.listSubscriptions(customerId);

  // Test clocks
  findOrCreateTestClock: StripeGateway['findOrCreateTestClock'] = (name) => this.clocks.findOrCreate(name);
  retrieveTestClock: StripeGateway['retrieveTestClock'] = (id) => this.clocks.retrieve(id);
  listTestClocks: StripeGateway['listTestClocks'] = () => this.clocks.list();
  advanceTestClock: StripeGateway['advanceTestClock'] = (input) => this.clocks.advance(input);
  switchTestCard: StripeGateway['switchTestCard'] = (input) => this.clocks.switchTestCard(input);

  // Plan changes and subscription schedules

  changeSubscriptionItems: StripeGateway['changeSubscriptionItems'] = (input) => this.changes.changeSubscriptionItems(input);
  previewSubscriptionInvoice: StripeGateway['previewSubscriptionInvoice'] = (input) => this.changes.previewSubscriptionInvoice(input);
  createScheduleFromSubscription: StripeGateway['createScheduleFromSubscription'] = (input) => this.changes.createScheduleFromSubscription(input);
  updateSchedulePhases: StripeGateway['updateSchedulePhases'] = (input) => this.changes.updateSchedulePhases(input);
  releaseSchedule: StripeGateway['releaseSchedule'] = (input) => this.changes.releaseSchedule(input);
  retrieveSchedule: StripeGateway['retrieveSchedule'] = (id) => this.changes.retrieveSchedule(id);

  // Checkout

  createCheckoutSession: StripeGateway['createCheckoutSession'] = (input) => this.checkout.createCheckoutSession(input);
  retrieveCheckoutSession: StripeGateway['retrieveCheckoutSession'] = (id) => this.checkout.retrieveCheckoutSession(id);
  expireCheckoutSession: StripeGateway['expireCheckoutSession'] = (input) => this.checkout.expireCheckoutSession(input);

  // Invoices

  listInvoices: StripeGateway['listInvoices'] = (input) => this.invoices.listInvoices(input);
  retrieveInvoice: StripeGateway['retrieveInvoice'] = (id) => this.invoices.retrieveInvoice(id);

  // Usage

  sendMeterEvents: StripeGateway['sendMeterEvents'] = (events) => this.meterEvents.send(events);

  // Events and webhooks

  retrieveEvent: StripeGateway['retrieveEvent'] = (id) => this.events.retrieveEvent(id);
  listEvents: StripeGateway['listEvents'] = (input) => this.events.listEvents(input);
  constructWebhookEvent: StripeGateway['constructWebhookEvent'] = (rawBody, signatureHeader) => this.events.constructWebhookEvent(rawBody, signatureHeader);

  // Entitlements

  listFeatures: StripeGateway['listFeatures'] = () => this.entitlements.listFeatures();
  createFeature: StripeGateway['createFeature'] = (input) => this.entitlements.createFeature(input);
  updateFeature: StripeGateway['updateFeature'] = (input) => this.entitlements.updateFeature(input);
  listProductFeatures: StripeGateway['listProductFeatures'] = (productId) => this.entitlements.listProductFeatures(productId);
  attachProductFeature: StripeGateway['attachProductFeature'] = (input) => this.entitlements.attachProductFeature(input);
  detachProductFeature: StripeGateway['detachProductFeature'] = (input) => this.entitlements.detachProductFeature(input);
  listActiveEntitlements: StripeGateway['listActiveEntitlements'] = (customerId) => this.entitlements.listActiveEntitlements(customerId);
}
