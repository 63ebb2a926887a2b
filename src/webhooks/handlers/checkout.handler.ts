import { CheckoutSession } from '../../billing/checkout/checkout-session.entity';
import { CheckoutService } from '../../billing/checkout/checkout.service';
import type { CheckoutSessionSnapshot } from '../../stripe/stripe.gateway';
import { toObjectSnapshot } from '../../stripe/stripe.mappers';
import { refetchOrEventCopy, type EventHandler } from './types';

/**
 * `checkout.session.completed|expired`: the same sync `checkoutSession(id)` does on demand. The
 * session is refetched from Stripe (with its subscription), so a late or reordered event still
 * writes Stripe's current state; a session only moves forward, so nothing is undone. Sessions
 * Tollgate did not create are ignored.
 */
export const checkoutSessionHandler: EventHandler<CheckoutSessionSnapshot> = {
  types: ['checkout.session.completed', 'checkout.session.expired'],

  async refetch(event, { gateway, em }) {
    const mapped = toObjectSnapshot(event.object);
    if (mapped.kind !== 'checkout.session') return null;
    if (!(await em.count(CheckoutSession, { stripeSessionId: mapped.session.id }))) return null;
    return refetchOrEventCopy(event, mapped.session, () => gateway.retrieveCheckoutSession(mapped.session.id));
  },

  async apply(_event, fetched, { em, gateway }) {
    if (!fetched) return 'ignored';
    const row = await new CheckoutService(em, gateway).applySnapshot(em, fetched.snapshot, fetched.syncedAt);
    return row ? 'processed' : 'ignored';
  },
};
