import { execFile } from 'node:child_process';
import { createSecretKey } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jose } from '../../src/auth/jose';

const ROOT = path.resolve(__dirname, '../..');
const JWT_LINE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-token-cli-'));
  await chmod(dir, 0o755);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `npm run token`'s command in a clean directory: no Stripe, database or auth settings. */
function token(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(STRIPE_|DATABASE_URL|AUTH_|NODE_ENV|TEST_DATABASE_URL|TOLLGATE_|DATA_DIR)/.test(k)),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'scripts/run.cjs'), path.join(ROOT, 'src/cli/token.ts'), ...args],
      { cwd: dir, env: { ...clean, DATA_DIR: path.join(dir, 'data'), ...env }, timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

async function verify(jwt: string, secret: string) {
  const { payload } = await jose.jwtVerify(jwt.trim(), createSecretKey(Buffer.from(secret)), { algorithms: ['HS256'] });
  return payload;
}

async function localSecret(): Promise<string> {
  return (await readFile(path.join(dir, 'data', 'auth-secret'), 'utf8')).trim();
}

describe('npm run token', () => {
  it('prints only a token with --silent, signed with the local secret it creates', async () => {
    const result = await token(['user_1', '--silent']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(JWT_LINE);
    const payload = await verify(result.stdout, await localSecret());
    expect(payload).toMatchObject({ sub: 'user_1', roles: [] });
  });

  it('reuses the local secret, so tokens from earlier runs stay valid', async () => {
    const first = await token(['user_1', '--silent']);
    const secret = await localSecret();
    const second = await token(['user_2', '--silent']);
    expect(await localSecret()).toBe(secret);
    expect((await verify(first.stdout, secret)).sub).toBe('user_1');
    expect((await verify(second.stdout, secret)).sub).toBe('user_2');
  });

  it('gives concurrent first runs one shared secret', async () => {
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((id) => token([`user_${id}`, '--silent'])));
    const secret = await localSecret();
    for (const result of results) {
      expect(result.code).toBe(0);
      await expect(verify(result.stdout, secret)).resolves.toHaveProperty('sub');
    }
  });

  it('adds the admin role, the email and the expiry asked for', async () => {
    const result = await token(['ops_1', '--admin', '--email', 'ops@example.com', '--expires', '1h', '--silent']);
    expect(result.code).toBe(0);
    const payload = await verify(result.stdout, await localSecret());
    expect(payload).toMatchObject({ sub: 'ops_1', roles: ['admin'], email: 'ops@example.com' });
    expect(payload.exp! - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(3600 + 5);
  });

  it('explains how to use the token without --silent', async () => {
    const result = await token(['user_1']);
    expect(result.code).toBe(0);
    const jwt = /Bearer ([A-Za-z0-9_.-]+)"/.exec(result.stdout)?.[1];
    expect(jwt).toBeDefined();
    expect(result.stdout).toContain(`curl -H "Authorization: Bearer ${jwt}"`);
    expect((await verify(jwt!, await localSecret())).sub).toBe('user_1');
  });

  it('signs with AUTH_JWT_SECRET when it is set, and creates no local secret', async () => {
    const secret = 'configured-secret-that-is-long-enough-0123456789';
    const result = await token(['user_1', '--silent'], { AUTH_JWT_SECRET: secret, AUTH_ISSUER: 'tollgate', AUTH_AUDIENCE: 'api' });
    expect(result.code).toBe(0);
    expect(await verify(result.stdout, secret)).toMatchObject({ sub: 'user_1', iss: 'tollgate', aud: 'api' });
    expect(existsSync(path.join(dir, 'data', 'auth-secret'))).toBe(false);
  });

  it('prints the usage and exits with 2 without a user id', async () => {
    const result = await token([]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/usage: npm run token -- <userId>/);
  });

  it('refuses with exit code 1 in production with only a JWKS URL', async () => {
    const result = await token(['user_1', '--silent'], {
      NODE_ENV: 'production',
      AUTH_JWKS_URL: 'https://issuer.example.com/.well-known/jwks.json',
      ENABLE_BILLING: 'false',
      DATABASE_URL: 'postgres://tollgate@127.0.0.1:5432/tollgate',
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/external issuer \(AUTH_JWKS_URL\)/);
  });
});
