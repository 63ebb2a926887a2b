/**
 * The one place that knows what a secret looks like in free text. Logs, stored error messages
 * and errors shown to users all go through it.
 */
const PATTERNS: [RegExp, string][] = [
  // Stripe secret, restricted and publishable keys.
  [/\b(sk|rk|pk)_(test|live)_[A-Za-z0-9_]+/g, '$1_$2_[redacted]'],
  [/\bwhsec_[A-Za-z0-9+/=_]+/g, 'whsec_[redacted]'],
  // JWTs (header.payload.signature, base64url, header always starts with {" = eyJ).
  [/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[redacted-jwt]'],
  // Passwords in URLs (postgres://user:password@host).
  [/\b([a-z][a-z0-9+.-]*:\/\/[^:/\s@]*:)[^@\s]+@/gi, '$1[redacted]@'],
  [/\bBearer\s+[A-Za-z0-9._~+/=-]+/gi, 'Bearer [redacted]'],
];

/** Replaces anything that looks like a secret, plus the given exact strings (a configured key). */
export function scrubSecrets(text: string, exact: readonly string[] = []): string {
  let out = text;
  for (const secret of exact) if (secret) out = out.split(secret).join('[redacted]');
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
