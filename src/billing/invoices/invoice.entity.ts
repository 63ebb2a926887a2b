import { randomUUID } from 'node:crypto';
import { Entity, Index, ManyToOne, OptionalProps, PrimaryKey, Property, type Ref } from '@mikro-orm/core';
import { Customer } from '../customers/customer.entity';
import { Subscription } from '../subscriptions/subscription.entity';

/** A Stripe invoice mirrored locally. Amounts are integer minor units of `currency`. */
@Entity({ tableName: 'invoices' })
@Index({ properties: ['customer', 'stripeCreatedAt'] })
export class Invoice {
  [OptionalProps]?: 'attemptCount' | 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @ManyToOne(() => Customer, { ref: true })
  customer!: Ref<Customer>;

  @ManyToOne(() => Subscription, { ref: true, nullable: true, deleteRule: 'set null' })
  subscription?: Ref<Subscription> | null;

  @Property({ type: 'text', unique: true })
  stripeInvoiceId!: string;

  @Property({ type: 'text', nullable: true })
  number?: string | null;

  /** draft, open, paid, uncollectible or void */
  @Property({ type: 'text' })
  status!: string;

  @Property({ type: 'text' })
  currency!: string;

  @Property({ type: 'integer' })
  amountDue!: number;

  @Property({ type: 'integer' })
  amountPaid!: number;

  @Property({ type: 'integer' })
  amountRemaining!: number;

  @Property({ type: 'integer' })
  total!: number;

  @Property({ type: 'text', nullable: true })
  hostedInvoiceUrl?: string | null;

  @Property({ type: 'timestamptz', nullable: true })
  periodStart?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  periodEnd?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  paidAt?: Date | null;

  /** Payment attempts on Stripe's retry schedule (the first attempt counts as 1). */
  @Property({ type: 'integer', default: 0 })
  attemptCount: number = 0;

  /** When Stripe tries the payment again; null when no retry is scheduled. */
  @Property({ type: 'timestamptz', nullable: true })
  nextPaymentAttempt?: Date | null;

  /**
   * The attempt (`attemptCount` then) that Stripe said needs the customer to authenticate
   * (`invoice.payment_action_required`, 3-D Secure). While it is still the last attempt, the
   * customer is asked to authenticate rather than to replace the card.
   */
  @Property({ type: 'integer', nullable: true })
  actionRequiredAttempt?: number | null;

  @Property({ type: 'timestamptz' })
  stripeCreatedAt!: Date;

  @Property({ type: 'timestamptz', nullable: true })
  stripeSyncedAt?: Date | null;

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
