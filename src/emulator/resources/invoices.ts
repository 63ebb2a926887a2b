/**
 * Invoices: created by subscriptions (start, renewal, prorations), finalised with a PaymentIntent
 * whose client_secret is exposed as `confirmation_secret`, paid, voided. Retrieve, list, pay, void.
 */
import { cardError, invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, arr, bool, int, rangeFilter, str } from '../params';
import { publicCopy } from '../store';
import { missingParam } from '../errors';
import { createInvoiceItem } from './invoice-items';
import { afterInvoiced, discountIds } from './coupons';
import { balanceTransaction } from './customer-extras';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { createPaymentIntent, confirmIntent } from './payment-intents';
import { resolvePaymentMethod } from './payment-methods';
import { settlements } from './settlements';
import { recordFailedAttempt } from './dunning-settings';
import { invoiceItemLine, lineObject, recomputeInvoice, type LineSpec } from './invoice-lines';

export type { LineSpec } from './invoice-lines';

export interface InvoiceSpec {
  customer: Obj;
  subscription: Obj | null;
  currency: string;
  lines: LineSpec[];
  billingReason: string;
  periodStart: number;
  periodEnd: number;
  description?: string | null;
  /** Bill the customer's pending invoice items on this invoice (default: for subscription invoices). */
  includePending?: boolean;
  collectionMethod?: string;
  daysUntilDue?: number | null;
  autoAdvance?: boolean;
  metadata?: Obj;
  /** Discount ids applying to the whole invoice. */
  discounts?: string[];
}

/** The customer's invoice items not yet on an invoice, as lines (oldest first); marks them taken by the invoice. */
function takePendingItems(store: Store, invoiceId: string, customer: string, currency: string, subscriptionId: string | null): LineSpec[] {
  const lines: LineSpec[] = [];
  for (const ii of store.table('invoiceitem').values()) {
    if (ii.invoice || ii.customer !== customer || ii.currency !== currency) continue;
    const itemSub = ii.parent?.subscription_details?.subscription ?? null;
    if (itemSub && itemSub !== subscriptionId) continue;
    ii.invoice = invoiceId;
    lines.push(invoiceItemLine(store, ii));
  }
  return lines;
}

/** The discounts an invoice for this customer (and subscription) gets: the subscription's, else the customer's. */
function discountsFor(store: Store, customer: Obj, subscription: Obj | null): string[] {
  const now = store.now();
  const live = (id: string) => {
    const d = store.get('discount', id);
    return !!d && (d.end === null || d.end > now);
  };
  if (subscription && subscription._creating && store.pendingSubscriptionDiscounts) {
    subscription.discounts = [...store.pendingSubscriptionDiscounts];
    for (const id of subscription.discounts as string[]) {
      const d = store.get('discount', id);
      if (d) d.subscription = subscription.id;
    }
  }
  const fromSub = ((subscription?.discounts ?? []) as string[]).filter(live);
  if (fromSub.length) return fromSub;
  const cd: string | undefined = customer.discount?.id;
  return cd && live(cd) ? [cd] : [];
}

export function createInvoice(store: Store, spec: InvoiceSpec): Obj {
  const id = newId('in_');
  const now = store.now();
  const subId = spec.subscription?.id ?? null;
  const pending = spec.includePending ?? !!spec.subscription;
  const specs = [...spec.lines, ...(pending ? takePendingItems(store, id, spec.customer.id, spec.currency, subId) : [])];
  const lines = specs.map((l) => lineObject(store, id, spec.currency, subId, l));
  const total = lines.reduce((s, l) => s + l.amount, 0);
  const c = spec.customer;
  const inv: Obj = {
    id,
    object: 'invoice',
    account_country: 'US',
    account_name: 'Tollgate Emulator',
    account_tax_ids: null,
    amount_due: Math.max(0, total),
    amount_overpaid: 0,
    amount_paid: 0,
    amount_remaining: Math.max(0, total),
    amount_shipping: 0,
    application: null,
    attempt_count: 0,
    attempted: false,
    auto_advance: spec.autoAdvance ?? true,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    automatically_finalizes_at: null,
    billing_reason: spec.billingReason,
    collection_method: spec.collectionMethod ?? 'charge_automatically',
    created: now,
    currency: spec.currency,
    custom_fields: null,
    customer: c.id,
    customer_account: null,
    customer_address: null,
    customer_email: c.email,
    customer_name: c.name,
    customer_phone: null,
    customer_shipping: null,
    customer_tax_exempt: 'none',
    customer_tax_ids: [],
    default_payment_method: null,
    default_source: null,
    default_tax_rates: [],
    description: spec.description ?? null,
    discounts: spec.discounts ?? discountsFor(store, c, spec.subscription),
    due_date: null,
    effective_at: null,
    ending_balance: null,
    footer: null,
    from_invoice: null,
    hosted_invoice_url: null,
    invoice_pdf: null,
    issuer: { type: 'self' },
    last_finalization_error: null,
    latest_revision: null,
    lines: { object: 'list', data: lines, has_more: false, total_count: lines.length, url: `/v1/invoices/${id}/lines` },
    livemode: false,
    metadata: { ...(spec.metadata ?? {}) },
    next_payment_attempt: null,
    number: null,
    on_behalf_of: null,
    parent: spec.subscription
      ? {
          quote_details: null,
          subscription_details: { metadata: { ...spec.subscription.metadata }, subscription: spec.subscription.id },
          type: 'subscription_details',
        }
      : null,
    payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
    period_end: spec.periodEnd,
    period_start: spec.periodStart,
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    receipt_number: null,
    rendering: null,
    shipping_cost: null,
    shipping_details: null,
    starting_balance: 0,
    statement_descriptor: null,
    status: 'draft',
    status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null },
    subtotal: total,
    subtotal_excluding_tax: total,
    test_clock: c.test_clock ?? null,
    total,
    total_discount_amounts: [],
    total_excluding_tax: total,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: now,
    _payment_intent: null,
    _days_until_due: spec.daysUntilDue ?? null,
  };
  recomputeInvoice(store, inv);
  store.insert('invoice', inv);
  store.emit('invoice.created', inv);
  return inv;
}

/** draft → open: number, hosted page, and a PaymentIntent for a non-zero amount; $0 invoices are paid at once. */
export function finalizeInvoice(store: Store, inv: Obj): void {
  const c = store.get('customer', inv.customer);
  const seq = c ? c.next_invoice_sequence++ : ++store.invoiceSequence;
  inv.status = 'open';
  inv.number = `${c?.invoice_prefix ?? 'EMU'}-${String(seq).padStart(4, '0')}`;
  inv.hosted_invoice_url = `${store.baseUrl}/invoice/${inv.id}`;
  inv.invoice_pdf = `${store.baseUrl}/invoice/${inv.id}/pdf`;
  inv.status_transitions.finalized_at = store.now();
  inv.effective_at = store.now();
  if (inv.collection_method === 'send_invoice') inv.due_date = store.now() + (inv._days_until_due ?? 30) * 86400;
  // The customer's balance (credit or debt) in the invoice's currency is applied now.
  if (c && c.balance !== 0 && (c.currency ?? inv.currency) === inv.currency) inv.starting_balance = c.balance;
  recomputeInvoice(store, inv);
  if (c && inv.starting_balance !== 0) {
    const ending = inv.total + inv.starting_balance - inv.amount_due;
    inv.ending_balance = ending;
    balanceTransaction(store, c, { amount: ending - inv.starting_balance, currency: inv.currency, type: 'applied_to_invoice', invoice: inv.id });
  } else inv.ending_balance = 0;
  if (inv.amount_due > 0) {
    const pi = createPaymentIntent(store, {
      amount: inv.amount_due,
      currency: inv.currency,
      customer: inv.customer,
      description: inv.billing_reason === 'subscription_create' ? 'Subscription creation' : inv.billing_reason === 'subscription_cycle' ? 'Subscription update' : null,
      invoice: inv.id,
      setupFutureUsage: inv.parent ? 'off_session' : null,
    });
    inv._payment_intent = pi.id;
  }
  afterInvoiced(store, inv);
  store.emit('invoice.finalized', inv);
  if (inv.amount_due === 0) markInvoicePaid(store, inv, null);
}

export function markInvoicePaid(store: Store, inv: Obj, pi: Obj | null): void {
  inv.status = 'paid';
  inv.attempted = true;
  if (pi) inv.attempt_count = Math.max(1, inv.attempt_count);
  inv.amount_paid = inv.amount_due;
  inv.amount_remaining = 0;
  inv.next_payment_attempt = null;
  inv.status_transitions.paid_at = store.now();
  store.emit('invoice.paid', inv, { status: 'open' });
  store.emit('invoice.payment_succeeded', inv);
  settlements.subscriptionInvoicePaid(store, inv, pi);
}

export function onInvoicePaymentFailed(store: Store, inv: Obj): void {
  recordFailedAttempt(store, inv, inv._automatic_attempt !== true);
  store.emit('invoice.payment_failed', inv);
  settlements.subscriptionInvoiceFailed(store, inv);
}

/** The invoice's payment needs the customer (3-D Secure): counted as an attempt, the subscription falls behind. */
export function onInvoicePaymentActionRequired(store: Store, inv: Obj): void {
  recordFailedAttempt(store, inv, inv._automatic_attempt !== true);
  store.emit('invoice.payment_action_required', inv);
  settlements.subscriptionInvoiceFailed(store, inv);
}

/**
 * Charges an open invoice with a payment method (null: nothing to charge with, the attempt fails).
 * `manual`: asked for through `POST /v1/invoices/:id/pay` rather than by the schedule.
 */
export function attemptInvoicePayment(store: Store, inv: Obj, pm: Obj | null, manual = false): 'succeeded' | 'requires_action' | 'declined' {
  if (inv.status !== 'open') return 'succeeded';
  const pi = inv._payment_intent ? store.get('payment_intent', inv._payment_intent) : undefined;
  if (!pi) {
    markInvoicePaid(store, inv, null);
    return 'succeeded';
  }
  // Attempts made outside this function (a client confirming the PaymentIntent) are manual too.
  inv._automatic_attempt = !manual;
  try {
    if (!pm) {
      onInvoicePaymentFailed(store, inv);
      return 'declined';
    }
    return confirmIntent(store, pi, pm);
  } finally {
    delete inv._automatic_attempt;
  }
}

export function getInvoice(store: Store, id: string): Obj {
  const inv = store.get('invoice', id);
  if (!inv) throw noSuch('invoice', id, 'invoice');
  return inv;
}

export function invoicePaymentsList(store: Store, inv: Obj): Obj {
  const pi = inv._payment_intent ? store.get('payment_intent', inv._payment_intent) : undefined;
  const data = pi
    ? [
        {
          id: `inpay_${pi.id.slice(3)}`,
          object: 'invoice_payment',
          amount_paid: pi.status === 'succeeded' ? pi.amount : null,
          amount_requested: pi.amount,
          created: pi.created,
          currency: pi.currency,
          invoice: inv.id,
          is_default: true,
          livemode: false,
          payment: { payment_intent: pi.id, type: 'payment_intent' },
          status: pi.status === 'succeeded' ? 'paid' : inv.status === 'void' ? 'canceled' : 'open',
          status_transitions: { canceled_at: null, paid_at: pi.status === 'succeeded' ? inv.status_transitions.paid_at : null },
        },
      ]
    : [];
  return { object: 'list', data, has_more: false, total_count: data.length, url: `/v1/invoice_payments?invoice=${inv.id}` };
}

function requireDraft(inv: Obj): void {
  if (inv.status !== 'draft') {
    throw invalidRequest(`You can only add lines to a draft invoice. This invoice is ${inv.status}.`, undefined, 'invoice_not_editable');
  }
}

settlements.invoicePaid = markInvoicePaid;
settlements.invoicePaymentFailed = onInvoicePaymentFailed;
settlements.invoicePaymentActionRequired = onInvoicePaymentActionRequired;

export function registerInvoices(router: Router, store: Store): void {
  store.includables.set('invoice', {
    confirmation_secret: (inv) => {
      const pi = inv._payment_intent ? store.get('payment_intent', inv._payment_intent) : undefined;
      return pi && inv.status === 'open' ? { client_secret: pi.client_secret, type: 'payment_intent' } : null;
    },
    payments: (inv) => invoicePaymentsList(store, inv),
  });
  store.includables.set('invoice_payment', {});

  // Removed in API version 2025-03-31.basil (this emulator speaks a later one), as on Stripe.
  const upcomingRemoved = () => {
    throw invalidRequest(
      `The upcoming invoice endpoint was removed in API version 2025-03-31.basil; use POST /v1/invoices/create_preview instead.`,
      undefined,
      'parameter_unknown',
    );
  };
  router.add('GET', '/v1/invoices/upcoming', upcomingRemoved);
  router.add('GET', '/v1/invoices/upcoming/lines', upcomingRemoved);

  router.add('GET', '/v1/invoices/:id', (ctx) => out(ctx, getInvoice(store, ctx.pathParams.id)));

  router.add('POST', '/v1/invoices', (ctx) => {
    const p = ctx.params;
    const customerId = str(p, 'customer');
    if (!customerId) throw missingParam('customer');
    const customer = store.get('customer', customerId);
    if (!customer) throw noSuch('customer', customerId, 'customer');
    const subId = str(p, 'subscription');
    const subscription = subId ? store.get('subscription', subId) : null;
    if (subId && !subscription) throw noSuch('subscription', subId, 'subscription');
    const collectionMethod = str(p, 'collection_method') ?? 'charge_automatically';
    const daysUntilDue = int(p, 'days_until_due');
    if (collectionMethod === 'send_invoice' && daysUntilDue === undefined && int(p, 'due_date') === undefined) {
      throw invalidRequest('Missing required param: days_until_due.', 'days_until_due', 'parameter_missing');
    }
    if (collectionMethod === 'charge_automatically' && daysUntilDue !== undefined) {
      throw invalidRequest('You can only set `days_until_due` if `collection_method` is `send_invoice`.', 'days_until_due', 'parameter_invalid_integer');
    }
    const behavior = str(p, 'pending_invoice_items_behavior') ?? 'exclude';
    const currency = str(p, 'currency')?.toLowerCase() ?? subscription?.currency ?? customer.currency ?? 'usd';
    const discounts = arr(p, 'discounts');
    const inv = createInvoice(store, {
      customer,
      subscription: subscription ?? null,
      currency,
      lines: [],
      billingReason: 'manual',
      periodStart: store.now(),
      periodEnd: store.now(),
      description: str(p, 'description') ?? null,
      includePending: behavior === 'include',
      collectionMethod,
      daysUntilDue: daysUntilDue ?? null,
      // A manual invoice stays a draft until finalized unless told to advance by itself.
      autoAdvance: bool(p, 'auto_advance') ?? false,
      metadata: applyMetadata({}, p),
      discounts: discounts ? discountIds(store, discounts, customer.id, 'discounts') : [],
    });
    const due = int(p, 'due_date');
    if (due !== undefined) inv.due_date = due;
    recomputeInvoice(store, inv);
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/add_lines', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    requireDraft(inv);
    const lines = arr(ctx.params, 'lines') ?? [];
    if (lines.length === 0) throw missingParam('lines');
    const before = { lines: publicCopy(inv.lines), total: inv.total };
    lines.forEach((raw: Obj, i) => {
      const param = (k: string) => `lines[${i}][${k}]`;
      const iiId = str(raw, 'invoice_item');
      let spec: LineSpec;
      if (iiId) {
        const ii = store.get('invoiceitem', iiId);
        if (!ii) throw noSuch('invoiceitem', iiId, param('invoice_item'));
        if (ii.invoice && ii.invoice !== inv.id) throw invalidRequest(`The invoice item ${iiId} is already on another invoice.`, param('invoice_item'), 'invoice_not_editable');
        ii.invoice = inv.id;
        spec = invoiceItemLine(store, ii);
      } else {
        const item = createInvoiceItem(store, { ...raw, customer: inv.customer, currency: inv.currency, invoice: inv.id }, `lines[${i}]`);
        spec = invoiceItemLine(store, item);
      }
      inv.lines.data.push(lineObject(store, inv.id, inv.currency, inv.parent?.subscription_details?.subscription ?? null, spec));
    });
    recomputeInvoice(store, inv);
    store.emit('invoice.updated', inv, before);
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/send', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.collection_method !== 'send_invoice') {
      throw invalidRequest("You can only manually send an invoice if its collection method is 'send_invoice'.", undefined, 'invoice_not_editable');
    }
    if (inv.status === 'draft') finalizeInvoice(store, inv);
    if (inv.status !== 'open') throw invalidRequest(`You can only send an open invoice. This invoice is ${inv.status}.`, undefined, 'invoice_not_editable');
    store.emit('invoice.sent', inv);
    return out(ctx, inv);
  });

  router.add('DELETE', '/v1/invoices/:id', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.status !== 'draft') {
      throw invalidRequest('You can only delete draft invoices. Try voiding it instead.', undefined, 'invoice_not_editable');
    }
    // The invoice items it held are deleted with it, as on Stripe.
    for (const line of inv.lines.data as Obj[]) {
      const iiId = line.parent?.invoice_item_details?.invoice_item;
      const ii = iiId ? store.get('invoiceitem', iiId) : undefined;
      if (ii) {
        store.remove('invoiceitem', ii.id);
        store.emit('invoiceitem.deleted', ii);
      }
    }
    store.remove('invoice', inv.id);
    store.emit('invoice.deleted', inv);
    return { id: inv.id, object: 'invoice', deleted: true };
  });

  router.add('GET', '/v1/invoices/:id/lines', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    return listOut(ctx, inv.lines.data);
  });

  router.add('POST', '/v1/invoices/:id', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    const p = ctx.params;
    const before = publicCopy({ metadata: inv.metadata, description: inv.description, auto_advance: inv.auto_advance, collection_method: inv.collection_method, discounts: inv.discounts });
    const draftOnly = ['collection_method', 'days_until_due', 'discounts', 'due_date'].filter((k) => k in p);
    if (draftOnly.length && inv.status !== 'draft') {
      throw invalidRequest(`You can only update ${draftOnly[0]} on a draft invoice.`, draftOnly[0], 'invoice_not_editable');
    }
    inv.metadata = applyMetadata(inv.metadata, p);
    if ('description' in p) inv.description = str(p, 'description') ?? null;
    const aa = bool(p, 'auto_advance');
    if (aa !== undefined) inv.auto_advance = aa;
    if ('collection_method' in p) inv.collection_method = str(p, 'collection_method');
    const dud = int(p, 'days_until_due');
    if (dud !== undefined) inv._days_until_due = dud;
    if ('discounts' in p) {
      const d = arr(p, 'discounts');
      inv.discounts = d ? discountIds(store, d, inv.customer, 'discounts') : [];
      recomputeInvoice(store, inv);
    }
    store.emit('invoice.updated', inv, before);
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/finalize', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.status !== 'draft') throw invalidRequest('This invoice is already finalized, you can\'t re-finalize a non-draft invoice.', undefined, 'invoice_not_editable');
    const aa = bool(ctx.params, 'auto_advance');
    if (aa !== undefined) inv.auto_advance = aa;
    finalizeInvoice(store, inv);
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/pay', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.status === 'paid') throw invalidRequest('Invoice is already paid', undefined, 'invoice_already_paid' as string);
    if (inv.status !== 'open') throw invalidRequest(`You can only pay an open invoice. This invoice is ${inv.status}.`, undefined, 'invoice_not_editable');
    if (bool(ctx.params, 'paid_out_of_band')) {
      markInvoicePaid(store, inv, null);
      return out(ctx, inv);
    }
    const pmId = str(ctx.params, 'payment_method');
    const sub = inv.parent?.subscription_details ? store.get('subscription', inv.parent.subscription_details.subscription) : undefined;
    const cust = store.get('customer', inv.customer);
    const defaultPm = sub?.default_payment_method ?? cust?.invoice_settings.default_payment_method ?? null;
    const pm = pmId ? resolvePaymentMethod(store, pmId) : defaultPm ? store.get('payment_method', defaultPm) ?? null : null;
    if (!pm) {
      throw invalidRequest('This customer has no attached payment source or default payment method. Please consider adding a default payment method.', undefined, 'invoice_no_customer_line_items');
    }
    const result = attemptInvoicePayment(store, inv, pm, true);
    if (result === 'declined') {
      const pi = store.get('payment_intent', inv._payment_intent);
      const e = cardError(pi?.last_payment_error?.message ?? 'Your card was declined.', 'card_declined', pi?.last_payment_error?.decline_code);
      e.keepEffects = true;
      throw e;
    }
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/void', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.status !== 'open') throw invalidRequest(`You can only void an open invoice. This invoice is ${inv.status}.`, undefined, 'invoice_not_editable');
    inv.status = 'void';
    inv.status_transitions.voided_at = store.now();
    inv.amount_remaining = 0;
    const pi = inv._payment_intent ? store.get('payment_intent', inv._payment_intent) : undefined;
    if (pi && pi.status !== 'succeeded') {
      pi.status = 'canceled';
      pi.canceled_at = store.now();
      store.emit('payment_intent.canceled', pi);
    }
    store.emit('invoice.voided', inv, { status: 'open' });
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/mark_uncollectible', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.status !== 'open') throw invalidRequest(`You can only mark an open invoice uncollectible. This invoice is ${inv.status}.`, undefined, 'invoice_not_editable');
    inv.status = 'uncollectible';
    inv.status_transitions.marked_uncollectible_at = store.now();
    store.emit('invoice.marked_uncollectible', inv, { status: 'open' });
    return out(ctx, inv);
  });

  router.add('GET', '/v1/invoices', (ctx) => {
    let items = store.list('invoice');
    const customer = str(ctx.params, 'customer');
    if (customer) items = items.filter((x) => x.customer === customer);
    const subscription = str(ctx.params, 'subscription');
    if (subscription) items = items.filter((x) => x.parent?.subscription_details?.subscription === subscription);
    const status = str(ctx.params, 'status');
    if (status) items = items.filter((x) => x.status === status);
    const method = str(ctx.params, 'collection_method');
    if (method) items = items.filter((x) => x.collection_method === method);
    const due = rangeFilter(ctx.params, 'due_date');
    if (due) items = items.filter((x) => x.due_date !== null && due(x.due_date));
    return listOut(ctx, items);
  });

  router.add('GET', '/v1/invoice_payments', (ctx) => {
    const invoice = str(ctx.params, 'invoice');
    const invoices = invoice ? [getInvoice(store, invoice)] : store.list('invoice');
    const all = invoices.flatMap((inv) => invoicePaymentsList(store, inv).data as Obj[]);
    return listOut(ctx, all);
  });
}
