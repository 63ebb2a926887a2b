import type { EntityManager } from '@mikro-orm/postgresql';
import type { StripeGateway } from '../../stripe/stripe.gateway';
import { TestClockRepository } from './test-clock.repository';

const wallClock = (): Date => new Date();

/**
 * A customer's billing "now": the frozen time of the test clock it is on (its subscriptions'
 * periods are in that time, and Stripe takes its meter events in it), or the wall clock. Only
 * a setup that puts customers on a clock (local mode, STRIPE_TEST_CLOCK) pays the one read.
 */
export async function billingClockOf(
  em: EntityManager,
  gateway: StripeGateway,
  who: { userId: string } | { customerId: string },
): Promise<() => Date> {
  if (!gateway.customerTestClock) return wallClock;
  const clocks = new TestClockRepository(em);
  const frozen = 'userId' in who ? await clocks.frozenTimeForUser(who.userId) : await clocks.frozenTimeForCustomer(who.customerId);
  return frozen ? () => new Date(frozen.getTime()) : wallClock;
}
