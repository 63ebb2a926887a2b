import { ConfigError, loadConfig, LOCAL_TEST_CLOCK, type Env } from '../../../src/config/env';

const load = (env: Env) => loadConfig(env, { envFiles: [] });
const connected: Env = {
  STRIPE_SECRET_KEY: 'sk_test_abc123',
  STRIPE_WEBHOOK_SECRET: 'whsec_abc123',
  DATABASE_URL: 'postgres://u:p@db:5432/tollgate',
  AUTH_JWT_SECRET: 'a'.repeat(32),
};

describe('STRIPE_TEST_CLOCK', () => {
  it('puts customers on the local clock in local mode, and on none in tests or connected mode unless named', () => {
    expect(load({}).stripe.testClock).toBe(LOCAL_TEST_CLOCK);
    expect(load({ NODE_ENV: 'test' }).stripe.testClock).toBeUndefined();
    expect(load(connected).stripe.testClock).toBeUndefined();
    expect(load({ ...connected, STRIPE_TEST_CLOCK: 'staging-clock' }).stripe.testClock).toBe('staging-clock');
  });

  it('is turned off by off, false or none', () => {
    for (const off of ['off', 'false', 'none', 'OFF']) expect(load({ STRIPE_TEST_CLOCK: off }).stripe.testClock).toBeUndefined();
  });

  it('is refused with a live key, and for a name Stripe would not take', () => {
    const problems = (env: Env) => {
      try {
        load(env);
      } catch (error) {
        if (error instanceof ConfigError) return error.problems;
        throw error;
      }
      return [];
    };
    expect(problems({ ...connected, NODE_ENV: 'production', STRIPE_SECRET_KEY: 'sk_live_abc123', STRIPE_TEST_CLOCK: 'x' })).toContainEqual(
      expect.stringMatching(/^STRIPE_TEST_CLOCK: test clocks exist only in test mode/),
    );
    expect(problems({ STRIPE_TEST_CLOCK: 'c'.repeat(101) })).toContainEqual(expect.stringMatching(/^STRIPE_TEST_CLOCK: a clock name has at most 100/));
  });
});
