import { BillingError, ErrorCode } from '../../common/errors';
import { Customer } from '../../billing/customers/customer.entity';
import { EntitlementService } from '../../billing/entitlements/entitlement.service';
import { lockCustomerSubscriptions, SubscriptionService } from '../../billing/subscriptions/subscription.service';
import type { SubscriptionSnapshot } from '../../stripe/stripe.gateway';
import { toObjectSnapshot } from '../../stripe/stripe.mappers';
import type { EventHandler } from './types';

/**
 * `customer.subscription.created|updated|deleted`.
 *
 * Ordering: Stripe does not guarantee delivery order, and several events of one subscription
 * often share the same `created` second, so comparing event timestamps cannot tell which is
 * newer. Instead the subscription is refetched from Stripe and that current state is applied
 * with syncedAt = now. Whatever order the events arrive in, each one writes Stripe's latest
 * state, so the row converges to it. Only when the refetch finds nothing (the object is gone)
 * is the event's own copy applied, dated by the event, which `applySnapshot` never lets
 * overwrite anything newer.
 */
export const handleSubscriptionEvent: EventHandler = async (event, { em, gateway, log }) => {
  const mapped = toObjectSnapshot(event.object);
  if (mapped.kind !== 'subscription') return 'ignored';
  const fromEvent = mapped.subscription;

  // A subscription of a Stripe customer we do not know is not ours (another app on the account).
  const customer = await em.findOne(Customer, { stripeCustomerId: fromEvent.customerId });
  if (!customer) {
    log.debug({ eventId: event.id, customer: fromEvent.customerId }, 'subscription event for an unknown customer');
    return 'ignored';
  }

  // startSubscription holds this lock from its Stripe call until its row is committed.
  await lockCustomerSubscriptions(em, customer.id);

  let snapshot: SubscriptionSnapshot = fromEvent;
  let syncedAt = event.createdAt;
  try {
    snapshot = await gateway.retrieveSubscription(fromEvent.id);
    syncedAt = new Date();
  } catch (error) {
    if (!(error instanceof BillingError && error.code === ErrorCode.NOT_FOUND)) throw error;
  }

  const service = new SubscriptionService(em, gateway, { priceMap: {} });
  await service.applySnapshot(em, snapshot, { customer, syncedAt });
  await new EntitlementService(em, log).recomputeForCustomer(customer.id);
  return 'processed';
};
