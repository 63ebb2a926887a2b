import { randomUUID } from 'node:crypto';
import { Entity, ManyToOne, OptionalProps, PrimaryKey, Property, type Ref } from '@mikro-orm/core';
import { Price } from '../catalog/price.entity';
import { Customer } from '../customers/customer.entity';

@Entity({ tableName: 'checkout_sessions' })
export class CheckoutSession {
  [OptionalProps]?: 'quantity' | 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @ManyToOne(() => Customer, { ref: true, index: true })
  customer!: Ref<Customer>;

  @ManyToOne(() => Price, { ref: true })
  price!: Ref<Price>;

  @Property({ type: 'integer' })
  quantity: number = 1;

  /** subscription or payment */
  @Property({ type: 'text' })
  mode!: string;

  @Property({ type: 'text', unique: true })
  stripeSessionId!: string;

  @Property({ type: 'text', nullable: true })
  url?: string | null;

  /** Stripe's status: open, complete or expired. */
  @Property({ type: 'text' })
  status!: string;

  @Property({ type: 'text', nullable: true })
  paymentStatus?: string | null;

  @Property({ type: 'text', nullable: true })
  stripeSubscriptionId?: string | null;

  @Property({ type: 'timestamptz', nullable: true })
  expiresAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  completedAt?: Date | null;

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
