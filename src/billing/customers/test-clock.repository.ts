import type { EntityManager } from '@mikro-orm/postgresql';
import type { TestClockSnapshot } from '../../stripe/stripe.gateway';

/** The `test_clocks` rows: a clock's time as last read from Stripe, and a customer's billing time. */
export class TestClockRepository {
  constructor(private readonly em: EntityManager) {}

  /** Upserts Stripe's clock, read at `syncedAt`; a row read later is left alone. */
  async apply(clock: TestClockSnapshot, syncedAt: Date): Promise<void> {
    await this.em.execute(
      `insert into test_clocks (stripe_test_clock_id, name, frozen_time, status, stripe_synced_at, updated_at)
       values (?, ?, ?, ?, ?, now())
       on conflict (stripe_test_clock_id) do update set name = excluded.name, frozen_time = excluded.frozen_time,
         status = excluded.status, stripe_synced_at = excluded.stripe_synced_at, updated_at = now()
       where test_clocks.stripe_synced_at <= excluded.stripe_synced_at`,
      [clock.id, clock.name, clock.frozenTime, clock.status, syncedAt],
    );
  }

  /** Whether any customer of ours is on the clock. */
  async hasCustomers(stripeTestClockId: string): Promise<boolean> {
    const rows = await this.em.execute<{ n: number }[]>('select count(*)::int as n from customers where stripe_test_clock_id = ?', [stripeTestClockId]);
    return (rows[0]?.n ?? 0) > 0;
  }

  /** Forgets a clock Stripe deleted (its customers and their objects are gone with it). */
  async remove(stripeTestClockId: string): Promise<void> {
    await this.em.execute('delete from test_clocks where stripe_test_clock_id = ?', [stripeTestClockId]);
  }

  /** The frozen time of the clock the customer of `userId` is on, or null when it lives in real time. */
  async frozenTimeForUser(userId: string): Promise<Date | null> {
    const rows = await this.em.execute<{ frozen_time: Date | string }[]>(
      `select t.frozen_time from customers c join test_clocks t on t.stripe_test_clock_id = c.stripe_test_clock_id where c.user_id = ?`,
      [userId],
    );
    return rows[0] ? new Date(rows[0].frozen_time) : null;
  }

  /** As frozenTimeForUser, by our customer id. */
  async frozenTimeForCustomer(customerId: string): Promise<Date | null> {
    const rows = await this.em.execute<{ frozen_time: Date | string }[]>(
      `select t.frozen_time from customers c join test_clocks t on t.stripe_test_clock_id = c.stripe_test_clock_id where c.id = ?`,
      [customerId],
    );
    return rows[0] ? new Date(rows[0].frozen_time) : null;
  }
}
