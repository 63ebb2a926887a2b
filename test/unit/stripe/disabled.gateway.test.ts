import { BillingError, ErrorCode } from '../../../src/common/errors';
import { DisabledStripeGateway } from '../../../src/stripe/disabled.gateway';
import { StripeSdkGateway } from '../../../src/stripe/stripe-sdk.gateway';

/** The functions an object answers to (own properties and its classes' methods). */
function callsOf(object: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = object; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name !== 'constructor' && typeof (object as Record<string, unknown>)[name] === 'function') names.add(name);
    }
  }
  return [...names].sort();
}

/** The real gateway's public calls, read from its class, so a call added to it later is checked too. */
function sdkCalls(): string[] {
  const sdk = new StripeSdkGateway({ secretKey: 'sk_test_disabled_gateway_test', apiBase: 'http://127.0.0.1:9' });
  return callsOf(sdk);
}

describe(DisabledStripeGateway.name, () => {
  const gateway = new DisabledStripeGateway();

  it('says it is disabled, so background work can skip Stripe', () => {
    expect(gateway.enabled).toBe(false);
    expect(new StripeSdkGateway({ secretKey: 'sk_test_x', apiBase: 'http://127.0.0.1:9' }).enabled).toBe(true);
  });

  it('answers every call of the gateway with BILLING_DISABLED and sends nothing', async () => {
    const calls = callsOf(gateway);
    expect(calls.length).toBeGreaterThanOrEqual(40);
    for (const name of calls) {
      const call = (gateway as unknown as Record<string, (...args: unknown[]) => unknown>)[name];
      let error: unknown;
      try {
        await call.call(gateway, {});
      } catch (e) {
        error = e;
      }
      expect({ name, error }).toEqual({ name, error: expect.any(BillingError) });
      expect((error as BillingError).code).toBe(ErrorCode.BILLING_DISABLED);
    }
  });

  it('has every call the SDK gateway has', () => {
    const missing = sdkCalls().filter((name) => !(name in gateway));
    expect(missing).toEqual([]);
  });
});
