import { randomUUID } from 'node:crypto';
import { Entity, Index, ManyToOne, OptionalProps, PrimaryKey, Property, Unique, type Ref } from '@mikro-orm/core';
import { Customer } from '../customers/customer.entity';
import { Subscription } from '../subscriptions/subscription.entity';

export type UsageForwardingState = 'pending' | 'sent' | 'failed';

/**
 * A usage event in our own ledger. It is committed before `recordUsage` answers and forwarded
 * to Stripe later; its `id` is the stable identifier Stripe deduplicates meter events by.
 */
@Entity({ tableName: 'usage_events' })
@Unique({ properties: ['customer', 'idempotencyKey'] })
// The quantity rides along so that summing a stretch of a subscription's rows (the first,
// partial hour of a period, before the hourly rollup takes over) reads the index only.
@Index({
  name: 'usage_events_subscription_id_meter_occurred_at_index',
  expression: `create index "usage_events_subscription_id_meter_occurred_at_index" on "usage_events" ("subscription_id", "meter", "occurred_at") include ("quantity")`,
})
@Index({ name: 'usage_events_pending_idx', expression: `create index "usage_events_pending_idx" on "usage_events" ("next_attempt_at") where "state" = 'pending'` })
// Pending and failed rows are few whatever the ledger's size: the summary finds them through these.
@Index({
  name: 'usage_events_pending_subscription_idx',
  expression: `create index "usage_events_pending_subscription_idx" on "usage_events" ("subscription_id", "meter", "occurred_at") include ("quantity", "created_at") where "state" = 'pending'`,
})
@Index({
  name: 'usage_events_failed_subscription_idx',
  expression: `create index "usage_events_failed_subscription_idx" on "usage_events" ("subscription_id", "meter", "occurred_at") include ("quantity") where "state" = 'failed'`,
})
export class UsageEvent {
  [OptionalProps]?: 'state' | 'attempts' | 'nextAttemptAt' | 'createdAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @ManyToOne(() => Customer, { ref: true })
  customer!: Ref<Customer>;

  @ManyToOne(() => Subscription, { ref: true })
  subscription!: Ref<Subscription>;

  /** The meter's event name. */
  @Property({ type: 'text' })
  meter!: string;

  @Property({ type: 'double precision' })
  quantity!: number;

  @Property({ type: 'timestamptz' })
  occurredAt!: Date;

  @Property({ type: 'text' })
  idempotencyKey!: string;

  /** A hash of the input, so a reused key with different input is told apart. */
  @Property({ type: 'text' })
  requestHash!: string;

  @Property({ type: 'text' })
  state: UsageForwardingState = 'pending';

  @Property({ type: 'integer' })
  attempts: number = 0;

  @Property({ type: 'timestamptz' })
  nextAttemptAt: Date = new Date();

  @Property({ type: 'text', nullable: true })
  lastError?: string | null;

  @Property({ type: 'timestamptz', nullable: true })
  sentAt?: Date | null;

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();
}
