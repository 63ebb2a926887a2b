import type { Obj, Store } from '../store';

function unwired(name: string): never {
  throw new Error(`emulator: ${name} is not wired (import the resource module that settles it)`);
}

/**
 * How a payment's outcome travels up the object graph: a payment intent settles its invoice,
 * and an invoice settles its subscription. The lower module calls these; the module that owns
 * the object above fills them in when it loads. The imports then point one way
 * (subscriptions -> invoice-payments -> payment-intents -> settlements) instead of in a circle.
 */
export const settlements: {
  /** An invoice's payment intent succeeded (set by invoice-payments.ts). */
  invoicePaid(store: Store, inv: Obj, pi: Obj | null): void;
  /** An invoice's payment attempt failed (set by invoice-payments.ts). */
  invoicePaymentFailed(store: Store, inv: Obj): void;
  /** An invoice's payment needs authentication by the customer (set by invoice-payments.ts). */
  invoicePaymentActionRequired(store: Store, inv: Obj): void;
  /** An invoice was paid: its subscription moves on (set by subscriptions.ts). */
  subscriptionInvoicePaid(store: Store, inv: Obj, pi: Obj | null): void;
  /** An invoice's payment failed: its subscription falls behind (set by subscriptions.ts). */
  subscriptionInvoiceFailed(store: Store, inv: Obj): void;
} = {
  invoicePaid: () => unwired('invoicePaid'),
  invoicePaymentFailed: () => unwired('invoicePaymentFailed'),
  invoicePaymentActionRequired: () => unwired('invoicePaymentActionRequired'),
  subscriptionInvoicePaid: () => unwired('subscriptionInvoicePaid'),
  subscriptionInvoiceFailed: () => unwired('subscriptionInvoiceFailed'),
};
