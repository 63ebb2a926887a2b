/**
 * Invoices: created by subscriptions (start, renewal, prorations), finalised with a PaymentIntent
 * whose client_secret is exposed as `confirmation_secret`, paid, voided. Retrieve, list, pay, void.
 */
import { cardError, invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, bool, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { createPaymentIntent, confirmIntent } from './payment-intents';
import { resolvePaymentMethod } from './payment-methods';
import { settlements } from './settlements';

export interface LineSpec {
  amount: number;
  description: string;
  price: Obj | null;
  quantity: number | null;
  period: { start: number; end: number };
  subscriptionItem?: string | null;
  proration?: boolean;
}

export interface InvoiceSpec {
  customer: Obj;
  subscription: Obj | null;
  currency: string;
  lines: LineSpec[];
  billingReason: string;
  periodStart: number;
  periodEnd: number;
  description?: string | null;
}

export function createInvoice(store: Store, spec: InvoiceSpec): Obj {
  const id = newId('in_');
  const now = store.now();
  const lines = spec.lines.map((l) => ({
    id: newId('il_'),
    object: 'line_item',
    amount: l.amount,
    currency: spec.currency,
    description: l.description,
    discount_amounts: [],
    discountable: true,
    discounts: [],
    invoice: id,
    livemode: false,
    metadata: {},
    parent: l.proration
      ? {
          invoice_item_details: null,
          subscription_item_details: {
            invoice_item: newId('ii_'),
            proration: true,
            proration_details: { credited_items: null },
            subscription: spec.subscription?.id ?? null,
            subscription_item: l.subscriptionItem ?? null,
          },
          type: 'subscription_item_details',
        }
      : spec.subscription
        ? {
            invoice_item_details: null,
            subscription_item_details: {
              invoice_item: null,
              proration: false,
              proration_details: { credited_items: null },
              subscription: spec.subscription.id,
              subscription_item: l.subscriptionItem ?? null,
            },
            type: 'subscription_item_details',
          }
        : null,
    period: l.period,
    pretax_credit_amounts: [],
    pricing: l.price
      ? { price_details: { price: l.price.id, product: l.price.product }, type: 'price_details', unit_amount_decimal: l.price.unit_amount_decimal }
      : null,
    quantity: l.quantity,
    subscription: spec.subscription?.id ?? null,
    subtotal: l.amount,
    taxes: [],
  }));
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
    auto_advance: true,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    automatically_finalizes_at: null,
    billing_reason: spec.billingReason,
    collection_method: 'charge_automatically',
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
    discounts: [],
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
    metadata: {},
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
    test_clock: null,
    total,
    total_discount_amounts: [],
    total_excluding_tax: total,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: now,
    _payment_intent: null,
  };
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
  inv.attempted = true;
  inv.attempt_count += 1;
  store.emit('invoice.payment_failed', inv);
  settlements.subscriptionInvoiceFailed(store, inv);
}

/** Charges an open invoice with a payment method (null: nothing to charge with, the attempt fails). */
export function attemptInvoicePayment(store: Store, inv: Obj, pm: Obj | null): 'succeeded' | 'requires_action' | 'declined' {
  if (inv.status !== 'open') return 'succeeded';
  const pi = inv._payment_intent ? store.get('payment_intent', inv._payment_intent) : undefined;
  if (!pi) {
    markInvoicePaid(store, inv, null);
    return 'succeeded';
  }
  if (!pm) {
    onInvoicePaymentFailed(store, inv);
    return 'declined';
  }
  return confirmIntent(store, pi, pm);
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

settlements.invoicePaid = markInvoicePaid;
settlements.invoicePaymentFailed = onInvoicePaymentFailed;

export function registerInvoices(router: Router, store: Store): void {
  store.includables.set('invoice', {
    confirmation_secret: (inv) => {
      const pi = inv._payment_intent ? store.get('payment_intent', inv._payment_intent) : undefined;
      return pi && inv.status === 'open' ? { client_secret: pi.client_secret, type: 'payment_intent' } : null;
    },
    payments: (inv) => invoicePaymentsList(store, inv),
  });
  store.includables.set('invoice_payment', {});

  router.add('GET', '/v1/invoices/upcoming', () => {
    throw invalidRequest('The upcoming invoice endpoint was removed; use POST /v1/invoices/create_preview.', undefined, 'parameter_unknown');
  });

  router.add('GET', '/v1/invoices/:id', (ctx) => out(ctx, getInvoice(store, ctx.pathParams.id)));

  router.add('GET', '/v1/invoices/:id/lines', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    return listOut(ctx, inv.lines.data);
  });

  router.add('POST', '/v1/invoices/:id', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    const before = { metadata: { ...inv.metadata } };
    inv.metadata = applyMetadata(inv.metadata, ctx.params);
    if ('description' in ctx.params) inv.description = str(ctx.params, 'description') ?? null;
    store.emit('invoice.updated', inv, before);
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/finalize', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.status !== 'draft') throw invalidRequest('This invoice is already finalized, you can\'t re-finalize a non-draft invoice.', undefined, 'invoice_not_editable');
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
    const result = attemptInvoicePayment(store, inv, pm);
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
    return listOut(ctx, items);
  });

  router.add('GET', '/v1/invoice_payments', (ctx) => {
    const invoice = str(ctx.params, 'invoice');
    const invoices = invoice ? [getInvoice(store, invoice)] : store.list('invoice');
    const all = invoices.flatMap((inv) => invoicePaymentsList(store, inv).data as Obj[]);
    return listOut(ctx, all);
  });
}
