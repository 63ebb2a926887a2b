import { BillingError, ErrorCode } from '../../common/errors';
import { CheckoutSession } from '../../billing/checkout/checkout-session.entity';
import { CheckoutService } from '../../billing/checkout/checkout.service';
import type { CheckoutSessionSnapshot } from '../../stripe/stripe.gateway';
import { toObjectSnapshot } from '../../stripe/stripe.mappers';
import type { EventHandler } from './types';

/**
 * `checkout.session.completed|expired`: the same sync `checkoutSession(id)` does on demand. The
 * session is refetched from Stripe (with its subscription), so a late or reordered event still
 * writes Stripe's current state; a session only moves forward, so nothing is undone. Sessions
 * Tollgate did not create are ignored.
 */
export const handleCheckoutSessionEvent: EventHandler = async (event, { em, gateway }) => {
  const mapped = toObjectSnapshot(event.object);
  if (mapped.kind !== 'checkout.session') return 'ignored';
  if (!(await em.count(CheckoutSession, { stripeSessionId: mapped.session.id }))) return 'ignored';

  let snapshot: CheckoutSessionSnapshot = mapped.session;
  let fetchedAt = event.createdAt;
  try {
    const startedAt = new Date();
    snapshot = await gateway.retrieveCheckoutSession(mapped.session.id);
    fetchedAt = startedAt;
  } catch (error) {
    if (!(error instanceof BillingError && error.code === ErrorCode.NOT_FOUND)) throw error;
  }
  const row = await new CheckoutService(em, gateway).applySnapshot(em, snapshot, fetchedAt);
  return row ? 'processed' : 'ignored';
};
