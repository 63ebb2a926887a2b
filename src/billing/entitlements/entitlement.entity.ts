import { randomUUID } from 'node:crypto';
import { Entity, ManyToOne, OptionalProps, PrimaryKey, Property, Unique, type Ref } from '@mikro-orm/core';
import { Customer } from '../customers/customer.entity';

/**
 * One feature for one customer, from two sources kept side by side: Stripe's active
 * entitlements (`stripeActive`, refetched on the summary webhook) and the catalog applied to the
 * customer's current subscriptions (`catalogActive`, recomputed whenever either changes).
 * `active` is their union, so neither source's delay takes a feature away or holds it back:
 * Stripe only grants a feature newly added to a plan at the subscriber's next period, and the
 * catalog does not know features granted in Stripe by other means. Rows are written with SQL
 * in `EntitlementRepository`.
 */
@Entity({ tableName: 'entitlements' })
@Unique({ properties: ['customer', 'feature'] })
export class Entitlement {
  [OptionalProps]?: 'active' | 'stripeActive' | 'catalogActive' | 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @ManyToOne(() => Customer, { ref: true, deleteRule: 'cascade' })
  customer!: Ref<Customer>;

  /** The feature's lookup key. */
  @Property({ type: 'text' })
  feature!: string;

  @Property({ type: 'boolean' })
  active: boolean = false;

  /** Which sources grant it now: `stripe`, `catalog`, `stripe+catalog`, or null when none does. */
  @Property({ type: 'text', nullable: true })
  source?: string | null;

  @Property({ type: 'boolean' })
  stripeActive: boolean = false;

  @Property({ type: 'boolean' })
  catalogActive: boolean = false;

  @Property({ type: 'text', nullable: true })
  stripeFeatureId?: string | null;

  @Property({ type: 'text', nullable: true })
  stripeEntitlementId?: string | null;

  /** When Stripe's list this row reflects was fetched; an older fetch never overwrites a newer one. */
  @Property({ type: 'timestamptz', nullable: true })
  syncedAt?: Date | null;

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
