import type { EntityManager } from '@mikro-orm/postgresql';
import { BillingError, ErrorCode } from '../../common/errors';
import type { AuthUser } from '../../auth/auth-user';
import { idempotencyKey } from '../../stripe/idempotency';
import type { StripeGateway } from '../../stripe/stripe.gateway';
import { Customer } from './customer.entity';
import { customerIdOf } from './customer-id';
import { TestClockRepository } from './test-clock.repository';

export class CustomerService {
  constructor(
    private readonly em: EntityManager,
    private readonly gateway: StripeGateway,
  ) {}

  findByUserId(userId: string): Promise<Customer | null> {
    return this.em.findOne(Customer, { userId });
  }

  /**
   * The caller's customer row, created on first use (by a mutation: queries only read). Its id
   * is derived from the user id (customerIdOf), the id `viewer` answered before the row existed.
   * Concurrent first requests all end on the same row: the insert is `on conflict do nothing`
   * on the unique user id.
   */
  async getOrCreateRow(user: Pick<AuthUser, 'userId' | 'email'>): Promise<Customer> {
    const existing = await this.findByUserId(user.userId);
    if (existing) return existing;
    await this.em
      .createQueryBuilder(Customer)
      .insert({ id: customerIdOf(user.userId), userId: user.userId, email: user.email ?? null, livemode: false, createdAt: new Date(), updatedAt: new Date() })
      .onConflict('user_id')
      .ignore()
      .execute();
    const row = await this.em.findOne(Customer, { userId: user.userId }, { refresh: true });
    if (!row) throw new BillingError(ErrorCode.INTERNAL_SERVER_ERROR, 'Customer could not be created');
    return row;
  }

  /**
   * The caller's customer with its Stripe customer, created exactly once per user: every racer
   * uses the same idempotency key (derived from our row id), so Stripe answers them all with
   * the same customer, and the id is stored only where none is stored yet.
   */
  async getOrCreateBillable(user: Pick<AuthUser, 'userId' | 'email'>): Promise<Customer & { stripeCustomerId: string }> {
    const row = await this.getOrCreateRow(user);
    if (row.stripeCustomerId) return row as Customer & { stripeCustomerId: string };
    const gateway = this.gateway;
    // In local mode (or by setting, in test mode) the customer lives on a test clock, so
    // `npm run clock` can move its subscriptions through months in seconds.
    const clock = gateway.customerTestClock ? await gateway.findOrCreateTestClock(gateway.customerTestClock) : null;
    const created = await gateway.createCustomer({
      userId: user.userId,
      email: user.email,
      ...(clock ? { testClockId: clock.id } : {}),
      idempotencyKey: idempotencyKey('customer.create', row.id),
    });
    if (clock) await new TestClockRepository(this.em).apply(clock, new Date());
    await this.em.nativeUpdate(
      Customer,
      { id: row.id, stripeCustomerId: null },
      { stripeCustomerId: created.id, livemode: created.livemode, stripeTestClockId: clock?.id ?? null },
    );
    const fresh = await this.em.findOneOrFail(Customer, { id: row.id }, { refresh: true });
    return fresh as Customer & { stripeCustomerId: string };
  }
}
