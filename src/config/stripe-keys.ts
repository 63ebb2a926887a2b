/**
 * What a Stripe credential looks like, in one place: configuration validation, `npm run setup`
 * and the gateway's mode all read these.
 */

/** Which Stripe the gateway talks to: the built-in emulator, a test-mode or a live-mode account. */
export type StripeMode = 'emulator' | 'test' | 'live';

/** A secret key (`sk_`) or a restricted key (`rk_`), test or live. */
export const STRIPE_SECRET_KEY_PATTERN = /^(sk_test_|sk_live_|rk_test_|rk_live_)[A-Za-z0-9_]+$/;

/** A webhook endpoint's signing secret. */
export const WEBHOOK_SECRET_PATTERN = /^whsec_[A-Za-z0-9_+/=]+$/;

const LIVE_KEY = /^(sk|rk)_live_/;

/** A live-mode key charges real cards. */
export function isLiveKey(key: string): boolean {
  return LIVE_KEY.test(key);
}

/** Derives the mode from configuration alone, so start-up can print it before any request. */
export function stripeModeFor(secretKey: string, apiBase?: string): StripeMode {
  if (apiBase) return 'emulator';
  return isLiveKey(secretKey) ? 'live' : 'test';
}
