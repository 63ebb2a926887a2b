import { createSecretKey, randomBytes } from 'node:crypto';
import path from 'node:path';
import { ensureSecretFile } from '../common/secret-file';
import { jose } from './jose';

/** File under the data directory that holds the local-mode signing secret. */
export const AUTH_SECRET_FILE = 'auth-secret';

export interface SignTokenOptions {
  /** Adds the `admin` role. */
  admin?: boolean;
  email?: string;
  /** A jose time span such as '1h' or '30d'. Default '30d': dev tokens outlive a working session. */
  expiresIn?: string;
  issuer?: string;
  audience?: string;
}

/**
 * The HS256 secret of a local setup: created once in `${dataDir}/auth-secret` (mode 0600) and
 * reused afterwards, so tokens printed by `npm run token` stay valid across restarts. Concurrent
 * starts all end up with the same secret (see ensureSecretFile).
 */
export function ensureLocalAuthSecret(dataDir: string): Promise<string> {
  return ensureSecretFile(path.join(dataDir, AUTH_SECRET_FILE), () => randomBytes(48).toString('base64url'));
}

/** Signs an HS256 access token for `userId`, as the authenticator expects it. */
export async function signToken(secret: string, userId: string, options: SignTokenOptions = {}): Promise<string> {
  const claims: Record<string, unknown> = { roles: options.admin ? ['admin'] : [] };
  if (options.email) claims.email = options.email;
  const jwt = new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '30d');
  if (options.issuer) jwt.setIssuer(options.issuer);
  if (options.audience) jwt.setAudience(options.audience);
  return jwt.sign(createSecretKey(Buffer.from(secret, 'utf8')));
}
