import { Customer } from '../../billing/customers/customer.entity';
import { EntitlementService } from '../../billing/entitlements/entitlement.service';
import { Invoice } from '../../billing/invoices/invoice.entity';
import { InvoiceService } from '../../billing/invoices/invoice.service';
import { lockCustomerSubscriptions, SubscriptionService } from '../../billing/subscriptions/subscription.service';
import { BillingError, ErrorCode } from '../../common/errors';
import type { InvoiceSnapshot, StripeGateway, SubscriptionSnapshot } from '../../stripe/stripe.gateway';
import { toObjectSnapshot } from '../../stripe/stripe.mappers';
import { refetchOrEventCopy, type EventHandler } from './types';

/** The subscription and, when we do not hold it yet, its latest invoice (what `latestInvoice` shows). */
export interface SubscriptionFetch {
  subscription: SubscriptionSnapshot;
  latestInvoice: InvoiceSnapshot | null;
}

/**
 * `customer.subscription.created|updated|deleted|trial_will_end`.
 *
 * Ordering: Stripe does not guarantee delivery order, and several events of one subscription
 * often share the same `created` second, so comparing event timestamps cannot tell which is
 * newer. Instead the subscription is refetched from Stripe and that current state is applied,
 * dated by when the read started. Whatever order the events arrive in, each application writes
 * Stripe's latest state, so the row converges to it. Only when the refetch finds nothing (the
 * object is gone) is the event's own copy applied, dated by the event, which `applySnapshot`
 * never lets overwrite anything newer.
 *
 * The subscription's latest invoice is read too when its row is missing (its own events may
 * come later, or be lost), so `latestInvoice` is answered from our tables as soon as the
 * subscription points at it.
 */
export const subscriptionHandler: EventHandler<SubscriptionFetch> = {
  types: [
    'customer.subscription.created',
    'customer.subscription.updated',
    'customer.subscription.deleted',
    // A pending update applied or expired carries the subscription's new items.
    'customer.subscription.pending_update_applied',
    'customer.subscription.pending_update_expired',
    // Three days before a trial ends: the trial-ending billing alert.
    'customer.subscription.trial_will_end',
  ],

  async refetch(event, { gateway, em }) {
    const mapped = toObjectSnapshot(event.object);
    if (mapped.kind !== 'subscription') return null;
    // A subscription of a Stripe customer we do not know is not ours (another app on the account).
    if (!(await em.count(Customer, { stripeCustomerId: mapped.subscription.customerId }))) return null;
    return refetchOrEventCopy(event, { subscription: mapped.subscription, latestInvoice: null }, async () => {
      const subscription = await gateway.retrieveSubscription(mapped.subscription.id);
      const invoiceId = subscription.latestInvoiceId;
      const known = invoiceId ? await em.count(Invoice, { stripeInvoiceId: invoiceId }) : 1;
      return { subscription, latestInvoice: known ? null : await invoiceOrNull(gateway, invoiceId!) };
    });
  },

  async apply(event, fetched, { em, gateway, log }) {
    if (!fetched) return 'ignored';
    const { subscription, latestInvoice } = fetched.snapshot;
    const customer = await em.findOne(Customer, { stripeCustomerId: subscription.customerId });
    if (!customer) {
      log.debug({ eventId: event.id, customer: subscription.customerId }, 'subscription event for an unknown customer');
      return 'ignored';
    }
    // startSubscription holds this lock from its Stripe call until its row is committed: waiting
    // here keeps the row it inserts from racing ours (a worker connection waits, never the API's).
    await lockCustomerSubscriptions(em, customer.id);
    const service = new SubscriptionService(em, gateway, { priceMap: {} });
    await service.applySnapshot(em, subscription, {
      customer,
      syncedAt: fetched.syncedAt,
      trialWillEnd: event.type === 'customer.subscription.trial_will_end',
    });
    if (latestInvoice) await new InvoiceService(em).applySnapshot(em, latestInvoice, fetched.syncedAt, customer);
    // The plan's features follow the subscription row at once, in the same transaction.
    await new EntitlementService(em, log).recomputeForCustomer(customer.id);
    return 'processed';
  },
};

/** The invoice, or null when Stripe no longer has it; other failures throw (the job retries). */
async function invoiceOrNull(gateway: StripeGateway, id: string): Promise<InvoiceSnapshot | null> {
  try {
    return await gateway.retrieveInvoice(id);
  } catch (error) {
    if (error instanceof BillingError && error.code === ErrorCode.NOT_FOUND) return null;
    throw error;
  }
}
