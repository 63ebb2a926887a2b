import type { InvoiceView } from '../invoices/invoice.view';
import type { SubscriptionView } from './subscription-read.repository';

export enum BillingAlertCode {
  PAYMENT_FAILED = 'PAYMENT_FAILED',
  PAYMENT_ACTION_REQUIRED = 'PAYMENT_ACTION_REQUIRED',
  TRIAL_ENDING = 'TRIAL_ENDING',
  SUBSCRIPTION_UNPAID = 'SUBSCRIPTION_UNPAID',
}

/** Something the customer must do, and the objects a frontend needs to send them to do it. */
export interface BillingAlert {
  code: BillingAlertCode;
  message: string;
  subscription: SubscriptionView;
  invoice: InvoiceView | null;
  trialEnd: Date | null;
}

/** Stripe sends `customer.subscription.trial_will_end` this long before a trial ends. */
export const TRIAL_ENDING_WINDOW_MS = 3 * 24 * 3600 * 1000;

/** Statuses that still bill: an ended subscription asks nothing of the customer. */
const ENDED = new Set(['canceled', 'incomplete_expired']);

function money(amount: number, currency: string): string {
  return `${(amount / 100).toFixed(2)} ${currency.toUpperCase()}`;
}

/**
 * What needs the customer's action, from the subscriptions as stored (Stripe's statuses and
 * latest invoices, kept current by webhooks): a failed payment that Stripe will retry, a payment
 * waiting for 3-D Secure, an unpaid subscription, a trial about to end. It reads nothing and
 * writes nothing: once a retry is paid, the invoice row says paid and the alert is gone.
 *
 * A trial is ending once Stripe announced it (`trial_will_end`, which follows a test clock's
 * time) or, should that event have been missed, within three days of `now`.
 */
export function billingAlertsOf(subscriptions: SubscriptionView[], now: Date): BillingAlert[] {
  const alerts: BillingAlert[] = [];
  for (const subscription of subscriptions) {
    if (ENDED.has(subscription.status)) continue;
    const invoice = subscription.latestInvoice;
    const unpaidInvoice = invoice && (invoice.status === 'open' || invoice.status === 'uncollectible') ? invoice : null;
    if (subscription.status === 'unpaid') {
      alerts.push({
        code: BillingAlertCode.SUBSCRIPTION_UNPAID,
        message: unpaidInvoice
          ? `Your subscription is suspended: ${money(unpaidInvoice.amountRemaining, unpaidInvoice.currency)} is unpaid after the last payment attempt. Pay the invoice to restore it.`
          : 'Your subscription is suspended until its unpaid invoice is paid.',
        subscription,
        invoice: unpaidInvoice,
        trialEnd: null,
      });
      continue;
    }
    if (invoice?.status === 'open' && invoice.attemptCount > 0 && invoice.actionRequiredAttempt === invoice.attemptCount) {
      alerts.push({
        code: BillingAlertCode.PAYMENT_ACTION_REQUIRED,
        message: `Your bank asks you to confirm the payment of ${money(invoice.amountRemaining, invoice.currency)}. Open the invoice to authenticate it.`,
        subscription,
        invoice,
        trialEnd: null,
      });
    } else if (invoice?.status === 'open' && invoice.attemptCount > 0) {
      const retry = invoice.nextPaymentAttempt ? ` We will try again on ${invoice.nextPaymentAttempt.toISOString().slice(0, 10)}.` : '';
      alerts.push({
        code: BillingAlertCode.PAYMENT_FAILED,
        message: `The payment of ${money(invoice.amountRemaining, invoice.currency)} failed.${retry} Update your card or pay the invoice.`,
        subscription,
        invoice,
        trialEnd: null,
      });
    }
    const trialEnd = subscription.trialEnd;
    if (subscription.status === 'trialing' && trialEnd) {
      const announced = subscription.trialEndNoticeFor?.getTime() === trialEnd.getTime();
      if (announced || trialEnd.getTime() - now.getTime() <= TRIAL_ENDING_WINDOW_MS) {
        alerts.push({
          code: BillingAlertCode.TRIAL_ENDING,
          message: `Your trial ends on ${trialEnd.toISOString().slice(0, 10)}; the subscription is charged from then on.`,
          subscription,
          invoice: null,
          trialEnd,
        });
      }
    }
  }
  return alerts;
}
