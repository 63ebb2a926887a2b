/**
 * An invoice as the API shows it: what `toInvoiceType` needs, from an entity or from a row read
 * in raw SQL (a subscription's latest invoice, joined to it).
 */
export interface InvoiceView {
  id: string;
  number?: string | null;
  status: string;
  currency: string;
  amountDue: number;
  amountPaid: number;
  amountRemaining: number;
  total: number;
  hostedInvoiceUrl?: string | null;
  periodStart?: Date | null;
  periodEnd?: Date | null;
  paidAt?: Date | null;
  attemptCount: number;
  nextPaymentAttempt?: Date | null;
  /** The attempt that waited for 3-D Secure (see Invoice.actionRequiredAttempt). */
  actionRequiredAttempt?: number | null;
  stripeCreatedAt: Date;
}
