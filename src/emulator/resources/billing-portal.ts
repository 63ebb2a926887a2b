/**
 * Billing portal: sessions (`POST /v1/billing_portal/sessions`, a small hosted page at `url`) and
 * configurations (create, retrieve, update, list; a default one exists from the start, as on Stripe).
 */
import { ApiError, invalidRequest, noSuch } from '../errors';
import { newId, randomToken } from '../ids';
import { applyMetadata, bool, obj, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { diff } from './customers';
import { attachPaymentMethod, resolvePaymentMethod } from './payment-methods';
import { ENDED } from './subscription-model';

const DEFAULT_CONFIGURATION = 'bpc_emulator_default';

function defaultFeatures(): Obj {
  return {
    customer_update: { allowed_updates: [], enabled: false },
    invoice_history: { enabled: false },
    payment_method_update: { enabled: false, payment_method_configuration: null },
    subscription_cancel: {
      cancellation_reason: { enabled: false, options: [] },
      enabled: false,
      mode: 'at_period_end',
      proration_behavior: 'none',
    },
    subscription_update: {
      billing_cycle_anchor: null,
      default_allowed_updates: [],
      enabled: false,
      products: [],
      proration_behavior: 'none',
      schedule_at_period_end: { conditions: [] },
      trial_update_behavior: 'end_trial',
    },
  };
}

/** Merges form values into a template, turning `'true'`/`'false'` into booleans where the template has one. */
function merge(template: Obj, given: Obj): Obj {
  const outObj: Obj = { ...template };
  for (const [k, v] of Object.entries(given)) {
    const t = template[k];
    if (typeof t === 'boolean') outObj[k] = v === true || v === 'true';
    else if (t && typeof t === 'object' && !Array.isArray(t) && v && typeof v === 'object' && !Array.isArray(v)) outObj[k] = merge(t, v as Obj);
    else if (Array.isArray(t)) outObj[k] = v === '' ? [] : Array.isArray(v) ? v : Object.values(v as Obj);
    else outObj[k] = v === '' ? null : v;
  }
  return outObj;
}

function ensureDefaultConfiguration(store: Store): Obj {
  const existing = store.get('billing_portal.configuration', DEFAULT_CONFIGURATION);
  if (existing) return existing;
  const features = defaultFeatures();
  features.invoice_history.enabled = true;
  features.payment_method_update.enabled = true;
  features.subscription_cancel.enabled = true;
  const c = newConfiguration(store, { features }, DEFAULT_CONFIGURATION);
  c.is_default = true;
  return c;
}

function newConfiguration(store: Store, p: Obj, id = newId('bpc_')): Obj {
  const now = store.now();
  const bp = obj(p, 'business_profile') ?? {};
  const login = obj(p, 'login_page');
  const c: Obj = {
    id,
    object: 'billing_portal.configuration',
    active: true,
    application: null,
    business_profile: { headline: str(bp, 'headline') ?? null, privacy_policy_url: str(bp, 'privacy_policy_url') ?? null, terms_of_service_url: str(bp, 'terms_of_service_url') ?? null },
    created: now,
    default_return_url: str(p, 'default_return_url') ?? null,
    features: merge(defaultFeatures(), obj(p, 'features') ?? {}),
    is_default: false,
    livemode: false,
    login_page: { enabled: login ? (bool(login, 'enabled') ?? false) : false, url: null },
    metadata: applyMetadata({}, p),
    name: str(p, 'name') ?? null,
    updated: now,
  };
  if (c.login_page.enabled) c.login_page.url = `${store.baseUrl}/billing_portal/login/${randomToken(12)}`;
  store.insert('billing_portal.configuration', c);
  return c;
}

function getConfiguration(store: Store, id: string, param = 'configuration'): Obj {
  if (id === DEFAULT_CONFIGURATION) return ensureDefaultConfiguration(store);
  const c = store.get('billing_portal.configuration', id);
  if (!c) throw noSuch('billing_portal.configuration', id, param);
  return c;
}

/** Whether the session's configuration lets the customer replace their payment method. */
export function portalUpdatesPaymentMethod(store: Store, session: Obj): boolean {
  const c = store.get('billing_portal.configuration', session.configuration) ?? ensureDefaultConfiguration(store);
  return c.features?.payment_method_update?.enabled === true;
}

/**
 * The portal's "update payment method": attaches the card (a test token) and makes it the
 * customer's default for invoices and the default of each live subscription that names a
 * payment method of its own (which would otherwise still be charged), as Stripe's portal does.
 * The next retry of a failed invoice charges it. Returns an error message when the card cannot
 * be attached.
 */
export function portalReplaceCard(store: Store, session: Obj, token: string): string | null {
  const customer = store.get('customer', session.customer);
  if (!customer) return 'No such customer.';
  try {
    store.transaction(() => {
      const before = store.render(customer);
      const pm = attachPaymentMethod(store, resolvePaymentMethod(store, token), customer.id);
      customer.invoice_settings.default_payment_method = pm.id;
      store.emit('customer.updated', customer, diff(before, store.render(customer)));
      for (const sub of store.table('subscription').values()) {
        if (sub.customer !== customer.id || ENDED.includes(sub.status) || !sub.default_payment_method || sub.default_payment_method === pm.id) continue;
        const previous = { default_payment_method: sub.default_payment_method };
        sub.default_payment_method = pm.id;
        store.emit('customer.subscription.updated', sub, previous);
      }
    });
  } catch (e) {
    if (e instanceof ApiError) return e.body.message;
    throw e;
  }
  return null;
}

export function registerBillingPortal(router: Router, store: Store): void {
  router.add('POST', '/v1/billing_portal/configurations', (ctx) => {
    ensureDefaultConfiguration(store);
    const c = newConfiguration(store, ctx.params);
    store.emit('billing_portal.configuration.created', c);
    return out(ctx, c);
  });

  router.add('GET', '/v1/billing_portal/configurations/:id', (ctx) => out(ctx, getConfiguration(store, ctx.pathParams.id, 'configuration')));

  router.add('POST', '/v1/billing_portal/configurations/:id', (ctx) => {
    const c = getConfiguration(store, ctx.pathParams.id, 'configuration');
    const p = ctx.params;
    const active = bool(p, 'active');
    if (active === false && c.is_default) throw invalidRequest('You cannot deactivate the default configuration.', 'active', 'parameter_invalid_string');
    if (active !== undefined) c.active = active;
    const bp = obj(p, 'business_profile');
    if (bp) c.business_profile = merge(c.business_profile, bp);
    const features = obj(p, 'features');
    if (features) c.features = merge(c.features, features);
    if ('default_return_url' in p) c.default_return_url = str(p, 'default_return_url') ?? null;
    if ('name' in p) c.name = str(p, 'name') ?? null;
    c.metadata = applyMetadata(c.metadata, p);
    c.updated = store.now();
    store.emit('billing_portal.configuration.updated', c);
    return out(ctx, c);
  });

  router.add('GET', '/v1/billing_portal/configurations', (ctx) => {
    ensureDefaultConfiguration(store);
    let items = store.list('billing_portal.configuration');
    const active = bool(ctx.params, 'active');
    if (active !== undefined) items = items.filter((c) => c.active === active);
    const isDefault = bool(ctx.params, 'is_default');
    if (isDefault !== undefined) items = items.filter((c) => c.is_default === isDefault);
    return listOut(ctx, items);
  });

  router.add('POST', '/v1/billing_portal/sessions', (ctx) => {
    const customer = str(ctx.params, 'customer');
    if (!customer) throw invalidRequest('Missing required param: customer.', 'customer', 'parameter_missing');
    if (!store.get('customer', customer)) throw noSuch('customer', customer, 'customer');
    const configurationId = str(ctx.params, 'configuration') ?? DEFAULT_CONFIGURATION;
    const configuration = getConfiguration(store, configurationId, 'configuration');
    if (!configuration.active) throw invalidRequest('The configuration is not active.', 'configuration', 'parameter_invalid_string');
    const id = newId('bps_');
    const token = randomToken(24);
    const session = {
      id,
      object: 'billing_portal.session',
      configuration: configuration.id,
      created: store.now(),
      customer,
      customer_account: null,
      flow: null,
      livemode: false,
      locale: str(ctx.params, 'locale') ?? null,
      on_behalf_of: null,
      return_url: str(ctx.params, 'return_url') ?? configuration.default_return_url ?? null,
      url: `${store.baseUrl}/billing_portal/${id}?token=${token}`,
    };
    store.insert('billing_portal.session', session);
    return out(ctx, session);
  });
}
