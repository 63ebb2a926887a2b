/**
 * An invoice's way to being paid: finalization (number, hosted page, PaymentIntent, customer
 * balance), payment attempts and their outcomes, which travel up to the subscription through
 * `settlements` and count toward the retry schedule (dunning-settings.ts).
 */
import type { Obj, Store } from '../store';
import { afterInvoiced } from './coupons';
import { balanceTransaction } from './customer-extras';
import { recordFailedAttempt } from './dunning-settings';
import { recomputeInvoice } from './invoice-lines';
import { confirmIntent, createPaymentIntent } from './payment-intents';
import { settlements } from './settlements';

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
  // The first attempt and the schedule's retries count; a manual payment after the first does not.
  if (pi && (inv.attempt_count === 0 || inv._automatic_attempt === true)) inv.attempt_count += 1;
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

settlements.invoicePaid = markInvoicePaid;
settlements.invoicePaymentFailed = onInvoicePaymentFailed;
settlements.invoicePaymentActionRequired = onInvoicePaymentActionRequired;
