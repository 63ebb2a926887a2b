/**
 * The subscription model: rendering, items, billing periods, the invoice lines a subscription
 * produces (licensed in advance, metered usage in arrears) and creation.
 */
import { cardError, invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, int, str } from '../params';
import { periodAt } from '../periods';
import { publicCopy, type Obj, type Store } from '../store';
import { getCustomer } from './customers';
import type { LineSpec } from './invoice-lines';
import { createInvoice } from './invoice-model';
import { attemptInvoicePayment, finalizeInvoice } from './invoice-payments';
import { aggregateUsage } from './meters';
import { resolvePaymentMethod } from './payment-methods';
import { planOf } from './prices';

export const ENDED = ['canceled', 'incomplete_expired'];
/** Stripe expires a subscription left `incomplete` (and a pending update) after 23 hours. */
export const INCOMPLETE_WINDOW = 23 * 3600;

export interface Period {
  start: number;
  end: number;
}

export function money(amount: number, currency: string): string {
  return `${(amount / 100).toFixed(2)} ${currency.toUpperCase()}`;
}

export function productName(store: Store, price: Obj): string {
  return store.get('product', price.product)?.name ?? price.product;
}

export function renderItem(store: Store, item: Obj): Obj {
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

export interface ItemInput {
  price: Obj;
  quantity: number;
  metadata: Obj;
  /** A preassigned id (a pending update names its new items before they exist). */
  id?: string;
}

export function readItems(store: Store, raw: any[] | undefined, paramName: string): ItemInput[] {
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

export function checkRecurring(price: Obj, param: string): void {
  if (!price.recurring) {
    throw invalidRequest('The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.', param);
  }
  if (!price.active) throw invalidRequest(`The price specified is inactive. This field only accepts active prices.`, param);
}

export function newItem(store: Store, sub: Obj, input: ItemInput, period: { start: number; end: number }, usageFrom?: number): Obj {
  const item: Obj = {
    id: input.id ?? newId('si_', 14),
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
    // Usage on a metered item counts from when the item joined the subscription.
    _usage_from: usageFrom ?? period.start,
  };
  store.insert('subscription_item', item);
  return item;
}

export function currentPeriod(sub: Obj): { start: number; end: number } {
  const first = sub._items[0];
  return { start: first.current_period_start, end: first.current_period_end };
}

export function setPeriod(sub: Obj, period: { start: number; end: number }): void {
  for (const i of sub._items) {
    i.current_period_start = period.start;
    i.current_period_end = period.end;
  }
}

export function cycleOf(store: Store, sub: Obj): { interval: string; count: number } {
  const price = store.get('price', sub._items[0].price) as Obj;
  return { interval: price.recurring.interval, count: price.recurring.interval_count };
}

export function licensedLines(store: Store, sub: Obj, period: { start: number; end: number }, trial: boolean): LineSpec[] {
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
export function usageLines(store: Store, sub: Obj, period: { start: number; end: number }): LineSpec[] {
  return (sub._items as Obj[]).map((item) => itemUsageLine(store, sub, item, store.get('price', item.price) as Obj, period)).filter((l): l is LineSpec => l !== null);
}

/**
 * The usage line of one metered item at `price` over `period`, counted from when the item (or
 * its current price) joined the subscription, so usage is never billed twice across a change.
 */
export function itemUsageLine(store: Store, sub: Obj, item: Obj, price: Obj, period: Period): LineSpec | null {
  if (price.recurring?.usage_type !== 'metered' || !price.recurring.meter) return null;
  const from = Math.max(period.start, item._usage_from ?? period.start);
  const quantity = from < period.end ? aggregateUsage(store, price.recurring.meter, sub.customer, from, period.end) : 0;
  const billed = Math.round(quantity);
  return {
    amount: Math.round(billed * price.unit_amount),
    description: `${productName(store, price)} (usage: ${quantity})`,
    price,
    quantity: billed,
    period: { start: from, end: period.end },
    subscriptionItem: item.id,
  };
}

export function defaultPaymentMethod(store: Store, sub: Obj): Obj | null {
  const id = sub.default_payment_method ?? store.get('customer', sub.customer)?.invoice_settings.default_payment_method ?? null;
  return id ? (store.get('payment_method', id) ?? null) : null;
}

/**
 * Creates and finalizes the subscription's invoice. `draft`: left a draft that does not advance by
 * itself, as Stripe leaves the invoices of an `unpaid` subscription.
 */
export function invoiceFor(store: Store, sub: Obj, lines: LineSpec[], reason: string, period: { start: number; end: number }, draft = false): Obj {
  const inv = createInvoice(store, {
    customer: getCustomer(store, sub.customer),
    subscription: sub,
    currency: sub.currency,
    lines,
    billingReason: reason,
    periodStart: period.start,
    periodEnd: period.end,
    autoAdvance: !draft,
  });
  sub.latest_invoice = inv.id;
  if (!draft) finalizeInvoice(store, inv);
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
    test_clock: customer.test_clock ?? null,
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

export function isMeteredLine(l: LineSpec): boolean {
  return l.price?.recurring?.usage_type === 'metered';
}

export function readTrialEnd(store: Store, p: Obj): number | null | undefined {
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

