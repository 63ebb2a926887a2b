import { randomUUID } from 'node:crypto';
import { Entity, Index, ManyToOne, OptionalProps, PrimaryKey, Property, type Ref } from '@mikro-orm/core';
import { Meter } from './meter.entity';
import { Product } from './product.entity';

export type PriceIntervalValue = 'month' | 'year';
export type UsageTypeValue = 'licensed' | 'metered';

/** A price of a product. Amounts are integer minor units of `currency` (1900 = $19.00). */
@Entity({ tableName: 'prices' })
@Index({ properties: ['product'] })
export class Price {
  [OptionalProps]?: 'active' | 'usageType' | 'intervalCount' | 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @ManyToOne(() => Product, { ref: true, deleteRule: 'cascade' })
  product!: Ref<Product>;

  @Property({ type: 'text', nullable: true, unique: true })
  stripePriceId?: string | null;

  @Property({ type: 'text', nullable: true, unique: true })
  lookupKey?: string | null;

  /** ISO 4217, lower case as Stripe spells it. */
  @Property({ type: 'text' })
  currency!: string;

  @Property({ type: 'integer', nullable: true })
  unitAmount?: number | null;

  /** null for one-time prices. */
  @Property({ type: 'text', nullable: true })
  interval?: PriceIntervalValue | null;

  @Property({ type: 'integer' })
  intervalCount: number = 1;

  @Property({ type: 'text' })
  usageType: UsageTypeValue = 'licensed';

  @ManyToOne(() => Meter, { ref: true, nullable: true, deleteRule: 'set null' })
  meter?: Ref<Meter> | null;

  @Property({ type: 'boolean' })
  active: boolean = true;

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
