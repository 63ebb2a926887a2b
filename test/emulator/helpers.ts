import Stripe from 'stripe';
import { startEmulator, type EmulatorOptions, type RunningEmulator } from '../../src/emulator';

export interface Harness {
  emu: RunningEmulator;
  stripe: Stripe;
}

export async function startHarness(options: EmulatorOptions = {}, sdk: Partial<ConstructorParameters<typeof Stripe>[1]> = {}): Promise<Harness> {
  const emu = await startEmulator({ port: 0, deliveryRetryDelaysMs: [20, 40, 80], ...options });
  const stripe = new Stripe('sk_test_emulator', {
    host: '127.0.0.1',
    port: emu.port,
    protocol: 'http',
    maxNetworkRetries: 2,
    ...sdk,
  });
  return { emu, stripe };
}

export function sdkFor(emu: RunningEmulator, key = 'sk_test_emulator', extra: Record<string, unknown> = {}): Stripe {
  return new Stripe(key, { host: '127.0.0.1', port: emu.port, protocol: 'http', maxNetworkRetries: 2, ...extra });
}

export async function recurringPrice(stripe: Stripe, amount = 1000, extra: Partial<Stripe.PriceCreateParams> = {}): Promise<Stripe.Price> {
  const product = await stripe.products.create({ name: `Plan ${amount}` });
  return stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: amount, recurring: { interval: 'month' }, ...extra });
}

/** The rejection of a call expected to fail (the test fails when it succeeds). */
export async function failure(p: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await p;
  } catch (e) {
    return e as Stripe.errors.StripeError;
  }
  throw new Error('expected the call to fail');
}

/** An emulator and SDK for the enclosing describe block, stopped after it; read it inside tests. */
export function useHarness(options: EmulatorOptions = {}): () => Harness {
  let harness: Harness | undefined;
  beforeAll(async () => {
    harness = await startHarness(options);
  });
  afterAll(async () => {
    await harness?.emu.close();
  });
  return () => {
    if (!harness) throw new Error('the emulator harness is not started');
    return harness;
  };
}
