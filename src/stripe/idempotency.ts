import { createHash } from 'node:crypto';

/** Stripe rejects idempotency keys longer than this. */
export const STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH = 255;

const SCOPE_PATTERN = /^[a-z][a-z0-9_.-]*$/;

/**
 * Encodes one part so that the separator cannot appear inside it: without this,
 * `('a:b', 'c')` and `('a', 'b:c')` would produce the same key for different requests.
 */
function encodePart(part: string | number): string {
  return String(part).replace(/[%:]/g, (c) => (c === '%' ? '%25' : '%3A'));
}

/**
 * A deterministic Stripe idempotency key for one logical write.
 *
 * The same scope and parts always give the same key, so a retried request (by the SDK, by a
 * job that re-runs, or by a client that repeats its own key) is recognised by Stripe as the
 * same request and answered with the first result instead of creating a second object.
 *
 * `scope` names the operation (`subscription.create`); `parts` identify the request (our row
 * id, the Stripe customer id, the caller's key). Keys that would exceed Stripe's 255
 * characters become `scope:sha256(parts)`, which is still stable.
 */
export function idempotencyKey(scope: string, ...parts: Array<string | number>): string {
  if (!SCOPE_PATTERN.test(scope)) {
    throw new TypeError(`Invalid idempotency scope "${scope}"`);
  }
  if (parts.length === 0) {
    throw new TypeError('An idempotency key needs at least one identifying part');
  }
  for (const part of parts) {
    if (typeof part === 'string' ? part.length === 0 : !Number.isFinite(part)) {
      throw new TypeError(`Empty or invalid part in idempotency key for "${scope}"`);
    }
  }
  const key = [scope, ...parts.map(encodePart)].join(':');
  if (key.length <= STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH) return key;
  const digest = createHash('sha256').update(key).digest('hex');
  return `${scope}:h:${digest}`;
}

/**
 * The key for one meter event sent through the v1 endpoint. Stripe also deduplicates on the
 * event `identifier`, but the idempotency key makes the SDK's own retries safe as well.
 */
export function meterEventIdempotencyKey(identifier: string): string {
  return idempotencyKey('meter_event.create', identifier);
}
