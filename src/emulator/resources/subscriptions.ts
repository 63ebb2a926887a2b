/**
 * Subscriptions: create (trials, payment_behavior), retrieve, update (items, prorations,
 * cancel_at_period_end, trial_end=now), cancel, resume, list; plus the lifecycle the clock
 * drives (renewal invoices, trial ends, scheduled cancellation, incomplete expiry).
 */
import { cardError, invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, arr, bool, int, obj, str } from '../params';
import { addInterval, periodAt } from '../periods';
import type { Router } from '../router';
import { listOut, out } from '../router';
import { publicCopy, type Obj, type Store } from '../store';
import { diff, getCustomer } from './customers';
import { attemptInvoicePayment, createInvoice, finalizeInvoice, type LineSpec } from './invoices';
import { aggregateUsage } from './meters';
import { resolvePaymentMethod } from './payment-methods';
import { planOf } from './prices';
import { settlements } from './settlements';

const ENDED = ['canceled', 'incomplete_expired'];
/** Stripe expires a subscription left `incomplete` for 23 hours. */
const INCOMPLETE_WINDOW = 23 * 3600;

function money(amount: number, currency: string): string {
  return `${(amount / 100).toFixed(2)} ${currency.toUpperCase()}`;
}

function productName(store: Store, price: Obj): string {
  return store.get('product', price.product)?.name ?? price.product;
}

function renderItem(store: Store, item: Obj): Obj {
  const price = store.get('price', item.price) as Obj;
  const o = publicCopy(item);
  o.plan = planOf(price);
  o.price = store.render(price);
  if (price.recurring?.usage_type === 'metered') delete o.quantity;
  return o;
}

export function renderSubscription(store: Store, s: Obj): Obj {
  const o = publicCopy(s);
  o.items = {
    object: 'list',
    data: (s._items as Obj[]).map((i) => renderItem(store, i)),
    has_more: false,
    total_count: s._items.length,
    url: `/v1/subscription_items?subscription=${s.id}`,
  };
  return o;
}

export function getSubscription(store: Store, id: string, param = 'subscription'): Obj {
  const s = store.get('subscription', id);
  if (!s) throw noSuch('subscription', id, param);
  return s;
}

interface ItemInput {
  price: Obj;
  quantity: number;
  metadata: Obj;
}

function readItems(store: Store, raw: any[] | undefined, paramName: string): ItemInput[] {
  if (!raw || raw.length === 0) throw invalidRequest(`Missing required param: ${paramName}.`, paramName, 'parameter_missing');
  return raw.map((it: Obj, i) => {
    const priceId = str(it, 'price') ?? str(it, 'plan');
    if (!priceId) throw invalidRequest(`Missing required param: ${paramName}[${i}][price].`, `${paramName}[${i}][price]`, 'parameter_missing');
    const price = store.get('price', priceId);
    if (!price) throw noSuch('price', priceId, `${paramName}[${i}][price]`);
    checkRecurring(price, `${paramName}[${i}][price]`);
    const quantity = int(it, 'quantity', `${paramName}[${i}][quantity]`) ?? 1;
    if (price.recurring.usage_type === 'metered' && it.quantity !== undefined) {
      throw invalidRequest('Quantity should not be specified where usage_type is `metered`. Remove quantity from `items[0]`.', `${paramName}[${i}][quantity]`);
    }
    return { price, quantity, metadata: applyMetadata({}, it) };
  });
}

function checkRecurring(price: Obj, param: string): void {
  if (!price.recurring) {
    throw invalidRequest('The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.', param);
  }
  if (!price.active) throw invalidRequest(`The price specified is inactive. This field only accepts active prices.`, param);
}

function newItem(store: Store, sub: Obj, input: ItemInput, period: { start: number; end: number }): Obj {
  const item: Obj = {
    id: newId('si_', 14),
    object: 'subscription_item',
    billing_thresholds: null,
    created: store.now(),
    current_period_end: period.end,
    current_period_start: period.start,
    current_trial: null,
    discounts: [],
    metadata: input.metadata,
    plan: null,
    price: input.price.id,
    quantity: input.quantity,
    subscription: sub.id,
    tax_rates: [],
  };
  store.insert('subscription_item', item);
  return item;
}

function currentPeriod(sub: Obj): { start: number; end: number } {
  const first = sub._items[0];
  return { start: first.current_period_start, end: first.current_period_end };
}

function setPeriod(sub: Obj, period: { start: number; end: number }): void {
  for (const i of sub._items) {
    i.current_period_start = period.start;
    i.current_period_end = period.end;
  }
}

function cycleOf(store: Store, sub: Obj): { interval: string; count: number } {
  const price = store.get('price', sub._items[0].price) as Obj;
  return { interval: price.recurring.interval, count: price.recurring.interval_count };
}

function licensedLines(store: Store, sub: Obj, period: { start: number; end: number }, trial: boolean): LineSpec[] {
  return (sub._items as Obj[]).map((item) => {
    const price = store.get('price', item.price) as Obj;
    const name = productName(store, price);
    if (price.recurring.usage_type === 'metered') {
      return { amount: 0, description: name, price, quantity: 0, period, subscriptionItem: item.id };
    }
    if (trial) {
      return { amount: 0, description: `Trial period for ${name}`, price, quantity: item.quantity, period, subscriptionItem: item.id };
    }
    return {
      amount: price.unit_amount * item.quantity,
      description: `${item.quantity} \u00d7 ${name} (at ${money(price.unit_amount, price.currency)} / ${price.recurring.interval})`,
      price,
      quantity: item.quantity,
      period,
      subscriptionItem: item.id,
    };
  });
}

/** Usage lines for metered items over a past period, from the meter's aggregation. */
function usageLines(store: Store, sub: Obj, period: { start: number; end: number }): LineSpec[] {
  const lines: LineSpec[] = [];
  for (const item of sub._items as Obj[]) {
    const price = store.get('price', item.price) as Obj;
    if (price.recurring.usage_type !== 'metered' || !price.recurring.meter) continue;
    const quantity = aggregateUsage(store, price.recurring.meter, sub.customer, period.start, period.end);
    const billed = Math.round(quantity);
    lines.push({
      amount: Math.round(billed * price.unit_amount),
      description: `${productName(store, price)} (usage: ${quantity})`,
      price,
      quantity: billed,
      period,
      subscriptionItem: item.id,
    });
  }
  return lines;
}

function defaultPaymentMethod(store: Store, sub: Obj): Obj | null {
  const id = sub.default_payment_method ?? store.get('customer', sub.customer)?.invoice_settings.default_payment_method ?? null;
  return id ? (store.get('payment_method', id) ?? null) : null;
}

function invoiceFor(store: Store, sub: Obj, lines: LineSpec[], reason: string, period: { start: number; end: number }): Obj {
  const inv = createInvoice(store, {
    customer: getCustomer(store, sub.customer),
    subscription: sub,
    currency: sub.currency,
    lines,
    billingReason: reason,
    periodStart: period.start,
    periodEnd: period.end,
  });
  sub.latest_invoice = inv.id;
  finalizeInvoice(store, inv);
  return inv;
}

export interface CreateSubscriptionInput {
  customer: string;
  items: ItemInput[];
  trialEnd?: number | null;
  paymentBehavior: string;
  defaultPaymentMethod?: string | null;
  metadata?: Obj;
  cancelAtPeriodEnd?: boolean;
  description?: string | null;
  saveDefaultPaymentMethod?: string;
  missingPaymentMethod?: string;
}

export function createSubscription(store: Store, input: CreateSubscriptionInput): Obj {
  const customer = getCustomer(store, input.customer);
  const now = store.now();
  const mark = store.eventMark();
  const currency = input.items[0].price.currency;
  for (const [i, it] of input.items.entries()) {
    if (it.price.currency !== currency) throw invalidRequest('All prices on a subscription must have the same currency.', `items[${i}][price]`);
    const c = cycleOf(store, { _items: [{ price: input.items[0].price.id }] });
    if (it.price.recurring.interval !== c.interval || it.price.recurring.interval_count !== c.count) {
      throw invalidRequest('All prices on a subscription must have the same `recurring.interval` and `recurring.interval_count`.', `items[${i}][price]`);
    }
  }
  let defaultPm: string | null = null;
  if (input.defaultPaymentMethod) {
    const pm = resolvePaymentMethod(store, input.defaultPaymentMethod, 'default_payment_method');
    if (pm.customer !== customer.id) {
      throw invalidRequest(
        `The customer does not have a payment method with the ID ${input.defaultPaymentMethod}. The payment method must be attached to the customer.`,
        'default_payment_method',
        'resource_missing',
      );
    }
    defaultPm = pm.id;
  }
  const trialEnd = input.trialEnd && input.trialEnd > now ? input.trialEnd : null;
  const first = input.items[0].price.recurring;
  const anchor = trialEnd ?? now;
  const period = trialEnd ? { start: now, end: trialEnd } : periodAt(anchor, first.interval, first.interval_count, 0);
  const sub: Obj = {
    id: newId('sub_'),
    object: 'subscription',
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: anchor,
    billing_cycle_anchor_config: null,
    billing_mode: { flexible: { proration_discounts: 'included' }, type: 'flexible', updated_at: now },
    billing_schedules: [],
    billing_thresholds: null,
    cancel_at: null,
    cancel_at_period_end: false,
    canceled_at: null,
    cancellation_details: { comment: null, feedback: null, reason: null },
    collection_method: 'charge_automatically',
    created: now,
    currency,
    customer: customer.id,
    customer_account: null,
    days_until_due: null,
    default_payment_method: defaultPm,
    default_source: null,
    default_tax_rates: [],
    description: input.description ?? null,
    discounts: [],
    ended_at: null,
    invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } },
    items: null,
    latest_invoice: null,
    livemode: false,
    managed_payments: null,
    metadata: input.metadata ?? {},
    next_pending_invoice_item_invoice: null,
    on_behalf_of: null,
    pause_collection: null,
    payment_settings: {
      payment_method_options: null,
      payment_method_types: null,
      save_default_payment_method: input.saveDefaultPaymentMethod ?? 'off',
    },
    pending_invoice_item_interval: null,
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: now,
    status: 'incomplete',
    test_clock: null,
    transfer_data: null,
    trial_end: trialEnd,
    trial_settings: { end_behavior: { missing_payment_method: input.missingPaymentMethod ?? 'create_invoice' } },
    trial_start: trialEnd ? now : null,
    _items: [] as Obj[],
    _anchor: anchor,
    _cycle: 0,
    _pending: [] as LineSpec[],
    _creating: true,
    _trialWillEndSent: false,
  };
  store.insert('subscription', sub);
  sub._items = input.items.map((it) => newItem(store, sub, it, period));
  if (input.cancelAtPeriodEnd) {
    sub.cancel_at_period_end = true;
    sub.cancel_at = period.end;
    sub.canceled_at = now;
  }
  const inv = invoiceFor(store, sub, licensedLines(store, sub, period, !!trialEnd), 'subscription_create', period);
  if (inv.status === 'paid') {
    sub.status = trialEnd ? 'trialing' : 'active';
  } else if (input.paymentBehavior !== 'default_incomplete') {
    // Stripe's default_incomplete never charges: the client confirms the invoice's PaymentIntent.
    const pm = defaultPaymentMethod(store, sub);
    if (!pm && input.paymentBehavior === 'error_if_incomplete') {
      throw invalidRequest(
        'This customer has no attached payment source or default payment method. Please consider adding a default payment method. For more information, visit https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority.',
        undefined,
        'resource_missing',
      );
    }
    if (pm) {
      const result = attemptInvoicePayment(store, inv, pm);
      if (result !== 'succeeded' && input.paymentBehavior === 'error_if_incomplete') {
        const pi = store.get('payment_intent', inv._payment_intent);
        if (result === 'requires_action') {
          throw cardError('Your card was declined. This transaction requires authentication.', 'card_declined', 'authentication_required');
        }
        throw cardError(pi?.last_payment_error?.message ?? 'Your card was declined.', 'card_declined', pi?.last_payment_error?.decline_code ?? 'generic_decline');
      }
    }
  }
  delete sub._creating;
  store.emit('customer.subscription.created', sub, undefined, { at: mark });
  if (trialEnd && trialEnd - now <= 3 * 86400) {
    sub._trialWillEndSent = true;
    store.emit('customer.subscription.trial_will_end', sub);
  }
  return sub;
}

/** Called when an invoice is paid: activates an incomplete or past_due subscription. */
export function onSubscriptionInvoicePaid(store: Store, inv: Obj, pi: Obj | null): void {
  const id = inv.parent?.subscription_details?.subscription;
  const sub = id ? store.get('subscription', id) : undefined;
  if (!sub || ENDED.includes(sub.status)) return;
  const before = store.render(sub);
  if (pi?.payment_method && !sub.default_payment_method && sub.payment_settings.save_default_payment_method === 'on_subscription') {
    sub.default_payment_method = pi.payment_method;
  }
  if ((sub.status === 'incomplete' || sub.status === 'past_due' || sub.status === 'unpaid') && sub.latest_invoice === inv.id) {
    sub.status = sub.trial_end && sub.trial_end > store.now() ? 'trialing' : 'active';
  }
  if (sub._creating) return;
  const prev = diff(before, store.render(sub));
  if (Object.keys(prev).length) store.emit('customer.subscription.updated', sub, prev);
}

/** Called when an invoice payment fails: a renewal or update failure makes the subscription past_due. */
export function onSubscriptionInvoiceFailed(store: Store, inv: Obj): void {
  const id = inv.parent?.subscription_details?.subscription;
  const sub = id ? store.get('subscription', id) : undefined;
  if (!sub || sub._creating || ENDED.includes(sub.status)) return;
  if (inv.billing_reason !== 'subscription_create' && (sub.status === 'active' || sub.status === 'trialing')) {
    const prev = { status: sub.status };
    sub.status = 'past_due';
    store.emit('customer.subscription.updated', sub, prev);
  }
}

function prorationLines(store: Store, sub: Obj, changes: { item: Obj; oldPrice: Obj; oldQty: number }[]): LineSpec[] {
  const period = currentPeriod(sub);
  const now = store.now();
  const fraction = Math.max(0, Math.min(1, (period.end - now) / (period.end - period.start)));
  const lines: LineSpec[] = [];
  for (const { item, oldPrice, oldQty } of changes) {
    const newPrice = store.get('price', item.price) as Obj;
    if (oldPrice.recurring.usage_type === 'metered' && newPrice.recurring.usage_type === 'metered') continue;
    const oldAmount = oldPrice.recurring.usage_type === 'metered' ? 0 : oldPrice.unit_amount * oldQty;
    const newAmount = newPrice.recurring.usage_type === 'metered' ? 0 : newPrice.unit_amount * (item.quantity ?? 1);
    if (oldAmount === newAmount) continue;
    const p = { start: now, end: period.end };
    if (oldAmount > 0) {
      lines.push({
        amount: -Math.round(oldAmount * fraction),
        description: `Unused time on ${oldQty} \u00d7 ${productName(store, oldPrice)} after ${new Date(now * 1000).toISOString().slice(0, 10)}`,
        price: oldPrice,
        quantity: oldQty,
        period: p,
        subscriptionItem: item.id,
        proration: true,
      });
    }
    if (newAmount > 0) {
      lines.push({
        amount: Math.round(newAmount * fraction),
        description: `Remaining time on ${item.quantity} \u00d7 ${productName(store, newPrice)} after ${new Date(now * 1000).toISOString().slice(0, 10)}`,
        price: newPrice,
        quantity: item.quantity,
        period: p,
        subscriptionItem: item.id,
        proration: true,
      });
    }
  }
  return lines;
}

/** Starts a new billing cycle at `start` (trial end, trial_end=now, resume): invoice and charge it. */
function startCycle(store: Store, sub: Obj, start: number, reason: string, extraLines: LineSpec[] = []): Obj {
  const { interval, count } = cycleOf(store, sub);
  sub._anchor = start;
  sub._cycle = 0;
  sub.billing_cycle_anchor = start;
  const period = periodAt(start, interval, count, 0);
  setPeriod(sub, period);
  const lines = [...extraLines, ...sub._pending, ...licensedLines(store, sub, period, false)];
  sub._pending = [];
  const inv = invoiceFor(store, sub, lines, reason, period);
  if (inv.status === 'open') attemptInvoicePayment(store, inv, defaultPaymentMethod(store, sub));
  return inv;
}

function endTrial(store: Store, sub: Obj, at: number): void {
  const before = store.render(sub);
  const pm = defaultPaymentMethod(store, sub);
  const behavior = sub.trial_settings?.end_behavior?.missing_payment_method ?? 'create_invoice';
  if (!pm && behavior === 'pause') {
    sub.status = 'paused';
    store.emit('customer.subscription.paused', sub);
    store.emit('customer.subscription.updated', sub, diff(before, store.render(sub)));
    return;
  }
  if (!pm && behavior === 'cancel') {
    finishCancel(store, sub, at, 'cancellation_requested');
    return;
  }
  sub.status = 'active';
  startCycle(store, sub, at, 'subscription_cycle');
  const prev = diff(before, store.render(sub));
  if (Object.keys(prev).length) store.emit('customer.subscription.updated', sub, prev);
}

function finishCancel(store: Store, sub: Obj, at: number, reason: string, finalInvoice = true): void {
  if (finalInvoice) {
    const period = currentPeriod(sub);
    const lines = [...sub._pending, ...usageLines(store, sub, { start: period.start, end: Math.min(period.end, at) })].filter((l) => l.amount !== 0);
    sub._pending = [];
    if (lines.length) {
      const inv = invoiceFor(store, sub, lines, 'subscription_cycle', { start: period.start, end: at });
      if (inv.status === 'open') attemptInvoicePayment(store, inv, defaultPaymentMethod(store, sub));
    }
  }
  const prev = { status: sub.status };
  sub.status = 'canceled';
  sub.ended_at = at;
  sub.canceled_at = sub.canceled_at ?? at;
  sub.cancel_at = sub.cancel_at ?? null;
  sub.cancellation_details = { ...sub.cancellation_details, reason: sub.cancellation_details.reason ?? reason };
  store.emit('customer.subscription.deleted', sub, prev);
}

/** Moves one subscription forward to the emulator's current time. */
export function advanceSubscription(store: Store, sub: Obj): void {
  const now = store.now();
  for (let guard = 0; guard < 1000; guard++) {
    if (ENDED.includes(sub.status) || sub.status === 'paused') return;
    if (sub.status === 'incomplete') {
      if (now >= sub.created + INCOMPLETE_WINDOW) {
        const inv = sub.latest_invoice ? store.get('invoice', sub.latest_invoice) : undefined;
        if (inv && inv.status === 'open') {
          inv.status = 'void';
          inv.status_transitions.voided_at = now;
          store.emit('invoice.voided', inv, { status: 'open' });
        }
        const prev = { status: sub.status };
        sub.status = 'incomplete_expired';
        sub.ended_at = now;
        store.emit('customer.subscription.updated', sub, prev);
      }
      return;
    }
    if (sub.status === 'trialing' && !sub._trialWillEndSent && sub.trial_end && now >= sub.trial_end - 3 * 86400) {
      sub._trialWillEndSent = true;
      store.emit('customer.subscription.trial_will_end', sub);
    }
    const period = currentPeriod(sub);
    if (sub.cancel_at && sub.cancel_at <= now && sub.cancel_at <= period.end) {
      finishCancel(store, sub, sub.cancel_at, 'cancellation_requested');
      return;
    }
    if (period.end > now) return;
    if (sub.status === 'trialing' && sub.trial_end && sub.trial_end <= now) {
      endTrial(store, sub, sub.trial_end);
      continue;
    }
    // Renewal: licensed items in advance for the new period, metered usage in arrears for the old one.
    const before = store.render(sub);
    const { interval, count } = cycleOf(store, sub);
    sub._cycle += 1;
    const next = periodAt(sub._anchor, interval, count, sub._cycle);
    const usage = usageLines(store, sub, period);
    setPeriod(sub, next);
    const lines = [...sub._pending, ...licensedLines(store, sub, next, false).filter((l) => !isMeteredLine(l)), ...usage];
    sub._pending = [];
    const inv = invoiceFor(store, sub, lines, 'subscription_cycle', next);
    store.emit('customer.subscription.updated', sub, diff(before, store.render(sub)));
    if (inv.status === 'open') attemptInvoicePayment(store, inv, defaultPaymentMethod(store, sub));
  }
}

function isMeteredLine(l: LineSpec): boolean {
  return l.price?.recurring?.usage_type === 'metered';
}

export function advanceAllSubscriptions(store: Store): void {
  for (const sub of [...store.table('subscription').values()]) advanceSubscription(store, sub);
}

function readTrialEnd(store: Store, p: Obj): number | null | undefined {
  if (p.trial_end === 'now') return store.now();
  const te = int(p, 'trial_end');
  if (te !== undefined) {
    if (te <= store.now()) throw invalidRequest('Invalid timestamp: must be an integer Unix timestamp in the future.', 'trial_end');
    return te;
  }
  const days = int(p, 'trial_period_days');
  if (days !== undefined) return days > 0 ? store.now() + days * 86400 : null;
  return undefined;
}

settlements.subscriptionInvoicePaid = onSubscriptionInvoicePaid;
settlements.subscriptionInvoiceFailed = onSubscriptionInvoiceFailed;

export function registerSubscriptions(router: Router, store: Store): void {
  store.renderers.set('subscription', (s) => renderSubscription(store, s));
  store.renderers.set('subscription_item', (i) => renderItem(store, i));

  router.add('POST', '/v1/subscriptions', (ctx) => {
    const p = ctx.params;
    const customer = str(p, 'customer');
    if (!customer) throw invalidRequest('Missing required param: customer.', 'customer', 'parameter_missing');
    getCustomer(store, customer);
    const items = readItems(store, arr(p, 'items'), 'items');
    const paymentBehavior = str(p, 'payment_behavior') ?? 'allow_incomplete';
    if (!['default_incomplete', 'allow_incomplete', 'error_if_incomplete', 'pending_if_incomplete'].includes(paymentBehavior)) {
      throw invalidRequest(`Invalid payment_behavior: ${paymentBehavior}`, 'payment_behavior');
    }
    const ps = obj(p, 'payment_settings');
    const ts = obj(p, 'trial_settings');
    const sub = createSubscription(store, {
      customer,
      items,
      trialEnd: readTrialEnd(store, p) ?? null,
      paymentBehavior,
      defaultPaymentMethod: str(p, 'default_payment_method'),
      metadata: applyMetadata({}, p),
      cancelAtPeriodEnd: bool(p, 'cancel_at_period_end'),
      description: str(p, 'description'),
      saveDefaultPaymentMethod: ps ? str(ps, 'save_default_payment_method') : undefined,
      missingPaymentMethod: ts?.end_behavior?.missing_payment_method,
    });
    return out(ctx, sub);
  });

  router.add('GET', '/v1/subscriptions/:id', (ctx) => out(ctx, getSubscription(store, ctx.pathParams.id, 'id')));

  router.add('POST', '/v1/subscriptions/:id', (ctx) => {
    const sub = getSubscription(store, ctx.pathParams.id, 'id');
    const p = ctx.params;
    if (ENDED.includes(sub.status)) {
      const allowed = Object.keys(p).every((k) => ['metadata', 'cancellation_details', 'expand'].includes(k));
      if (!allowed) throw invalidRequest('A canceled subscription can only update its cancellation_details and metadata.');
    }
    const before = store.render(sub);
    const now = store.now();
    const prorationBehavior = str(p, 'proration_behavior') ?? 'create_prorations';
    const changes: { item: Obj; oldPrice: Obj; oldQty: number }[] = [];
    const itemsParam = arr(p, 'items');
    if (itemsParam) {
      const period = currentPeriod(sub);
      itemsParam.forEach((it: Obj, i) => {
        const id = str(it, 'id');
        const existing = id ? (sub._items as Obj[]).find((x) => x.id === id) : undefined;
        if (id && !existing) throw invalidRequest(`Invalid subscription_item: ${id}`, `items[${i}][id]`, 'resource_missing');
        if (existing && bool(it, 'deleted')) {
          if (sub._items.length === 1) throw invalidRequest('A subscription must have at least one active plan.', `items[${i}][deleted]`);
          changes.push({ item: { ...existing, quantity: 0 }, oldPrice: store.get('price', existing.price) as Obj, oldQty: existing.quantity ?? 1 });
          sub._items = sub._items.filter((x: Obj) => x !== existing);
          store.remove('subscription_item', existing.id);
          return;
        }
        const priceId = str(it, 'price') ?? str(it, 'plan');
        const price = priceId ? store.get('price', priceId) : undefined;
        if (priceId && !price) throw noSuch('price', priceId, `items[${i}][price]`);
        if (price) checkRecurring(price, `items[${i}][price]`);
        if (price && price.currency !== sub.currency) throw invalidRequest('All prices on a subscription must have the same currency.', `items[${i}][price]`);
        const quantity = int(it, 'quantity', `items[${i}][quantity]`);
        if (existing) {
          const oldPrice = store.get('price', existing.price) as Obj;
          const oldQty = existing.quantity ?? 1;
          if (price) existing.price = price.id;
          if (quantity !== undefined) existing.quantity = quantity;
          existing.metadata = applyMetadata(existing.metadata, it);
          changes.push({ item: existing, oldPrice, oldQty });
        } else {
          if (!price) throw invalidRequest(`Missing required param: items[${i}][price].`, `items[${i}][price]`, 'parameter_missing');
          const item = newItem(store, sub, { price, quantity: quantity ?? 1, metadata: applyMetadata({}, it) }, period);
          sub._items.push(item);
          changes.push({ item, oldPrice: { ...price, unit_amount: 0 }, oldQty: 0 });
        }
      });
    }
    if ('cancel_at_period_end' in p) {
      const cape = bool(p, 'cancel_at_period_end') ?? false;
      sub.cancel_at_period_end = cape;
      sub.cancel_at = cape ? currentPeriod(sub).end : null;
      sub.canceled_at = cape ? now : null;
      if (!cape) sub.cancellation_details = { comment: null, feedback: null, reason: null };
      else sub.cancellation_details = { ...sub.cancellation_details, reason: 'cancellation_requested' };
    }
    if ('cancel_at' in p) {
      const at = int(p, 'cancel_at');
      sub.cancel_at = at ?? null;
      sub.cancel_at_period_end = at !== undefined && at === currentPeriod(sub).end;
      sub.canceled_at = at !== undefined ? now : null;
    }
    const cd = obj(p, 'cancellation_details');
    if (cd) {
      if ('comment' in cd) sub.cancellation_details.comment = str(cd, 'comment') ?? null;
      if ('feedback' in cd) sub.cancellation_details.feedback = str(cd, 'feedback') ?? null;
    }
    sub.metadata = applyMetadata(sub.metadata, p);
    if ('description' in p) sub.description = str(p, 'description') ?? null;
    if ('default_payment_method' in p) {
      const id = str(p, 'default_payment_method');
      if (id) {
        const pm = resolvePaymentMethod(store, id, 'default_payment_method');
        if (pm.customer !== sub.customer) {
          throw invalidRequest(`The customer does not have a payment method with the ID ${id}. The payment method must be attached to the customer.`, 'default_payment_method', 'resource_missing');
        }
        sub.default_payment_method = pm.id;
      } else sub.default_payment_method = null;
    }
    const ps = obj(p, 'payment_settings');
    if (ps && str(ps, 'save_default_payment_method')) sub.payment_settings.save_default_payment_method = str(ps, 'save_default_payment_method');
    if ('pause_collection' in p) {
      const pc = obj(p, 'pause_collection');
      sub.pause_collection = pc ? { behavior: str(pc, 'behavior') ?? 'void', resumes_at: int(pc, 'resumes_at') ?? null } : null;
    }
    const ts = obj(p, 'trial_settings');
    if (ts?.end_behavior?.missing_payment_method) sub.trial_settings = { end_behavior: { missing_payment_method: ts.end_behavior.missing_payment_method } };

    const trialEnd = readTrialEnd(store, { trial_end: p.trial_end });
    let invoiced = false;
    if (trialEnd !== undefined && trialEnd !== null) {
      if (p.trial_end === 'now') {
        if (sub.status === 'trialing') {
          sub.trial_end = now;
          sub.status = 'active';
          startCycle(store, sub, now, 'subscription_update');
          invoiced = true;
        }
      } else {
        sub.trial_end = trialEnd;
        if (!sub.trial_start) sub.trial_start = now;
        sub.status = 'trialing';
        setPeriod(sub, { start: currentPeriod(sub).start, end: trialEnd });
        sub._anchor = trialEnd;
        sub.billing_cycle_anchor = trialEnd;
      }
    }
    if (!invoiced && changes.length && sub.status !== 'trialing' && prorationBehavior !== 'none') {
      const lines = prorationLines(store, sub, changes);
      if (lines.length) {
        if (prorationBehavior === 'always_invoice') {
          const period = currentPeriod(sub);
          const inv = invoiceFor(store, sub, [...sub._pending, ...lines], 'subscription_update', { start: now, end: period.end });
          sub._pending = [];
          if (inv.status === 'open') {
            const pmBehavior = str(p, 'payment_behavior') ?? 'allow_incomplete';
            const result = attemptInvoicePayment(store, inv, defaultPaymentMethod(store, sub));
            if (result !== 'succeeded' && pmBehavior === 'error_if_incomplete') {
              throw cardError('Your card was declined.', 'card_declined', 'generic_decline');
            }
          }
        } else {
          sub._pending.push(...lines);
        }
      }
    }
    const prev = diff(before, store.render(sub));
    if (Object.keys(prev).length) store.emit('customer.subscription.updated', sub, prev);
    return out(ctx, sub);
  });

  router.add('DELETE', '/v1/subscriptions/:id', (ctx) => {
    const sub = getSubscription(store, ctx.pathParams.id, 'id');
    if (ENDED.includes(sub.status)) {
      throw invalidRequest(`No such subscription: '${sub.id}'`, 'id', 'resource_missing');
    }
    const cd = obj(ctx.params, 'cancellation_details');
    if (cd) sub.cancellation_details = { comment: str(cd, 'comment') ?? null, feedback: str(cd, 'feedback') ?? null, reason: null };
    const now = store.now();
    sub.canceled_at = now;
    const invoiceNow = bool(ctx.params, 'invoice_now') ?? false;
    if (bool(ctx.params, 'prorate') && sub.status !== 'trialing') {
      const period = currentPeriod(sub);
      const fraction = Math.max(0, (period.end - now) / (period.end - period.start));
      for (const item of sub._items as Obj[]) {
        const price = store.get('price', item.price) as Obj;
        if (price.recurring.usage_type === 'metered') continue;
        const amount = Math.round(price.unit_amount * (item.quantity ?? 1) * fraction);
        if (amount > 0) {
          sub._pending.push({
            amount: -amount,
            description: `Unused time on ${item.quantity} \u00d7 ${productName(store, price)}`,
            price,
            quantity: item.quantity,
            period: { start: now, end: period.end },
            subscriptionItem: item.id,
            proration: true,
          });
        }
      }
    }
    finishCancel(store, sub, now, 'cancellation_requested', invoiceNow);
    return out(ctx, sub);
  });

  router.add('POST', '/v1/subscriptions/:id/resume', (ctx) => {
    const sub = getSubscription(store, ctx.pathParams.id, 'id');
    if (sub.status !== 'paused') {
      throw invalidRequest('Subscription is not paused. Only paused subscriptions can be resumed.', undefined, 'subscription_not_paused' as string);
    }
    const before = store.render(sub);
    sub.status = 'active';
    sub.pause_collection = null;
    const inv = startCycle(store, sub, store.now(), 'subscription_update');
    if (inv.status !== 'paid' && sub.status === 'active') sub.status = 'past_due';
    store.emit('customer.subscription.resumed', sub);
    store.emit('customer.subscription.updated', sub, diff(before, store.render(sub)));
    return out(ctx, sub);
  });

  router.add('GET', '/v1/subscriptions', (ctx) => {
    const p = ctx.params;
    let items = store.list('subscription');
    const status = str(p, 'status');
    if (!status) items = items.filter((s) => s.status !== 'canceled');
    else if (status === 'ended') items = items.filter((s) => ENDED.includes(s.status));
    else if (status !== 'all') items = items.filter((s) => s.status === status);
    const customer = str(p, 'customer');
    if (customer) items = items.filter((s) => s.customer === customer);
    const price = str(p, 'price') ?? str(p, 'plan');
    if (price) items = items.filter((s) => (s._items as Obj[]).some((i) => i.price === price));
    return listOut(ctx, items);
  });

  router.add('GET', '/v1/subscription_items/:id', (ctx) => {
    const item = store.get('subscription_item', ctx.pathParams.id);
    if (!item) throw noSuch('subscription_item', ctx.pathParams.id, 'id');
    return out(ctx, item);
  });

  router.add('GET', '/v1/subscription_items', (ctx) => {
    const subId = str(ctx.params, 'subscription');
    if (!subId) throw invalidRequest('Missing required param: subscription.', 'subscription', 'parameter_missing');
    const sub = getSubscription(store, subId);
    return listOut(ctx, [...sub._items].reverse());
  });
}

export { addInterval };
