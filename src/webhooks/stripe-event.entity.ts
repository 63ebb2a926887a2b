import { randomUUID } from 'node:crypto';
import { Entity, Index, OptionalProps, PrimaryKey, Property } from '@mikro-orm/core';

export type StripeEventStatus = 'received' | 'processed' | 'failed' | 'ignored';

/**
 * The ledger of Stripe events: a unique event id makes every delivery after the first a no-op.
 * The job engine applies the events of one Stripe object together (`objectType`, `objectId`).
 */
@Entity({ tableName: 'stripe_events' })
@Index({ properties: ['status'] })
@Index({ properties: ['objectType', 'objectId'] })
@Index({ properties: ['stripeCreatedAt'] })
export class StripeEvent {
  [OptionalProps]?: 'status' | 'attempts' | 'receivedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'text', unique: true })
  stripeEventId!: string;

  @Property({ type: 'text' })
  type!: string;

  @Property({ type: 'boolean' })
  livemode!: boolean;

  @Property({ type: 'text', nullable: true })
  apiVersion?: string | null;

  /** `data.object.object` (subscription, invoice, ...): with `objectId`, what the event is about. */
  @Property({ type: 'text', nullable: true })
  objectType?: string | null;

  @Property({ type: 'text', nullable: true })
  objectId?: string | null;

  @Property({ type: 'jsonb' })
  payload!: Record<string, unknown>;

  @Property({ type: 'timestamptz' })
  stripeCreatedAt!: Date;

  @Property({ type: 'timestamptz' })
  receivedAt: Date = new Date();

  @Property({ type: 'timestamptz', nullable: true })
  processedAt?: Date | null;

  @Property({ type: 'text' })
  status: StripeEventStatus = 'received';

  @Property({ type: 'integer' })
  attempts: number = 0;

  @Property({ type: 'text', nullable: true })
  error?: string | null;
}
