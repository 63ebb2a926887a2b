import { createHmac, randomUUID } from 'node:crypto';

/**
 * A `Stripe-Signature` header exactly as Stripe computes it: HMAC-SHA256 over `<t>.<payload>`
 * with the endpoint secret, hex encoded. Tests sign real bytes; nothing fakes the check.
 */
export function stripeSignature(payload: string | Uint8Array, secret: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`, 'utf8').update(payload).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/** A Stripe event envelope around `object`, with a fresh id, as Stripe sends it to an endpoint. */
export function stripeEvent(type: string, object: Record<string, unknown>, overrides: Record<string, unknown> = {}) {
  return {
    id: `evt_test_${randomUUID().replace(/-/g, '')}`,
    object: 'event',
    api_version: '2025-03-31.basil',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: { object },
    ...overrides,
  };
}

/** POSTs `event` to the app's webhook route with a real signature made with `secret`. */
export function deliverSignedEvent(appUrl: string, event: object, secret: string): Promise<Response> {
  const body = JSON.stringify(event);
  return fetch(`${appUrl}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(body, secret) },
    body,
  });
}
