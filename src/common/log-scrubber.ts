import pino from 'pino';

/**
 * Keys whose values are secret whatever they hold, in any letter case and at any depth. pino's
 * redact paths are exact and case-sensitive (`headers.authorization` misses `Authorization`, and
 * `*.secretKey` misses `config.stripe.secretKey`), so this catches what they cannot name.
 */
const SECRET_KEY = /^(authorization|proxy-authorization|cookie|set-cookie|password|passwd|stripe-signature|api[-_]?key|client[-_]?secret)$|secret|token$/i;

const MAX_DEPTH = 10;

/**
 * A copy of a log object with secret-named keys censored and every string passed through
 * `scrub` (keys, webhook secrets, JWTs and database passwords inside free text). Errors are
 * serialized first, so their enumerable extras (a Stripe error's `raw`, `headers`) are covered
 * too. Values that need no change are returned as they are, so ordinary lines are not copied.
 */
export function scrubLogValue(value: unknown, scrub: (text: string) => string, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return scrub(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  try {
    if (value instanceof Error) return scrubLogValue(pino.stdSerializers.err(value), scrub, depth + 1, seen);
    if (Array.isArray(value)) {
      let changed = false;
      const out = value.map((item) => {
        const next = scrubLogValue(item, scrub, depth + 1, seen);
        if (next !== item) changed = true;
        return next;
      });
      return changed ? out : value;
    }
    if (value instanceof Date || Buffer.isBuffer(value) || value instanceof Map || value instanceof Set) return value;
    let out: Record<string, unknown> | null = null;
    for (const [key, item] of Object.entries(value)) {
      const next = SECRET_KEY.test(key) && item !== undefined && item !== null ? '[redacted]' : scrubLogValue(item, scrub, depth + 1, seen);
      if (next !== item) out ??= { ...(value as Record<string, unknown>) };
      if (out) out[key] = next;
    }
    return out ?? value;
  } finally {
    seen.delete(value);
  }
}
