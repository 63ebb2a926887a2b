/**
 * The invoice object: what an invoice for a customer (and subscription) holds when it is created,
 * with the customer's pending invoice items and the discounts that apply, and its payments list.
 */
import { noSuch } from '../errors';
import { newId } from '../ids';
import type { Obj, Store } from '../store';
import { invoiceItemLine, lineObject, recomputeInvoice, type LineSpec } from './invoice-lines';

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
