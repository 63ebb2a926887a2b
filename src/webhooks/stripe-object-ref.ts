import type { StripeObjectRef } from '../jobs/job-queue.repository';
import { withoutNul } from './stripe-event.repository';

function idOf(value: unknown): string | null {
  if (typeof value === 'string' && value) return value;
  if (value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'string') return (value as { id: string }).id;
  return null;
}

/**
 * The Stripe object an event is about (`data.object`: its `object` and `id`) and the customer it
 * belongs to, which decide the job's key and queue. Null for an event without an identifiable
 * object, which is then recorded as ignored.
 */
export function stripeObjectRefOf(object: Record<string, unknown> | undefined | null): StripeObjectRef | null {
  if (!object) return null;
  const objectType = typeof object.object === 'string' && object.object ? object.object : null;
  // An entitlement summary has no id of its own: it is the customer's, so its events are keyed by the customer.
  const objectId =
    typeof object.id === 'string' && object.id
      ? object.id
      : objectType === 'entitlements.active_entitlement_summary'
        ? idOf(object.customer)
        : null;
  if (!objectType || !objectId) return null;
  const customerId = objectType === 'customer' ? objectId : idOf(object.customer);
  return {
    objectType: withoutNul(objectType),
    objectId: withoutNul(objectId),
    customerId: customerId === null ? null : withoutNul(customerId),
  };
}

/** The same for a stored payload (a whole event). */
export function stripeObjectRefOfPayload(payload: Record<string, unknown>): StripeObjectRef | null {
  const data = payload.data as { object?: Record<string, unknown> } | undefined;
  return stripeObjectRefOf(data?.object);
}
