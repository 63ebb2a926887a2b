import { randomUUID } from 'node:crypto';
import { Collection, Entity, OneToMany, OptionalProps, PrimaryKey, Property } from '@mikro-orm/core';
import type { Price } from './price.entity';

/** A plan of the catalog, addressed by its stable `code` (starter, pro, ...). */
@Entity({ tableName: 'products' })
export class Product {
  [OptionalProps]?: 'active' | 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'text', unique: true })
  code!: string;

  @Property({ type: 'text' })
  name!: string;

  @Property({ type: 'text', nullable: true })
  description?: string | null;

  @Property({ type: 'boolean' })
  active: boolean = true;

  @Property({ type: 'text', nullable: true, unique: true })
  stripeProductId?: string | null;

  // Named, not imported as a value: Price already imports Product, and entities form no cycle.
  @OneToMany('Price', 'product')
  prices = new Collection<Price>(this);

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
