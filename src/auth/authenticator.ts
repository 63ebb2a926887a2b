import { createSecretKey, type KeyObject } from 'node:crypto';
import type { Request } from 'express';
import type { JWTPayload, JWTVerifyGetKey } from 'jose' with { 'resolution-mode': 'import' };
import { BillingError, ErrorCode } from '../common/errors';
import type { AuthUser } from './auth-user';
import { jose } from './jose';

export interface AuthenticatorOptions {
  /** HS256 shared secret. Takes precedence over `jwksUrl` when both are set. */
  jwtSecret?: string;
  /** JWKS endpoint of an external issuer; tokens are then RS256 or ES256. */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** Allowed clock skew for `exp` and `nbf`. */
  clockToleranceSeconds?: number;
}

export type Authenticate = (req: Request) => Promise<AuthUser | null>;

/** Verified tokens remembered per authenticator, and for how long at most. */
const VERIFIED_TOKENS_MAX = 10_000;
const VERIFIED_TOKEN_TTL_MS = 60_000;

const HMAC_ALGORITHMS = ['HS256'];
// Asymmetric algorithms only: a JWKS key must never be usable as an HMAC secret, and `none` is never accepted.
const JWKS_ALGORITHMS = ['RS256', 'ES256'];

/** Messages for jose's error codes. They are shown to callers: they name the problem, never the token. */
const REJECTIONS: Record<string, string> = {
  ERR_JWT_EXPIRED: 'Access token has expired',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'Access token signature is invalid',
  ERR_JOSE_ALG_NOT_ALLOWED: 'Access token uses an algorithm that is not accepted',
  ERR_JWKS_NO_MATCHING_KEY: 'Access token was not signed by a known key',
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'Access token was not signed by a known key',
  ERR_JWS_INVALID: 'Access token is malformed',
  ERR_JWT_INVALID: 'Access token is malformed',
};

/** Key-source failures: the token may be fine, the issuer's key set is not reachable or usable. */
const KEY_SOURCE_FAILURES = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC']);

function unauthenticated(message: string): BillingError {
  return new BillingError(ErrorCode.UNAUTHENTICATED, message);
}

function rejection(error: unknown): BillingError {
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : '';
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    const claim = (error as { claim?: unknown }).claim;
    if (claim === 'iss') return unauthenticated('Access token was issued by an unexpected issuer');
    if (claim === 'aud') return unauthenticated('Access token is not meant for this API');
    if (claim === 'nbf') return unauthenticated('Access token is not valid yet');
    return unauthenticated('Access token has an invalid claim');
  }
  if (KEY_SOURCE_FAILURES.has(code)) return unauthenticated('Access token could not be verified: signing keys are unavailable');
  return unauthenticated(REJECTIONS[code] ?? 'Access token is invalid');
}

function parseRoles(claim: unknown): string[] {
  if (typeof claim === 'string') return claim.split(/\s+/).filter(Boolean);
  if (Array.isArray(claim)) return claim.filter((r): r is string => typeof r === 'string' && r.length > 0);
  return [];
}

/** Maps verified claims to the caller. Exported for tests and for other token sources. */
export function userFromClaims(payload: JWTPayload): AuthUser {
  if (typeof payload.sub !== 'string' || payload.sub.trim() === '') {
    throw unauthenticated('Access token has no subject');
  }
  const roles = [...new Set(parseRoles(payload.roles))];
  return {
    userId: payload.sub,
    ...(typeof payload.email === 'string' && payload.email ? { email: payload.email } : {}),
    roles,
    isAdmin: roles.includes('admin'),
  };
}

/**
 * Builds the request authenticator for `AppDeps.authenticate`. No Authorization header means an
 * anonymous caller (null: resolvers decide); any header that does not carry a valid token is an
 * UNAUTHENTICATED error rather than a silent downgrade to anonymous.
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticate {
  let key: KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if (options.jwtSecret) {
    // A KeyObject rather than bytes: see ./jose.ts on why jose never gets a Uint8Array.
    key = createSecretKey(Buffer.from(options.jwtSecret, 'utf8'));
    algorithms = HMAC_ALGORITHMS;
  } else if (options.jwksUrl) {
    // Fetched lazily, cached, and refetched when a token names an unknown `kid` (key rotation).
    key = jose.createRemoteJWKSet(new URL(options.jwksUrl));
    algorithms = JWKS_ALGORITHMS;
  } else {
    throw new Error('createAuthenticator: set jwtSecret or jwksUrl');
  }
  const verifyOptions = {
    algorithms,
    issuer: options.issuer,
    audience: options.audience,
    clockTolerance: options.clockToleranceSeconds ?? 5,
  };

  // A client sends the same token with every request: its signature is checked once (an HMAC
  // through WebCrypto costs more than the rest of a small query), and the caller is remembered
  // until the token expires, for a minute at most, so that a key removed from a JWKS soon stops
  // working. A bounded map; the oldest entry makes room.
  const verified = new Map<string, { user: AuthUser; untilMs: number }>();

  return async (req) => {
    const header = req.headers.authorization;
    if (header === undefined) return null;
    const match = /^Bearer[ ]+([A-Za-z0-9_\-.=]+)\s*$/i.exec(header);
    if (!match) throw unauthenticated('Authorization header must be "Bearer <token>"');
    const now = Date.now();
    const hit = verified.get(match[1]);
    if (hit) {
      if (now < hit.untilMs) return hit.user;
      verified.delete(match[1]);
    }
    let payload: JWTPayload;
    try {
      // Overloads differ only in the key type; both branches verify the same way.
      payload =
        typeof key === 'function'
          ? (await jose.jwtVerify(match[1], key, verifyOptions)).payload
          : (await jose.jwtVerify(match[1], key, verifyOptions)).payload;
    } catch (error) {
      throw rejection(error);
    }
    const user = userFromClaims(payload);
    // Shared by every request that carries this token: nobody may change it.
    Object.freeze(user.roles);
    Object.freeze(user);
    const untilMs = Math.min(typeof payload.exp === 'number' ? payload.exp * 1000 : Infinity, now + VERIFIED_TOKEN_TTL_MS);
    if (untilMs > now) {
      if (verified.size >= VERIFIED_TOKENS_MAX) verified.delete(verified.keys().next().value as string);
      verified.set(match[1], { user, untilMs });
    }
    return user;
  };
}
