import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, type Env } from '../../../src/config/env';

const load = (env: Env) => loadConfig(env, { envFiles: [] });

function problemsOf(env: Env): string[] {
  try {
    load(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const connected: Env = {
  STRIPE_SECRET_KEY: 'sk_test_abc123',
  STRIPE_WEBHOOK_SECRET: 'whsec_abc123',
  DATABASE_URL: 'postgres://u:p@db:5432/tollgate',
  AUTH_JWT_SECRET: 'a'.repeat(32),
};

describe('loadConfig', () => {
  it('runs in local mode with no settings at all', () => {
    const config = load({});
    expect(config.mode).toBe('local');
    expect(config.port).toBe(4000);
    expect(config.dataDir).toBe(path.resolve('.data'));
    expect(config.billingEnabled).toBe(true);
    expect(config.playground).toBe(true);
    expect(config.introspection).toBe(true);
    expect(config.database.url).toBeUndefined();
  });

  it('honours PORT and DATA_DIR', () => {
    const config = load({ PORT: '4321', DATA_DIR: '/tmp/elsewhere' });
    expect(config.port).toBe(4321);
    expect(config.dataDir).toBe('/tmp/elsewhere');
  });

  it('is in connected mode when a Stripe key is given, and accepts the STRIPE_API_KEY alias', () => {
    expect(load(connected).mode).toBe('connected');
    const { STRIPE_SECRET_KEY: _unused, ...rest } = connected;
    const config = load({ ...rest, STRIPE_API_KEY: 'rk_test_restricted1' });
    expect(config.stripe.secretKey).toBe('rk_test_restricted1');
  });

  it('lists every missing variable in ONE error when billing is enabled outside local mode', () => {
    const problems = problemsOf({ NODE_ENV: 'production' });
    expect(problems.join('\n')).toMatch(/STRIPE_SECRET_KEY/);
    expect(problems.join('\n')).toMatch(/STRIPE_WEBHOOK_SECRET/);
    expect(problems.join('\n')).toMatch(/DATABASE_URL/);
    expect(problems.join('\n')).toMatch(/AUTH_JWT_SECRET or AUTH_JWKS_URL/);
  });

  it('treats empty values as missing', () => {
    const problems = problemsOf({ ...connected, STRIPE_WEBHOOK_SECRET: '  ', DATABASE_URL: '' });
    expect(problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^STRIPE_WEBHOOK_SECRET/), expect.stringMatching(/^DATABASE_URL/)]),
    );
  });

  it('refuses the placeholders of .env.example like missing values', () => {
    const problems = problemsOf({
      ...connected,
      STRIPE_SECRET_KEY: 'sk_test_replace_me',
      STRIPE_WEBHOOK_SECRET: 'whsec_replace_me',
      DATABASE_URL: 'postgres://user:replace_me@localhost:5432/tollgate',
    });
    expect(problems.filter((p) => /placeholder/.test(p))).toHaveLength(3);
  });

  it('checks the key and secret formats', () => {
    const problems = problemsOf({ ...connected, STRIPE_SECRET_KEY: 'pk_test_publishable', STRIPE_WEBHOOK_SECRET: 'secret' });
    expect(problems).toEqual([
      expect.stringMatching(/^STRIPE_SECRET_KEY: must start with sk_test_, sk_live_ or rk_/),
      'STRIPE_WEBHOOK_SECRET: must start with whsec_',
    ]);
    expect(problems.join(' ')).not.toContain('pk_test_publishable');
  });

  it('refuses a live key outside production unless explicitly allowed', () => {
    const live = { ...connected, STRIPE_SECRET_KEY: 'sk_live_abc123' };
    expect(problemsOf(live)).toEqual([expect.stringMatching(/live key outside NODE_ENV=production is refused/)]);
    expect(load({ ...live, ALLOW_LIVE_KEYS: 'true' }).stripe.secretKey).toBe('sk_live_abc123');
    expect(load({ ...live, NODE_ENV: 'production' }).mode).toBe('production');
  });

  it('parses STRIPE_PRODUCT_PRICE_MAP as JSON or plan=price pairs, and names a malformed entry', () => {
    expect(load({ STRIPE_PRODUCT_PRICE_MAP: '{"starter":"price_1","pro":"price_2"}' }).stripe.priceMap).toEqual({
      starter: 'price_1',
      pro: 'price_2',
    });
    expect(load({ STRIPE_PRODUCT_PRICE_MAP: 'starter=price_1, pro=price_2' }).stripe.priceMap).toEqual({
      starter: 'price_1',
      pro: 'price_2',
    });
    expect(problemsOf({ STRIPE_PRODUCT_PRICE_MAP: 'starter=price_1,pro' })).toEqual([
      'STRIPE_PRODUCT_PRICE_MAP: entry "pro" is not plan=price_id',
    ]);
    expect(problemsOf({ STRIPE_PRODUCT_PRICE_MAP: '{"starter":' })).toEqual(['STRIPE_PRODUCT_PRICE_MAP: is not valid JSON']);
  });

  it('lets billing be disabled, so catalog queries work without Stripe settings', () => {
    const config = load({ NODE_ENV: 'production', ENABLE_BILLING: 'false', DATABASE_URL: connected.DATABASE_URL, AUTH_JWT_SECRET: connected.AUTH_JWT_SECRET });
    expect(config.billingEnabled).toBe(false);
  });

  it('turns the playground and introspection off in production unless enabled', () => {
    const production = { ...connected, NODE_ENV: 'production' };
    expect(load(production)).toMatchObject({ playground: false, introspection: false });
    expect(load({ ...production, ENABLE_PLAYGROUND: 'true' })).toMatchObject({ playground: true, introspection: true });
    expect(load({ ...production, ENABLE_INTROSPECTION: 'true' })).toMatchObject({ playground: false, introspection: true });
  });

  it('rejects malformed numbers, booleans, URLs and origins, all at once', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      ENABLE_BILLING: 'maybe',
      STRIPE_API_BASE: 'localhost:12111',
      ALLOWED_REDIRECT_ORIGINS: 'https://app.example.com,not-an-origin',
    });
    expect(problems).toEqual([
      expect.stringMatching(/^PORT: must be an integer/),
      expect.stringMatching(/^ENABLE_BILLING: must be true or false/),
      expect.stringMatching(/^STRIPE_API_BASE: must be an http\(s\) URL/),
      expect.stringMatching(/"not-an-origin" is not an origin/),
    ]);
  });

  it('reads .env.local before .env, and the real environment wins over both', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-env-'));
    writeFileSync(path.join(dir, '.env'), 'PORT=5000\nLOG_LEVEL=debug\n# comment\nDATA_DIR=from-env\n');
    writeFileSync(path.join(dir, '.env.local'), 'PORT=5001\n');
    try {
      const config = loadConfig({ DATA_DIR: '/tmp/real' }, { cwd: dir });
      expect(config.port).toBe(5001);
      expect(config.logLevel).toBe('debug');
      expect(config.dataDir).toBe('/tmp/real');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
