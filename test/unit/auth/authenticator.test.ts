import { createSecretKey } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Request } from 'express';
import { createAuthenticator } from '../../../src/auth/authenticator';
import { jose } from '../../../src/auth/jose';
import { BillingError, ErrorCode } from '../../../src/common/errors';

const SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';
const OTHER_SECRET = 'another-secret-that-is-long-enough-for-hs256-987654';

function request(authorization?: string): Request {
  return { headers: authorization === undefined ? {} : { authorization } } as unknown as Request;
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function hs256(claims: Record<string, unknown>, options: { secret?: string; exp?: number | string; sub?: string | null } = {}) {
  const jwt = new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (options.sub !== null) jwt.setSubject(options.sub ?? 'user_1');
  jwt.setExpirationTime(options.exp ?? '5m');
  return jwt.sign(createSecretKey(Buffer.from(options.secret ?? SECRET)));
}

async function rejectionOf(promise: Promise<unknown>): Promise<BillingError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(BillingError);
    expect((error as BillingError).code).toBe(ErrorCode.UNAUTHENTICATED);
    return error as BillingError;
  }
  throw new Error('expected the token to be rejected');
}

describe(createAuthenticator.name, () => {
  describe('with an HS256 secret', () => {
    const authenticate = createAuthenticator({ jwtSecret: SECRET });

    it('returns the user of a valid token with its roles and email', async () => {
      const token = await hs256({ roles: ['admin', 'support'], email: 'ada@example.com' });
      await expect(authenticate(request(`Bearer ${token}`))).resolves.toEqual({
        userId: 'user_1',
        email: 'ada@example.com',
        roles: ['admin', 'support'],
        isAdmin: true,
      });
    });

    it('accepts roles as a space-separated string and is not admin without the admin role', async () => {
      const token = await hs256({ roles: 'support billing' });
      const user = await authenticate(request(`Bearer ${token}`));
      expect(user).toEqual({ userId: 'user_1', roles: ['support', 'billing'], isAdmin: false });
    });

    it('gives no roles when the claim is missing, and ignores a non-string email', async () => {
      const token = await hs256({ email: 42 });
      await expect(authenticate(request(`Bearer ${token}`))).resolves.toEqual({ userId: 'user_1', roles: [], isAdmin: false });
    });

    it('treats a request without an Authorization header as anonymous', async () => {
      await expect(authenticate(request())).resolves.toBeNull();
    });

    it.each([
      ['a Basic header', 'Basic dXNlcjpwYXNz'],
      ['a bare token', 'eyJhbGciOiJIUzI1NiJ9.e30.sig'],
      ['Bearer without a token', 'Bearer '],
      ['an empty header', ''],
    ])('rejects %s', async (_name, header) => {
      const error = await rejectionOf(authenticate(request(header)));
      expect(error.message).toMatch(/Bearer/);
    });

    it.each([
      ['"=" appended to the signature', (t: string) => `${t}=`],
      ['"==" appended to the signature', (t: string) => `${t}==`],
      ['standard base64 characters instead of base64url', (t: string) => t.replace(/-/g, '+').replace(/_/g, '/') + (/[-_]/.test(t) ? '' : '+')],
      // An HS256 signature is 32 bytes, 43 characters: the last one carries 2 bits decoding drops.
      ['the spare bits of the signature set', (t: string) => {
        const last = t[t.length - 1];
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        return t.slice(0, -1) + alphabet[alphabet.indexOf(last) ^ 1];
      }],
    ])('rejects a valid token with %s (only the canonical form is accepted)', async (_name, alter) => {
      const own = createAuthenticator({ jwtSecret: SECRET });
      const token = await hs256({});
      await expect(own(request(`Bearer ${token}`))).resolves.toMatchObject({ userId: 'user_1' });
      const altered = alter(token);
      expect(altered).not.toBe(token);
      await rejectionOf(own(request(`Bearer ${altered}`)));
      // Also when the canonical token was never seen (nothing cached to compare with).
      await rejectionOf(createAuthenticator({ jwtSecret: SECRET })(request(`Bearer ${altered}`)));
    });

    it('rejects a token that is not a JWT', async () => {
      await rejectionOf(authenticate(request('Bearer not-a-jwt')));
    });

    it('rejects a token signed with another secret, without echoing the token', async () => {
      const token = await hs256({}, { secret: OTHER_SECRET });
      const error = await rejectionOf(authenticate(request(`Bearer ${token}`)));
      expect(error.message).toBe('Access token signature is invalid');
      expect(error.message).not.toContain(token.split('.')[2]);
    });

    it('verifies a token once, then answers the same caller for it until it expires', async () => {
      jest.useFakeTimers({ now: Date.now(), doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
      try {
        const own = createAuthenticator({ jwtSecret: SECRET });
        const exp = Math.floor(Date.now() / 1000) + 30;
        const token = await hs256({ roles: ['support'] }, { exp });
        const first = await own(request(`Bearer ${token}`));
        const again = await own(request(`Bearer ${token}`));
        expect(again).toBe(first);
        expect(Object.isFrozen(first)).toBe(true);
        // A token with a bad signature is never remembered as valid, however often it is sent.
        const forged = `${token.slice(0, token.lastIndexOf('.'))}.${'A'.repeat(43)}`;
        await rejectionOf(own(request(`Bearer ${forged}`)));
        await rejectionOf(own(request(`Bearer ${forged}`)));
        // Past its expiry the token is verified again rather than answered from memory (jose
        // itself runs on the real clock here, so it still accepts it).
        jest.setSystemTime((exp + 1) * 1000);
        const later = await own(request(`Bearer ${token}`));
        expect(later).not.toBe(first);
        expect(later).toEqual(first);
      } finally {
        jest.useRealTimers();
      }
    });

    it('rejects an expired token', async () => {
      const token = await hs256({}, { exp: Math.floor(Date.now() / 1000) - 3600 });
      const error = await rejectionOf(authenticate(request(`Bearer ${token}`)));
      expect(error.message).toMatch(/expired/);
    });

    it('rejects an unsigned token (alg none)', async () => {
      const now = Math.floor(Date.now() / 1000);
      const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'user_1', roles: ['admin'], iat: now, exp: now + 300 })}.`;
      await rejectionOf(authenticate(request(`Bearer ${token}`)));
    });

    it('rejects an HS512 token even with the right secret', async () => {
      const token = await new jose.SignJWT({})
        .setProtectedHeader({ alg: 'HS512' })
        .setSubject('user_1')
        .setExpirationTime('5m')
        .sign(createSecretKey(Buffer.from(SECRET)));
      const error = await rejectionOf(authenticate(request(`Bearer ${token}`)));
      expect(error.message).toMatch(/algorithm/);
    });

    it('rejects a token without a subject', async () => {
      const token = await hs256({ roles: ['admin'] }, { sub: null });
      const error = await rejectionOf(authenticate(request(`Bearer ${token}`)));
      expect(error.message).toMatch(/subject/);
    });
  });

  describe('with an issuer and an audience', () => {
    const authenticate = createAuthenticator({ jwtSecret: SECRET, issuer: 'https://auth.example.com/', audience: 'tollgate' });

    async function token(iss: string, aud: string) {
      return new jose.SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('user_1')
        .setIssuer(iss)
        .setAudience(aud)
        .setExpirationTime('5m')
        .sign(createSecretKey(Buffer.from(SECRET)));
    }

    it('accepts a token from the expected issuer for the expected audience', async () => {
      const user = await authenticate(request(`Bearer ${await token('https://auth.example.com/', 'tollgate')}`));
      expect(user?.userId).toBe('user_1');
    });

    it('rejects a token from another issuer', async () => {
      const error = await rejectionOf(authenticate(request(`Bearer ${await token('https://evil.example.com/', 'tollgate')}`)));
      expect(error.message).toMatch(/issuer/);
    });

    it('rejects a token meant for another audience', async () => {
      const error = await rejectionOf(authenticate(request(`Bearer ${await token('https://auth.example.com/', 'other-api')}`)));
      expect(error.message).toMatch(/not meant for this API/);
    });
  });

  describe('with a JWKS URL', () => {
    let server: http.Server;
    let jwksUrl: string;
    let signingKey: CryptoKey;
    let strangerKey: CryptoKey;
    let ecKey: CryptoKey;
    let jwksRequests = 0;

    beforeAll(async () => {
      const pair = await jose.generateKeyPair('RS256');
      signingKey = pair.privateKey;
      strangerKey = (await jose.generateKeyPair('RS256')).privateKey;
      const ecPair = await jose.generateKeyPair('ES256');
      ecKey = ecPair.privateKey;
      const keys = [
        { ...(await jose.exportJWK(pair.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' },
        { ...(await jose.exportJWK(ecPair.publicKey)), kid: 'key-ec', alg: 'ES256', use: 'sig' },
      ];
      server = http.createServer((req, res) => {
        jwksRequests += 1;
        if (req.url !== '/.well-known/jwks.json') {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
    });

    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    function rs256(key: CryptoKey, kid = 'key-1') {
      return new jose.SignJWT({ roles: ['admin'] })
        .setProtectedHeader({ alg: 'RS256', kid })
        .setSubject('user_ext')
        .setIssuer('https://issuer.example.com')
        .setExpirationTime('5m')
        .sign(key);
    }

    it('verifies an RS256 token against the published key', async () => {
      const authenticate = createAuthenticator({ jwksUrl, issuer: 'https://issuer.example.com' });
      await expect(authenticate(request(`Bearer ${await rs256(signingKey)}`))).resolves.toEqual({
        userId: 'user_ext',
        roles: ['admin'],
        isAdmin: true,
      });
      expect(jwksRequests).toBeGreaterThan(0);
    });

    it('verifies an ES256 token against the published key', async () => {
      const authenticate = createAuthenticator({ jwksUrl });
      const token = await new jose.SignJWT({ email: 'ext@example.com' })
        .setProtectedHeader({ alg: 'ES256', kid: 'key-ec' })
        .setSubject('user_ec')
        .setExpirationTime('5m')
        .sign(ecKey);
      await expect(authenticate(request(`Bearer ${token}`))).resolves.toEqual({
        userId: 'user_ec',
        email: 'ext@example.com',
        roles: [],
        isAdmin: false,
      });
    });

    it('rejects a token signed by a key the issuer does not publish', async () => {
      const authenticate = createAuthenticator({ jwksUrl });
      await rejectionOf(authenticate(request(`Bearer ${await rs256(strangerKey)}`)));
      await rejectionOf(authenticate(request(`Bearer ${await rs256(strangerKey, 'unknown-kid')}`)));
    });

    it('rejects an HS256 token: a JWKS setup accepts only RS256 and ES256', async () => {
      const authenticate = createAuthenticator({ jwksUrl });
      const token = await hs256({ roles: ['admin'] });
      const error = await rejectionOf(authenticate(request(`Bearer ${token}`)));
      expect(error.message).toMatch(/algorithm/);
    });
  });

  it('refuses to be built without a secret or a JWKS URL', () => {
    expect(() => createAuthenticator({})).toThrow(/jwtSecret or jwksUrl/);
  });
});
