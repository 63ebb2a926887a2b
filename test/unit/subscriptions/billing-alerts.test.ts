import { BillingAlertCode, billingAlertsOf } from '../../../src/billing/subscriptions/billing-alerts';
import type { InvoiceView } from '../../../src/billing/invoices/invoice.view';
import type { SubscriptionView } from '../../../src/billing/subscriptions/subscription-read.repository';

const NOW = new Date('2027-05-01T00:00:00Z');
const DAY = 86_400_000;

function invoice(fields: Partial<InvoiceView> = {}): InvoiceView {
  return { id: 'inv', status: 'open', currency: 'usd', amountDue: 1900, amountPaid: 0, amountRemaining: 1900, total: 1900, attemptCount: 1, actionRequiredAttempt: null, stripeCreatedAt: NOW, nextPaymentAttempt: new Date(NOW.getTime() + 3 * DAY), hostedInvoiceUrl: 'https://pay', ...fields };
}

function sub(fields: Partial<SubscriptionView> = {}): SubscriptionView {
  return { id: 'sub', status: 'active', quantity: 1, currentPeriodStart: NOW, currentPeriodEnd: NOW, cancelAtPeriodEnd: false, canceledAt: null, trialEnd: null, createdAt: NOW, price: { id: 'p' }, pendingChange: null, latestInvoice: null, trialEndNoticeFor: null, ...fields };
}

const codes = (subs: SubscriptionView[]) => billingAlertsOf(subs, NOW).map((a) => a.code);

describe(billingAlertsOf.name, () => {
  it('asks nothing of a subscription whose latest invoice is paid, or that has ended', () => {
    expect(codes([sub({ latestInvoice: invoice({ status: 'paid', attemptCount: 1 }) })])).toEqual([]);
    expect(codes([sub({ status: 'canceled', latestInvoice: invoice() })])).toEqual([]);
    expect(codes([sub({ status: 'incomplete_expired', latestInvoice: invoice() })])).toEqual([]);
  });

  it('reports a failed payment with what is due, the next retry and where to pay', () => {
    const [alert] = billingAlertsOf([sub({ status: 'past_due', latestInvoice: invoice() })], NOW);
    expect(alert).toMatchObject({ code: BillingAlertCode.PAYMENT_FAILED, invoice: { id: 'inv', hostedInvoiceUrl: 'https://pay' } });
    expect(alert.message).toBe('The payment of 19.00 USD failed. We will try again on 2027-05-04. Update your card or pay the invoice.');
  });

  it('does not call an open invoice that was never attempted a failure', () => {
    expect(codes([sub({ status: 'incomplete', latestInvoice: invoice({ attemptCount: 0 }) })])).toEqual([]);
  });

  it('asks for authentication rather than a new card when the bank wants 3-D Secure', () => {
    expect(codes([sub({ status: 'past_due', latestInvoice: invoice({ actionRequiredAttempt: 1 }) })])).toEqual([BillingAlertCode.PAYMENT_ACTION_REQUIRED]);
    // A later attempt that failed outright asks for a card again.
    expect(codes([sub({ status: 'past_due', latestInvoice: invoice({ actionRequiredAttempt: 1, attemptCount: 2 }) })])).toEqual([BillingAlertCode.PAYMENT_FAILED]);
  });

  it('reports an unpaid subscription once, with its invoice', () => {
    const alerts = billingAlertsOf([sub({ status: 'unpaid', latestInvoice: invoice({ nextPaymentAttempt: null, attemptCount: 4 }) })], NOW);
    expect(alerts.map((a) => a.code)).toEqual([BillingAlertCode.SUBSCRIPTION_UNPAID]);
    expect(alerts[0].invoice?.id).toBe('inv');
  });

  it('announces a trial ending when Stripe said so, or within three days, never earlier', () => {
    const trialEnd = new Date(NOW.getTime() + 10 * DAY);
    expect(codes([sub({ status: 'trialing', trialEnd })])).toEqual([]);
    expect(codes([sub({ status: 'trialing', trialEnd, trialEndNoticeFor: trialEnd })])).toEqual([BillingAlertCode.TRIAL_ENDING]);
    // A notice for another trial end (the trial was extended since) does not count.
    expect(codes([sub({ status: 'trialing', trialEnd, trialEndNoticeFor: new Date(NOW.getTime() + DAY) })])).toEqual([]);
    expect(codes([sub({ status: 'trialing', trialEnd: new Date(NOW.getTime() + 2 * DAY) })])).toEqual([BillingAlertCode.TRIAL_ENDING]);
    expect(codes([sub({ status: 'active', trialEnd: new Date(NOW.getTime() + DAY) })])).toEqual([]);
  });
});
