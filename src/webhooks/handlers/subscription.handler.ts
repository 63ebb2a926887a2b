import { Customer } from '../../billing/customers/customer.entity';
import { EntitlementService } from '../../billing/entitlements/entitlement.service';
import { lockCustomerSubscriptions, SubscriptionService } from '../../billing/subscriptions/subscription.service';
import type { SubscriptionSnapshot } from '../../stripe/stripe.gateway';
import { toObjectSnapshot } from '../../stripe/stripe.mappers';
import { refetchOrEventCopy, type EventHandler } from './types';

/**
 * `customer.subscription.created|updated|deleted`.
 *
 * Ordering: Stripe does not guarantee delivery order, and several events of one subscription
 * often share the same `created` second, so comparing event timestamps cannot tell which is
 * newer. Instead the subscription is refetched from Stripe and that current state is applied,
 * dated by when the read started. Whatever order the events arrive in, each application writes
 * Stripe's latest state, so the row converges to it. Only when the refetch finds nothing (the
 * object is gone) is the event's own copy applied, dated by the event, which `applySnapshot`
 * never lets overwrite anything newer.
 */
export const subscriptionHandler: EventHandler<SubscriptionSnapshot> = {
  types: [
    'customer.subscription.created',
    'customer.subscription.updated',
    'customer.subscription.deleted',
    // A pending update applied or expired carries the subscription's new items.
    'customer.subscription.pending_update_applied',
    'customer.subscription.pending_update_expired',
  ],

  async refetch(event, { gateway, em }) {
    const mapped = toObjectSnapshot(event.object);
    if (mapped.kind !== 'subscription') return null;
    // A subscription of a Stripe customer we do not know is not ours (another app on the account).
    if (!(await em.count(Customer, { stripeCustomerId: mapped.subscription.customerId }))) return null;
    return refetchOrEventCopy(event, mapped.subscription, () => gateway.retrieveSubscription(mapped.subscription.id));
  },

  async apply(event, fetched, { em, gateway, log }) {
    if (!fetched) return 'ignored';
    const customer = await em.findOne(Customer, { stripeCustomerId: fetched.snapshot.customerId });
    if (!customer) {
      log.debug({ eventId: event.id, customer: fetched.snapshot.customerId }, 'subscription event for an unknown customer');
      return 'ignored';
    }
    // startSubscription holds this lock from its Stripe call until its row is committed: waiting
    // here keeps the row it inserts from racing ours (a worker connection waits, never the API's).
    await lockCustomerSubscriptions(em, customer.id);
    const service = new SubscriptionService(em, gateway, { priceMap: {} });
    await service.applySnapshot(em, fetched.snapshot, { customer, syncedAt: fetched.syncedAt });
    // The plan's features follow the subscription row at once, in the same transaction.
    await new EntitlementService(em, log).recomputeForCustomer(customer.id);
    return 'processed';
  },
};
