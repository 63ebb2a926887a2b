import { createSecretKey, randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
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

async function readSecret(file: string): Promise<string | null> {
  try {
    const value = (await readFile(file, 'utf8')).trim();
    return value.length > 0 ? value : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * The HS256 secret of a local setup: created once in `${dataDir}/auth-secret` (mode 0600) and
 * reused afterwards, so tokens printed by `npm run token` stay valid across restarts.
 *
 * The file is written in full to a private temp file, then linked into place: `link` fails
 * with EEXIST when another process got there first, so concurrent starts all end up with the
 * winner's secret and nobody ever reads a half-written file.
 */
export async function ensureLocalAuthSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, AUTH_SECRET_FILE);
  const existing = await readSecret(file);
  if (existing) return existing;

  await mkdir(dataDir, { recursive: true });
  const candidate = randomBytes(48).toString('base64url');
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, `${candidate}\n`, { mode: 0o600, flag: 'wx' });
  try {
    // writeFile's mode is filtered by the umask; the secret must be owner-only regardless.
    await chmod(temp, 0o600);
    await link(temp, file);
    return candidate;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const winner = await readSecret(file);
    if (!winner) throw new Error(`${file} exists but is empty; delete it to create a new secret`, { cause: error });
    return winner;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
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
