/** Customers: create, retrieve, update, list (email filter), delete. */
import { invalidRequest, noSuch } from '../errors';
import { newId, randomToken } from '../ids';
import { applyMetadata, int, obj, str, strList } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { attachPaymentMethod, resolvePaymentMethod } from './payment-methods';

export function getCustomer(store: Store, id: string, param = 'customer'): Obj {
  const c = store.get('customer', id);
  if (!c) throw noSuch('customer', id, param);
  return c;
}

export function createCustomer(store: Store, fields: { email?: string | null; name?: string | null; metadata?: Obj; testClock?: string | null }): Obj {
  const c: Obj = {
    id: newId('cus_', 14),
    object: 'customer',
    address: null,
    balance: 0,
    created: store.now(),
    currency: null,
    customer_account: null,
    default_source: null,
    delinquent: false,
    description: null,
    discount: null,
    email: fields.email ?? null,
    invoice_prefix: randomToken(8).toUpperCase(),
    invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
    livemode: false,
    metadata: fields.metadata ?? {},
    name: fields.name ?? null,
    next_invoice_sequence: 1,
    phone: null,
    preferred_locales: [],
    shipping: null,
    tax_exempt: 'none',
    test_clock: fields.testClock ?? null,
  };
  return store.insert('customer', c);
}

/** Applies `payment_method` and `invoice_settings[default_payment_method]` (tokens allowed). */
function applyPaymentSettings(store: Store, c: Obj, p: Obj): void {
  const seen = new Map<string, Obj>();
  const pmId = str(p, 'payment_method');
  if (pmId) attachPaymentMethod(store, resolvePaymentMethod(store, pmId, 'payment_method', seen), c.id);
  const settings = obj(p, 'invoice_settings');
  if (settings && 'default_payment_method' in settings) {
    const dpm = str(settings, 'default_payment_method');
    if (!dpm) {
      c.invoice_settings.default_payment_method = null;
    } else {
      const pm = resolvePaymentMethod(store, dpm, 'invoice_settings[default_payment_method]', seen);
      if (pm.customer !== c.id) {
        throw invalidRequest(
          `The customer does not have a payment method with the ID ${dpm}. The payment method must be attached to the customer.`,
          'invoice_settings[default_payment_method]',
          'resource_missing',
        );
      }
      c.invoice_settings.default_payment_method = pm.id;
    }
  }
}

const SIMPLE_FIELDS = ['email', 'name', 'description', 'phone'] as const;

const ADDRESS_KEYS = ['city', 'country', 'line1', 'line2', 'postal_code', 'state'] as const;

function address(a: Obj): Obj {
  const o: Obj = {};
  for (const k of ADDRESS_KEYS) o[k] = str(a, k) ?? null;
  return o;
}

/** Fields both create and update take as given: balance, tax status, locales, addresses. */
function applyProfile(c: Obj, p: Obj): void {
  const balance = int(p, 'balance');
  if (balance !== undefined) c.balance = balance;
  if ('tax_exempt' in p) c.tax_exempt = str(p, 'tax_exempt') ?? 'none';
  if ('preferred_locales' in p) c.preferred_locales = strList(p, 'preferred_locales') ?? [];
  if ('invoice_prefix' in p && str(p, 'invoice_prefix')) c.invoice_prefix = str(p, 'invoice_prefix');
  if ('address' in p) {
    const a = obj(p, 'address');
    c.address = a ? address(a) : null;
  }
  if ('shipping' in p) {
    const s = obj(p, 'shipping');
    c.shipping = s ? { address: address(obj(s, 'address') ?? {}), name: str(s, 'name') ?? null, phone: str(s, 'phone') ?? null } : null;
  }
}

export function registerCustomers(router: Router, store: Store): void {
  router.add('POST', '/v1/customers', (ctx) => {
    const p = ctx.params;
    const testClock = str(p, 'test_clock');
    if (testClock && !store.get('test_helpers.test_clock', testClock)) throw noSuch('test_helpers.test_clock', testClock, 'test_clock');
    const c = createCustomer(store, { email: str(p, 'email'), name: str(p, 'name'), metadata: applyMetadata({}, p), testClock });
    for (const f of ['description', 'phone'] as const) if (str(p, f)) c[f] = str(p, f);
    applyProfile(c, p);
    try {
      applyPaymentSettings(store, c, p);
    } catch (e) {
      store.remove('customer', c.id);
      throw e;
    }
    store.emit('customer.created', c);
    return out(ctx, c);
  });

  router.add('GET', '/v1/customers/:id', (ctx) => {
    const c = store.get('customer', ctx.pathParams.id);
    if (!c) {
      const deleted = store.get('deleted_customer', ctx.pathParams.id);
      if (deleted) return { id: deleted.id, object: 'customer', deleted: true };
      throw noSuch('customer', ctx.pathParams.id, 'id');
    }
    return out(ctx, c);
  });

  router.add('POST', '/v1/customers/:id', (ctx) => {
    const c = getCustomer(store, ctx.pathParams.id, 'id');
    const p = ctx.params;
    const before = store.render(c);
    for (const f of SIMPLE_FIELDS) if (f in p) c[f] = str(p, f) ?? null;
    applyProfile(c, p);
    c.metadata = applyMetadata(c.metadata, p);
    applyPaymentSettings(store, c, p);
    const prev = diff(before, store.render(c));
    if (Object.keys(prev).length) store.emit('customer.updated', c, prev);
    return out(ctx, c);
  });

  router.add('DELETE', '/v1/customers/:id', (ctx) => {
    const c = getCustomer(store, ctx.pathParams.id, 'id');
    deleteCustomer(store, c);
    return { id: c.id, object: 'customer', deleted: true };
  });

  router.add('GET', '/v1/customers', (ctx) => {
    let items = store.list('customer');
    const email = str(ctx.params, 'email');
    if (email) items = items.filter((c) => c.email === email);
    return listOut(ctx, items);
  });

}

/** Deletes a customer, canceling its subscriptions at once, as on Stripe. */
export function deleteCustomer(store: Store, c: Obj): void {
  for (const s of store.list('subscription')) {
    if (s.customer === c.id && !['canceled', 'incomplete_expired'].includes(s.status)) {
      const prev = { status: s.status };
      s.status = 'canceled';
      s.canceled_at = store.now();
      s.ended_at = store.now();
      store.emit('customer.subscription.deleted', s, prev);
    }
  }
  store.remove('customer', c.id);
  store.insert('deleted_customer', { id: c.id, object: 'deleted_customer' });
  store.emit('customer.deleted', c);
}

/** previous_attributes for an update: old values of the top-level fields that changed. */
export function diff(before: Obj, after: Obj): Obj {
  const prev: Obj = {};
  for (const k of Object.keys(before)) {
    if (JSON.stringify(before[k]) !== JSON.stringify(after[k])) prev[k] = before[k];
  }
  return prev;
}
