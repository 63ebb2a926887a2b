import type Stripe from 'stripe';
import { BillingError, ErrorCode } from '../common/errors';
import { idempotencyKey } from './idempotency';
import { fromUnix } from './stripe.mappers';
import type { TestCardSwitch, TestClockSnapshot } from './stripe.gateway';
import type { CallPolicy } from './stripe-call-policy';

/** Clocks read per list request; an account holds few (Stripe allows 100 in test mode). */
const LIST_PAGE = 100;

export function toTestClockSnapshot(clock: Stripe.TestHelpers.TestClock): TestClockSnapshot {
  return {
    id: clock.id,
    name: clock.name ?? null,
    frozenTime: fromUnix(clock.frozen_time) ?? new Date(0),
    status: clock.status,
    advancingTo: fromUnix(clock.status_details?.advancing?.target_frozen_time),
    deletesAfter: fromUnix(clock.deletes_after),
    createdAt: fromUnix(clock.created),
  };
}

/**
 * The Stripe calls of test clocks (`/v1/test_helpers/test_clocks`), used by the SDK gateway with
 * its client and call policy. Test clocks exist in test mode only: a live key gets Stripe's error.
 */
export class TestClockCalls {
  /** The clock found or created per name (each customer creation asks). */
  private readonly found = new Map<string, Promise<TestClockSnapshot>>();

  constructor(
    private readonly stripe: Stripe,
    private readonly call: CallPolicy,
  ) {}

  /**
   * The clock named `name`, created frozen at the current minute when the account has none.
   * Processes creating it in the same minute send the same idempotency key, so Stripe makes one;
   * later ones find it by name. A clock that failed (`internal_failure`) or was deleted is
   * passed over.
   */
  async findOrCreate(name: string): Promise<TestClockSnapshot> {
    const known = await this.found.get(name)?.catch(() => null);
    if (known) {
      // Customers are created rarely: one read makes sure the clock was not deleted meanwhile.
      const current = await this.retrieveOrNull(known.id);
      if (current && current.status !== 'internal_failure') return current;
    }
    const pending = this.lookUpOrCreate(name);
    this.found.set(name, pending);
    return pending;
  }

  private async lookUpOrCreate(name: string): Promise<TestClockSnapshot> {
    const existing = (await this.list()).filter((c) => c.name === name && c.status !== 'internal_failure');
    // The newest, should two have been made on different days.
    existing.sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0));
    if (existing[0]) return existing[0];
    // Frozen at the current minute, which is also in the key: processes creating it in the same
    // minute send the same request and get the same clock.
    const minute = Math.floor(Date.now() / 60_000) * 60;
    const create = (...parts: string[]) =>
      this.call('testHelpers.testClocks.create', () =>
        this.stripe.testHelpers.testClocks.create({ frozen_time: minute, name }, { idempotencyKey: idempotencyKey('test_clock.create', name, minute, ...parts) }),
      );
    let clock = toTestClockSnapshot(await create());
    // The key's first answer may be a clock deleted since (in the same minute): then a new one.
    if (!(await this.retrieveOrNull(clock.id))) clock = toTestClockSnapshot(await create(clock.id));
    return clock;
  }

  /** The clock, or null when Stripe has no such clock (deleted). */
  private async retrieveOrNull(id: string): Promise<TestClockSnapshot | null> {
    try {
      return await this.retrieve(id);
    } catch (error) {
      if (error instanceof BillingError && error.code === ErrorCode.NOT_FOUND) return null;
      throw error;
    }
  }

  async retrieve(id: string): Promise<TestClockSnapshot> {
    const clock = await this.call('testHelpers.testClocks.retrieve', () => this.stripe.testHelpers.testClocks.retrieve(id), {
      resource: 'Test clock',
    });
    return toTestClockSnapshot(clock);
  }

  async list(): Promise<TestClockSnapshot[]> {
    const clocks: TestClockSnapshot[] = [];
    let startingAfter: string | undefined;
    for (;;) {
      const page = await this.call('testHelpers.testClocks.list', () =>
        this.stripe.testHelpers.testClocks.list({ limit: LIST_PAGE, ...(startingAfter ? { starting_after: startingAfter } : {}) }),
      );
      clocks.push(...page.data.map(toTestClockSnapshot));
      if (!page.has_more || !page.data.length) return clocks;
      startingAfter = page.data[page.data.length - 1].id;
    }
  }

  async advance(input: { id: string; to: Date }): Promise<TestClockSnapshot> {
    const to = Math.floor(input.to.getTime() / 1000);
    const clock = await this.call(
      'testHelpers.testClocks.advance',
      () => this.stripe.testHelpers.testClocks.advance(input.id, { frozen_time: to }, { idempotencyKey: idempotencyKey('test_clock.advance', input.id, to) }),
      { resource: 'Test clock' },
    );
    return toTestClockSnapshot(clock);
  }

  /**
   * What the billing portal does when a customer replaces its card, for test mode: attaches the
   * test card (`pm_card_visa`, `pm_card_chargeCustomerFail`, ...) and makes it the default of the
   * customer and of its live subscriptions that hold a default of their own (saved by a payment).
   * `customer` is a Stripe customer id or an email that names exactly one customer.
   */
  async switchTestCard(input: { customer: string; card: string }): Promise<TestCardSwitch> {
    const customerId = input.customer.startsWith('cus_') ? input.customer : await this.customerByEmail(input.customer);
    const pm = await this.call('paymentMethods.attach', () => this.stripe.paymentMethods.attach(input.card, { customer: customerId }), { resource: 'Customer' });
    await this.call('customers.update', () => this.stripe.customers.update(customerId, { invoice_settings: { default_payment_method: pm.id } }), { resource: 'Customer' });
    const subscriptions = await this.call('subscriptions.list', () => this.stripe.subscriptions.list({ customer: customerId, limit: 100 }));
    const switched: string[] = [];
    for (const sub of subscriptions.data) {
      if (!sub.default_payment_method || sub.status === 'canceled' || sub.status === 'incomplete_expired') continue;
      await this.call('subscriptions.update', () => this.stripe.subscriptions.update(sub.id, { default_payment_method: pm.id }), { resource: 'Subscription' });
      switched.push(sub.id);
    }
    return { customerId, paymentMethodId: pm.id, subscriptionIds: switched };
  }

  private async customerByEmail(email: string): Promise<string> {
    const found = await this.call('customers.list', () => this.stripe.customers.list({ email, limit: 2 }));
    if (found.data.length !== 1) {
      throw BillingError.badInput(found.data.length ? `${email} names several customers: give the cus_ id` : `No Stripe customer with the email ${email}`, 'customer');
    }
    return found.data[0].id;
  }
}
