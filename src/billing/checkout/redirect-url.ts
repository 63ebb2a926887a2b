import { BillingError } from '../../common/errors';

/** Longer URLs are refused; Stripe's own limit is higher, but nothing legitimate comes close. */
const MAX_URL_LENGTH = 2048;

/** Hosts a developer's machine answers on; accepted on any port in local mode only. */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export interface RedirectUrlPolicy {
  /** ALLOWED_REDIRECT_ORIGINS: the only origins Stripe may send the customer back to. */
  allowedOrigins: string[];
  /** Local mode also accepts http(s)://localhost and 127.0.0.1 on any port. */
  allowLoopback: boolean;
}

/** `scheme://host[:port]` in canonical form, or null when `value` is not an http(s) origin. */
function canonicalOrigin(value: string): string | null {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : null;
  } catch {
    return null;
  }
}

/**
 * Checks a URL that Stripe will redirect the customer's browser to (Checkout success/cancel,
 * portal return). Anything but an absolute http(s) URL on an allowed origin would make
 * Tollgate an open redirector carrying our Stripe session, so it is refused before any Stripe
 * call. Whitespace, control characters and backslashes are refused rather than normalised:
 * the string we validate must be exactly the one Stripe sends to the browser.
 */
export function checkRedirectUrl(value: string, field: string, policy: RedirectUrlPolicy): string {
  const refuse = () =>
    BillingError.badInput(`${field} must be an absolute http(s) URL on an allowed origin (ALLOWED_REDIRECT_ORIGINS)`, field);
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_URL_LENGTH) throw refuse();
  // eslint-disable-next-line no-control-regex
  if (/[\s\\\u0000-\u001f\u007f]/.test(value)) throw refuse();
  // Absolute only: `new URL` without a base rejects relative and scheme-relative (`//host`) input.
  if (!/^https?:\/\//i.test(value)) throw refuse();
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refuse();
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refuse();
  // Credentials in a redirect URL only serve to disguise the real host.
  if (url.username || url.password) throw refuse();
  if (policy.allowLoopback && LOOPBACK_HOSTS.has(url.hostname)) return value;
  const allowed = policy.allowedOrigins.map(canonicalOrigin).filter((o): o is string => o !== null);
  if (!allowed.includes(url.origin)) throw refuse();
  return value;
}

/** The policy the configuration asks for. */
export function redirectPolicyFrom(config: { allowedRedirectOrigins: string[]; mode: string }): RedirectUrlPolicy {
  return { allowedOrigins: config.allowedRedirectOrigins, allowLoopback: config.mode === 'local' };
}
