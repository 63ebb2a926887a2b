import { randomUUID } from 'node:crypto';
import { Entity, OptionalProps, PrimaryKey, Property } from '@mikro-orm/core';

/**
 * One billing customer per app user (the JWT `sub`), created by the first billing mutation (queries
 * never write) with the id customerIdOf(userId), which `viewer` shows before the row exists; the
 * Stripe customer is created on first use.
 */
@Entity({ tableName: 'customers' })
export class Customer {
  [OptionalProps]?: 'livemode' | 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'text', unique: true })
  userId!: string;

  @Property({ type: 'text', nullable: true })
  email?: string | null;

  @Property({ type: 'text', nullable: true, unique: true })
  stripeCustomerId?: string | null;

  @Property({ type: 'boolean' })
  livemode: boolean = false;

  /** The Stripe test clock the customer was created on (local mode, or by setting in test mode). */
  @Property({ type: 'text', nullable: true })
  stripeTestClockId?: string | null;

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
