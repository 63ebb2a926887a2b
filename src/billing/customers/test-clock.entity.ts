import { Entity, OptionalProps, PrimaryKey, Property } from '@mikro-orm/core';

/**
 * A Stripe test clock customers are on, as last seen: its `frozenTime` is the customers'
 * billing "now" (usage is stamped with it). Kept current by `test_helpers.test_clock.*` events.
 */
@Entity({ tableName: 'test_clocks' })
export class TestClock {
  [OptionalProps]?: 'updatedAt';

  @PrimaryKey({ type: 'text' })
  stripeTestClockId!: string;

  @Property({ type: 'text', nullable: true })
  name?: string | null;

  @Property({ type: 'timestamptz' })
  frozenTime!: Date;

  /** advancing, ready or internal_failure */
  @Property({ type: 'text' })
  status!: string;

  /** When the version applied last was read from Stripe: an older one never overwrites it. */
  @Property({ type: 'timestamptz' })
  stripeSyncedAt!: Date;

  @Property({ type: 'timestamptz', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
