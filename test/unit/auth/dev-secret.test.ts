import { createSecretKey } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Request } from 'express';
import { createAuthenticator } from '../../../src/auth/authenticator';
import { AUTH_SECRET_FILE, ensureLocalAuthSecret, signToken } from '../../../src/auth/dev-secret';
import { jose } from '../../../src/auth/jose';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tollgate-auth-secret-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe(ensureLocalAuthSecret.name, () => {
  it('creates a random secret once, readable by the owner only, in a directory it creates', async () => {
    const dataDir = path.join(root, 'nested', 'data');
    const secret = await ensureLocalAuthSecret(dataDir);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{64}$/);
    const file = path.join(dataDir, AUTH_SECRET_FILE);
    expect((await readFile(file, 'utf8')).trim()).toBe(secret);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('returns the same secret on later calls', async () => {
    const first = await ensureLocalAuthSecret(root);
    await expect(ensureLocalAuthSecret(root)).resolves.toBe(first);
  });

  it('gives every concurrent caller the same secret and leaves no temp files', async () => {
    const secrets = await Promise.all(Array.from({ length: 10 }, () => ensureLocalAuthSecret(root)));
    expect(new Set(secrets).size).toBe(1);
    expect((await readFile(path.join(root, AUTH_SECRET_FILE), 'utf8')).trim()).toBe(secrets[0]);
    expect(await readdir(root)).toEqual([AUTH_SECRET_FILE]);
  });

  it('gives different setups different secrets', async () => {
    const a = await ensureLocalAuthSecret(path.join(root, 'a'));
    const b = await ensureLocalAuthSecret(path.join(root, 'b'));
    expect(a).not.toBe(b);
  });
});

describe(signToken.name, () => {
  const secret = 'dev-secret-that-is-long-enough-for-hs256-0123456789';
  const request = (token: string) => ({ headers: { authorization: `Bearer ${token}` } }) as unknown as Request;

  it('signs a token the authenticator accepts, with the admin role and email', async () => {
    const token = await signToken(secret, 'user_1', { admin: true, email: 'dev@example.com' });
    await expect(createAuthenticator({ jwtSecret: secret })(request(token))).resolves.toEqual({
      userId: 'user_1',
      email: 'dev@example.com',
      roles: ['admin'],
      isAdmin: true,
    });
  });

  it('expires after 30 days by default and after the given span otherwise', async () => {
    const now = Math.floor(Date.now() / 1000);
    const key = createSecretKey(Buffer.from(secret));
    const { payload, protectedHeader } = await jose.jwtVerify(await signToken(secret, 'user_1'), key);
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.roles).toEqual([]);
    expect(payload.exp! - now).toBeGreaterThanOrEqual(30 * 86400 - 5);
    expect(payload.exp! - now).toBeLessThanOrEqual(30 * 86400 + 5);
    const short = await jose.jwtVerify(await signToken(secret, 'user_1', { expiresIn: '1h' }), key);
    expect(short.payload.exp! - now).toBeLessThanOrEqual(3600 + 5);
  });

  it('sets issuer and audience so a configured authenticator accepts the token', async () => {
    const token = await signToken(secret, 'user_2', { issuer: 'tollgate-dev', audience: 'tollgate' });
    const authenticate = createAuthenticator({ jwtSecret: secret, issuer: 'tollgate-dev', audience: 'tollgate' });
    await expect(authenticate(request(token))).resolves.toMatchObject({ userId: 'user_2', isAdmin: false });
  });
});
