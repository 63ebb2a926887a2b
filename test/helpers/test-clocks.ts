import type Stripe from 'stripe';
import { TestClockService } from '../../src/billing/customers/test-clock.service';
import type { TestServer } from './test-server';

/**
 * Drives the test clock a test server puts its customers on (STRIPE_TEST_CLOCK), as
 * `npm run clock` does, through the server's own gateway.
 */
export function testClockDriver(server: TestServer, stripe: Stripe, clock: string) {
  const clocks = new TestClockService(server.gateway!);
  return {
    clocks,
    /** Moves the clock to `at` and waits until the webhooks it caused are delivered and applied. */
    async advanceTo(at: Date): Promise<void> {
      await clocks.advance(clock, at.toISOString());
      await server.emulator!.waitForWebhooks();
    },
    /**
     * Makes `card` the customer's payment method as the billing portal does: the customer's
     * default, and the default of its subscriptions that had one of their own (saved by the
     * first payment).
     */
    async useCard(stripeCustomerId: string, card: string): Promise<void> {
      const pm = await stripe.paymentMethods.attach(card, { customer: stripeCustomerId });
      await stripe.customers.update(stripeCustomerId, { invoice_settings: { default_payment_method: pm.id } });
      for (const sub of (await stripe.subscriptions.list({ customer: stripeCustomerId })).data) {
        if (sub.default_payment_method) await stripe.subscriptions.update(sub.id, { default_payment_method: pm.id });
      }
    },
  };
}
