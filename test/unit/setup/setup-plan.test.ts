import { maskDatabaseUrl, maskSecret } from '../../../src/setup/mask';
import { modeWarning, secretKeyProblem, webhookSecretProblem } from '../../../src/setup/setup-checks';
import { describeUpdates, planSetup } from '../../../src/setup/setup-plan';

const KEY = 'sk_test_abcdefghijkl1234';
const generate = () => 'generated-secret-0123456789abcdefghijkl';

describe('planSetup', () => {
  it('turns valid answers into settings, generating AUTH_JWT_SECRET for a connected setup', () => {
    const plan = planSetup({ stripeSecretKey: ` ${KEY} `, webhookSecret: 'whsec_abc', databaseUrl: 'postgres://u@h/db' }, {}, generate);
    expect(plan.problems).toEqual([]);
    expect(plan.updates).toEqual({
      STRIPE_SECRET_KEY: KEY,
      STRIPE_WEBHOOK_SECRET: 'whsec_abc',
      DATABASE_URL: 'postgres://u@h/db',
      AUTH_JWT_SECRET: generate(),
    });
  });

  it('keeps an existing auth configuration and writes only what was answered', () => {
    const plan = planSetup({ priceMap: 'starter=price_1' }, { STRIPE_SECRET_KEY: KEY, STRIPE_WEBHOOK_SECRET: 'whsec_x', DATABASE_URL: 'postgres://h/db', AUTH_JWKS_URL: 'https://id/jwks' }, generate);
    expect(plan.updates).toEqual({ STRIPE_PRODUCT_PRICE_MAP: 'starter=price_1' });
    expect(plan.warnings).toEqual([]);
  });

  it('reports every malformed answer and writes nothing for them', () => {
    const plan = planSetup({ stripeSecretKey: 'pk_live_x', webhookSecret: 'secret', databaseUrl: 'mysql://h/db', priceMap: 'starter' }, {}, generate);
    expect(plan.problems).toHaveLength(4);
    expect(plan.problems[1]).toMatch(/publishable key/);
    expect(plan.problems[3]).toMatch(/STRIPE_PRODUCT_PRICE_MAP: entry "starter" is not plan=price_id/);
    expect(plan.updates).toEqual({});
  });

  it('warns about a live key outside production and a test key in production', () => {
    expect(planSetup({ stripeSecretKey: 'sk_live_abcdefghijkl1234' }, { DATABASE_URL: 'postgres://h/db', AUTH_JWT_SECRET: 'x' }).warnings[0]).toMatch(
      /^sk_live_…1234 is a LIVE key but NODE_ENV is development/,
    );
    expect(modeWarning(KEY, { NODE_ENV: 'production' })).toMatch(/TEST key but NODE_ENV is production/);
    expect(modeWarning('sk_live_abcdefghijkl1234', { NODE_ENV: 'production' })).toBeNull();
    expect(modeWarning('sk_live_abcdefghijkl1234', { ALLOW_LIVE_KEYS: 'true' })).not.toMatch(/refuses/);
  });
});

describe('key formats', () => {
  it.each([
    ['sk_test_abc', null],
    ['rk_live_abc', null],
    ['pk_test_abc', /publishable key/],
    ['whsec_abc', /webhook signing secret/],
    ['', /empty/],
    ['sk_test_has space', /must start with/],
  ])('%s', (value, expected) => {
    const problem = secretKeyProblem(value);
    if (expected === null) expect(problem).toBeNull();
    else expect(problem).toMatch(expected);
  });

  it('checks webhook secrets', () => {
    expect(webhookSecretProblem('whsec_abc')).toBeNull();
    expect(webhookSecretProblem('sk_test_abc')).toMatch(/That is a Stripe API key/);
    expect(webhookSecretProblem('abc')).toMatch(/must start with whsec_/);
  });
});

describe('masking', () => {
  it('shows the kind and the last four characters only', () => {
    expect(maskSecret(KEY)).toBe('sk_test_…1234');
    expect(maskSecret('whsec_0123456789abcd')).toBe('whsec_…abcd');
    expect(maskSecret('sk_test_short')).toBe('sk_test_…');
    expect(maskDatabaseUrl('postgres://app:hunter2@db:5432/tollgate')).toBe('postgres://app:***@db:5432/tollgate');
  });

  it('describes the written settings without their secrets', () => {
    const lines = describeUpdates({ STRIPE_SECRET_KEY: KEY, DATABASE_URL: 'postgres://a:pw@h/db', PORT: '1' }, { updated: ['STRIPE_SECRET_KEY'], added: ['DATABASE_URL'], unchanged: ['PORT'] });
    expect(lines).toEqual(['  updated STRIPE_SECRET_KEY = sk_test_…1234', '  added   DATABASE_URL = postgres://a:***@h/db', '  kept    PORT (same value)']);
  });
});
