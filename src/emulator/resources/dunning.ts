/**
 * Retries of failed subscription payments, run by the clock (global or test clock) at each
 * invoice's `next_payment_attempt`, with the payment method the subscription would use now: a
 * customer who replaced a failing default card recovers on the next retry.
 */
import type { Obj, Store } from '../store';
import { attemptInvoicePayment } from './invoice-payments';
import { defaultPaymentMethod } from './subscription-model';

/** The next scheduled retry of an open invoice, null when none is scheduled. */
export function nextRetryAt(inv: Obj): number | null {
  return inv.status === 'open' && typeof inv.next_payment_attempt === 'number' ? inv.next_payment_attempt : null;
}

/** The payment method a retry charges: the subscription's default, else the customer's. */
function retryPaymentMethod(store: Store, inv: Obj): Obj | null {
  const subId = inv.parent?.subscription_details?.subscription;
  const sub = subId ? store.get('subscription', subId) : undefined;
  if (sub) return defaultPaymentMethod(store, sub);
  const pmId = store.get('customer', inv.customer)?.invoice_settings.default_payment_method;
  return pmId ? (store.get('payment_method', pmId) ?? null) : null;
}

/** Retries the invoice now (the clock reached its next_payment_attempt). */
export function retryInvoice(store: Store, inv: Obj): void {
  if (nextRetryAt(inv) === null) return;
  inv.next_payment_attempt = null;
  attemptInvoicePayment(store, inv, retryPaymentMethod(store, inv));
}
