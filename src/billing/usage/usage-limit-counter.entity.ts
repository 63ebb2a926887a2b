import { Entity, PrimaryKey, Property } from '@mikro-orm/core';

/**
 * One row per subscription, meter and billing period with a hard limit: the row that usage under
 * that limit locks (`select ... for update`), so that concurrent events are checked against the
 * limit one after another and never overshoot it together.
 */
@Entity({ tableName: 'usage_limit_counters' })
export class UsageLimitCounter {
  @PrimaryKey({ type: 'uuid' })
  subscriptionId!: string;

  @PrimaryKey({ type: 'text' })
  meter!: string;

  /** The start of the billing period the row counts; a new period gets a new row. */
  @PrimaryKey({ type: 'timestamptz' })
  periodStart!: Date;

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();
}
