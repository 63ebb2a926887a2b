/**
 * A stateful Stripe emulator: Stripe's wire format over HTTP, state in memory (optionally saved
 * to a state file across restarts), signed webhooks, hosted Checkout/portal pages, a controllable
 * clock and injectable faults. For local mode, tests and benchmarks; it binds to loopback unless
 * told otherwise.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaultController } from './faults';
import { Router } from './router';
import { ApiServer } from './server';
import { Store } from './store';
import { WebhookDelivery } from './webhooks';
import { StatePersister } from './persistence';
import { controlRoutes } from './control';
import { hostedPages } from './hosted-pages';
import { registerCustomers } from './resources/customers';
import { registerPaymentMethods } from './resources/payment-methods';
import { registerProducts } from './resources/products';
import { registerPrices } from './resources/prices';
import { registerMeters } from './resources/meters';
import { registerMeterEvents, isSessionToken } from './resources/meter-events';
import { meterLog } from './resources/meter-event-log';
import { registerSubscriptions } from './resources/subscriptions';
import { registerInvoices } from './resources/invoices';
import { registerInvoicePreview } from './resources/invoice-preview';
import { registerSubscriptionSchedules } from './resources/subscription-schedule-routes';
import { registerPaymentIntents } from './resources/payment-intents';
import { registerCheckout } from './resources/checkout';
import { registerBillingPortal } from './resources/billing-portal';
import { registerEvents, createWebhookEndpoint } from './resources/events';
import { registerSearch } from './resources/search';
import { registerSubscriptionItems } from './resources/subscription-items';
import { registerInvoiceItems } from './resources/invoice-items';
import { registerCoupons } from './resources/coupons';
import { registerSetupIntents } from './resources/setup-intents';
import { registerRefunds } from './resources/refunds';
import { registerCustomerExtras } from './resources/customer-extras';
import { entitlementsAfterEvent, registerEntitlements } from './resources/entitlements';
import { registerTestClocks, requestClockTime } from './resources/test-clocks';
import { travel } from './resources/time-travel';
import { setDunning, type DunningSettings } from './resources/dunning-settings';

export { FaultController } from './faults';
export type { FaultSpec } from './faults';
export { signPayload } from './webhooks';
export { DEFAULT_API_VERSION } from './store';
export { DEFAULT_DUNNING } from './resources/dunning-settings';
export type { AfterLastRetry, DunningSettings } from './resources/dunning-settings';

export interface WebhookEndpointOption {
  url: string;
  secret?: string;
  enabledEvents?: string[];
}

export interface EmulatorOptions {
  /** 0 or omitted: a free port. */
  port?: number;
  /** Default 127.0.0.1; anything but loopback is refused unless allowNonLoopback. */
  host?: string;
  allowNonLoopback?: boolean;
  webhookEndpoints?: WebhookEndpointOption[];
  logger?: (line: string) => void;
  /** Delays between webhook delivery attempts; attempts = length + 1. */
  deliveryRetryDelaysMs?: number[];
  /**
   * Keeps the state in this JSON file across restarts: loaded on start when it exists, saved
   * (debounced) after changes and on close(), written atomically with mode 0600. A corrupt file
   * is logged once and replaced by an empty state. Webhook endpoints from `webhookEndpoints`
   * and `addWebhookEndpoint` are configuration and are not saved; those created through the
   * API are. Every API request that may change the state is also appended to
   * `<stateFile>.journal` before it is answered and replayed at start, so what was acknowledged
   * survives the process being killed.
   */
  stateFile?: string;
  /**
   * Flush each journal record to the disk (fdatasync) before answering: acknowledged requests
   * then survive a power cut too, not only a killed process. Costs a disk flush per request.
   */
  stateFsync?: boolean;
  /**
   * How long after a change the state file is saved (default 200 ms; the journal holds every
   * acknowledged request meanwhile). Longer delays write the file less often.
   */
  stateSaveDelayMs?: number;
  /**
   * How failed renewal payments are retried (Stripe's custom retry schedule): `retryDays`, the
   * days after the previous attempt at which each retry runs, and `afterLast`, what the
   * subscription becomes when the last retry fails (`cancel`, `unpaid` or left `past_due`).
   * Default: retries after 3, 5 and 7 days, then cancel. Replaying the journal after a restart
   * redoes past retries with the settings of the new start, so keep them the same.
   */
  dunning?: Partial<DunningSettings>;
}

export interface MeterEventStats {
  total_accepted: number;
  total_received: number;
  duplicates: number;
  by_identifier: Record<string, { received: number; accepted: number }>;
}

export interface RunningEmulator {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  addWebhookEndpoint(e: WebhookEndpointOption): { id: string; secret: string };
  faults: FaultController;
  /** Stops the server, pending deliveries and timers. */
  close(): Promise<void>;
  /** Meter events accepted (after identifier deduplication); for one identifier: 0 or 1 within 24 h. */
  meterEventCount(identifier?: string): number;
  /** Received vs accepted meter events, per identifier. */
  meterEventStats(): MeterEventStats;
  /**
   * Moves the emulator's global clock forward and runs what falls due (renewals, trial ends,
   * cancellations, payment retries) for every customer not on a test clock.
   */
  advanceClock(seconds: number): void;
  /** The emulator's current time, unix seconds. */
  now(): number;
  /** Clears all objects, events, idempotency keys and meter events (webhook endpoints from options stay). */
  reset(): void;
  /** Resolves when every queued webhook delivery is acknowledged or given up (or the timeout passes). */
  waitForWebhooks(timeoutMs?: number): Promise<void>;
  /** Events recorded so far, oldest first. */
  events(): Record<string, any>[];
}

function registerRoutes(router: Router, store: Store, delivery: WebhookDelivery): void {
  registerCustomers(router, store);
  registerPaymentMethods(router, store);
  registerProducts(router, store);
  registerPrices(router, store);
  registerMeters(router, store);
  registerMeterEvents(router, store);
  registerSubscriptions(router, store);
  registerSubscriptionSchedules(router, store);
  // Before registerInvoices: /v1/invoices/create_preview must not be taken for an invoice id.
  registerInvoicePreview(router, store);
  registerInvoices(router, store);
  registerPaymentIntents(router, store);
  registerCheckout(router, store);
  registerBillingPortal(router, store);
  registerEvents(router, store, delivery);
  registerSearch(router, store);
  registerSubscriptionItems(router, store);
  registerInvoiceItems(router, store);
  registerCoupons(router, store);
  registerSetupIntents(router, store);
  registerRefunds(router, store);
  registerCustomerExtras(router, store);
  registerEntitlements(router, store);
  registerTestClocks(router, store);
}

/** Every API route with the Stripe request type whose parameters it accepts (for checks and docs). */
export function describeRoutes(): ReturnType<Router['describe']> {
  const router = new Router();
  const store = new Store();
  const delivery = new WebhookDelivery([], () => undefined, () => 0);
  registerRoutes(router, store, delivery);
  delivery.close();
  return router.describe();
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '0:0:0:0:0:0:0:1']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const DEFAULT_RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 120_000, 600_000];

export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host) && !options.allowNonLoopback) {
    throw new Error(`The Stripe emulator only binds to loopback; refusing host ${host} (set allowNonLoopback to override).`);
  }
  const logger = options.logger ?? (() => undefined);
  const store = new Store();
  setDunning(store, options.dunning);
  const faults = new FaultController();
  const delivery = new WebhookDelivery(options.deliveryRetryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS, logger, () => Math.floor(Date.now() / 1000));
  store.onEvent = (e) => {
    delivery.enqueue(e);
    entitlementsAfterEvent(store, e);
  };
  store.countEndpointsFor = (type) => delivery.countFor(type);

  const router = new Router();
  registerRoutes(router, store, delivery);

  const initialEndpoints: { id: string; secret: string }[] = [];
  const addWebhookEndpoint = (e: WebhookEndpointOption) => {
    const we = createWebhookEndpoint(store, delivery, { url: e.url, secret: e.secret, enabledEvents: e.enabledEvents });
    we._config = true;
    return { id: we.id as string, secret: we._secret as string };
  };

  let persister: StatePersister | undefined;
  const advanceClock = (seconds: number) => {
    store.clockOffsetSeconds += Math.floor(seconds);
    try {
      store.transaction(() => {
        // Customers on a test clock move only with their clock.
        travel(store, null, store.globalNow());
      });
    } finally {
      // Not a journaled request when called in-process: saved at once, before later requests.
      persister?.save();
    }
  };

  const reset = () => {
    const keep = options.webhookEndpoints ?? [];
    for (const we of store.list('webhook_endpoint')) delivery.removeEndpoint(we.id);
    store.reset();
    meterLog(store).clear();
    api.resetIdempotency();
    faults.clear();
    keep.forEach((e, i) => {
      const we = createWebhookEndpoint(store, delivery, { url: e.url, secret: e.secret, enabledEvents: e.enabledEvents });
      we._config = true;
      if (initialEndpoints[i]) {
        delivery.removeEndpoint(we.id);
        store.remove('webhook_endpoint', we.id);
        we.id = initialEndpoints[i].id;
        we._secret = initialEndpoints[i].secret;
        store.insert('webhook_endpoint', we);
        delivery.setEndpoint({ id: we.id, url: we.url, secret: we._secret, enabledEvents: we.enabled_events });
      }
    });
    persister?.save();
  };

  const control = controlRoutes({ store, faults, delivery, advanceClock, reset });
  const pages = hostedPages(store);
  // reset() above runs only after start-up, once api exists.
  const api = new ApiServer(store, router, faults, (req) => control(req) ?? pages(req), logger);
  api.tokenAccepted = (token, path) => isSessionToken(store, token, path);
  api.clockTime = (ctx) => requestClockTime(store, ctx);

  const server = http.createServer(api.listener);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}`;
  store.baseUrl = url;
  if (options.stateFile) {
    // Loaded once the base URL is known (replayed requests build hosted-page URLs from it), in
    // one synchronous step: no request is handled before it is done.
    const p = new StatePersister(options.stateFile, { store, api, meters: meterLog(store), delivery }, logger, { fsync: options.stateFsync, debounceMs: options.stateSaveDelayMs });
    try {
      p.load();
    } catch (e) {
      await new Promise((resolve) => server.close(resolve));
      throw e;
    }
    api.persistence = { journal: (request) => p.record(request), saveNow: () => p.saveNow() };
    persister = p;
  }
  for (const e of options.webhookEndpoints ?? []) initialEndpoints.push(addWebhookEndpoint(e));
  logger(`Stripe emulator listening on ${url}`);

  let closed = false;
  return {
    url,
    port,
    faults,
    addWebhookEndpoint,
    advanceClock,
    reset,
    now: () => store.now(),
    meterEventCount: (identifier?: string) => meterLog(store).count(identifier),
    meterEventStats: () => meterLog(store).stats() as MeterEventStats,
    events: () => [...store.table('event').values()],
    waitForWebhooks: async (timeoutMs = 5_000) => {
      const deadline = Date.now() + timeoutMs;
      while (delivery.pendingCount() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    },
    close: async () => {
      if (closed) return;
      closed = true;
      delivery.close();
      api.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      persister?.close();
    },
  };
}
