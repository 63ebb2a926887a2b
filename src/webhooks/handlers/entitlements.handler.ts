import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { EntitlementService, type StripeRefreshOutcome } from '../../billing/entitlements/entitlement.service';
import type { StripeGateway } from '../../stripe/stripe.gateway';
import type { EventHandler } from './types';

/**
 * Given a Stripe customer, refetches all its active entitlements from Stripe and applies them.
 * The event is only a signal: it carries the first 10 entitlements at most (`has_more` beyond),
 * and an older event may arrive after a newer one, so its content is never applied.
 */
export function refreshCustomerEntitlements(
  deps: { em: EntityManager; gateway: StripeGateway; log: Logger },
  stripeCustomerId: string,
): Promise<StripeRefreshOutcome> {
  return new EntitlementService(deps.em, deps.log).refreshFromStripe(deps.gateway, stripeCustomerId);
}

/** `entitlements.active_entitlement_summary.updated`. */
export const handleEntitlementSummaryEvent: EventHandler = async (event, ctx) => {
  const customer = event.object.customer;
  if (typeof customer !== 'string' || !customer) return 'ignored';
  const outcome = await refreshCustomerEntitlements(ctx, customer);
  return outcome === 'unknown-customer' ? 'ignored' : 'processed';
};
