import { randomUUID } from 'node:crypto';
import { Entity, OptionalProps, PrimaryKey, Property } from '@mikro-orm/core';

/** A Stripe Billing Meter: metered prices bill the events sent under its `eventName`. */
@Entity({ tableName: 'meters' })
export class Meter {
  [OptionalProps]?: 'aggregation' | 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'text', unique: true })
  eventName!: string;

  @Property({ type: 'text' })
  displayName!: string;

  @Property({ type: 'text', nullable: true, unique: true })
  stripeMeterId?: string | null;

  /** Stripe's default_aggregation formula: sum, count or last. */
  @Property({ type: 'text' })
  aggregation: string = 'sum';

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
