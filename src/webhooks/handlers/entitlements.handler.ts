import { Customer } from '../../billing/customers/customer.entity';
import { EntitlementService } from '../../billing/entitlements/entitlement.service';
import type { ActiveEntitlementSnapshot } from '../../stripe/stripe.gateway';
import type { EventHandler } from './types';

interface EntitlementSummary {
  stripeCustomerId: string;
  /** Every page of the customer's active entitlements. */
  entitlements: ActiveEntitlementSnapshot[];
}

/**
 * `entitlements.active_entitlement_summary.updated`. The event is only a signal: it carries the
 * first 10 entitlements at most (`has_more` beyond), and an older event may arrive after a newer
 * one, so its content is never applied. The customer's whole list is read from Stripe (all pages,
 * outside any transaction), then applied unless a newer read was applied meanwhile.
 */
export const entitlementSummaryHandler: EventHandler<EntitlementSummary> = {
  types: ['entitlements.active_entitlement_summary.updated'],

  async refetch(event, { gateway, em }) {
    const stripeCustomerId = event.object.customer;
    if (typeof stripeCustomerId !== 'string' || !stripeCustomerId) return null;
    if (!(await em.count(Customer, { stripeCustomerId }))) return null;
    const syncedAt = new Date();
    const entitlements = await gateway.listActiveEntitlements(stripeCustomerId);
    return { snapshot: { stripeCustomerId, entitlements }, syncedAt, current: true };
  },

  async apply(_event, fetched, { em, log }) {
    if (!fetched) return 'ignored';
    const outcome = await new EntitlementService(em, log).applyFromStripe(fetched.snapshot.stripeCustomerId, fetched.snapshot.entitlements, fetched.syncedAt);
    return outcome === 'unknown-customer' ? 'ignored' : 'processed';
  },
};
