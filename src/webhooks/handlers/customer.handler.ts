import { Customer } from '../../billing/customers/customer.entity';
import type { CustomerSnapshot } from '../../stripe/stripe.gateway';
import { toObjectSnapshot } from '../../stripe/stripe.mappers';
import { refetchOrEventCopy, type EventHandler } from './types';

/**
 * `customer.updated|deleted`: the email of the customer row with that Stripe id; a customer
 * deleted in Stripe is unlinked (its next subscription creates a new Stripe customer), while its
 * subscriptions follow their own `customer.subscription.deleted` events.
 */
export const customerHandler: EventHandler<CustomerSnapshot> = {
  types: ['customer.updated', 'customer.deleted'],

  async refetch(event, { gateway, em }) {
    const mapped = toObjectSnapshot(event.object);
    if (mapped.kind !== 'customer') return null;
    if (!(await em.count(Customer, { stripeCustomerId: mapped.customer.id }))) return null;
    if (event.type === 'customer.deleted' || mapped.customer.deleted) {
      return { snapshot: { ...mapped.customer, deleted: true }, syncedAt: event.createdAt, current: false };
    }
    return refetchOrEventCopy(event, mapped.customer, () => gateway.retrieveCustomer(mapped.customer.id));
  },

  async apply(_event, fetched, { em }) {
    if (!fetched) return 'ignored';
    const row = await em.findOne(Customer, { stripeCustomerId: fetched.snapshot.id });
    if (!row) return 'ignored';
    if (fetched.snapshot.deleted) {
      row.stripeCustomerId = null;
    } else {
      row.email = fetched.snapshot.email;
    }
    await em.flush();
    return 'processed';
  },
};
