import { createHmac } from 'node:crypto';

/**
 * A `Stripe-Signature` header exactly as Stripe computes it: HMAC-SHA256 over `<t>.<payload>`
 * with the endpoint secret, hex encoded. Tests sign real bytes; nothing fakes the check.
 */
export function stripeSignature(payload: string | Uint8Array, secret: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`, 'utf8').update(payload).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}
