import { randomUUID } from 'node:crypto';
import { Entity, Index, ManyToOne, OptionalProps, PrimaryKey, Property, Unique, type Ref } from '@mikro-orm/core';
import { Price } from '../catalog/price.entity';
import { Customer } from '../customers/customer.entity';

/** One item of a Stripe subscription as we last saw it (a Pro plan has a licensed and a metered item). */
export interface SubscriptionItemSnapshot {
  stripeItemId: string;
  stripePriceId: string;
  quantity: number | null;
  /** The meter's event name when the price is metered. */
  meter: string | null;
}

/**
 * A plan change that has not taken effect yet: `scheduled` by a subscription schedule for the
 * period end, or `awaiting_payment` (a pending update applied once its invoice is paid).
 */
export interface PendingChangeSnapshot {
  kind: 'scheduled' | 'awaiting_payment';
  /** Our price row of the licensed item after the change. */
  priceId: string;
  quantity: number;
  /** ISO time the change takes effect; null while it waits for a payment. */
  effectiveAt: string | null;
  /** ISO time Stripe drops an unpaid pending update. */
  expiresAt: string | null;
}

/**
 * A Stripe subscription mirrored locally. `stripeSyncedAt` is the Stripe-side time of the
 * version applied last: an older version never overwrites a newer one.
 */
@Entity({ tableName: 'subscriptions' })
@Index({ properties: ['customer', 'status'] })
@Unique({ properties: ['customer', 'idempotencyKey'] })
export class Subscription {
  [OptionalProps]?: 'quantity' | 'cancelAtPeriodEnd' | 'items' | 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @ManyToOne(() => Customer, { ref: true })
  customer!: Ref<Customer>;

  /** The licensed (main) price of the subscription. */
  @ManyToOne(() => Price, { ref: true })
  price!: Ref<Price>;

  @Property({ type: 'text', unique: true })
  stripeSubscriptionId!: string;

  /** Stripe's status, lower case (active, trialing, incomplete, past_due, canceled, ...). */
  @Property({ type: 'text' })
  status!: string;

  @Property({ type: 'integer' })
  quantity: number = 1;

  @Property({ type: 'jsonb' })
  items: SubscriptionItemSnapshot[] = [];

  @Property({ type: 'timestamptz', nullable: true })
  currentPeriodStart?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  currentPeriodEnd?: Date | null;

  @Property({ type: 'boolean' })
  cancelAtPeriodEnd: boolean = false;

  @Property({ type: 'timestamptz', nullable: true })
  canceledAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  trialEnd?: Date | null;

  /** The caller's key for startSubscription: the same key never creates a second subscription. */
  @Property({ type: 'text', nullable: true })
  idempotencyKey?: string | null;

  @Property({ type: 'timestamptz', nullable: true })
  stripeSyncedAt?: Date | null;

  /** The Stripe subscription schedule holding a change for the period end. */
  @Property({ type: 'text', nullable: true })
  stripeScheduleId?: string | null;

  @Property({ type: 'jsonb', nullable: true })
  pendingChange?: PendingChangeSnapshot | null;

  /** Stripe's `latest_invoice`: the invoice `latestInvoice` shows (joined on invoices.stripe_invoice_id). */
  @Property({ type: 'text', nullable: true })
  latestStripeInvoiceId?: string | null;

  /** The trial end Stripe's `customer.subscription.trial_will_end` announced (the trial-ending alert). */
  @Property({ type: 'timestamptz', nullable: true })
  trialEndNoticeFor?: Date | null;

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
