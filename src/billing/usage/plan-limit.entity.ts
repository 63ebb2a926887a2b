import { randomUUID } from 'node:crypto';
import { Entity, ManyToOne, OptionalProps, PrimaryKey, Property, Unique, type Ref } from '@mikro-orm/core';
import { Product } from '../catalog/product.entity';

/**
 * A usage limit of a plan on one meter per billing period, as the catalog lists it (written by
 * the catalog sync). `hard` limits refuse usage beyond them; `soft` ones only report it.
 */
@Entity({ tableName: 'plan_limits' })
@Unique({ properties: ['product', 'meter'] })
export class PlanLimit {
  [OptionalProps]?: 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @ManyToOne(() => Product, { ref: true, deleteRule: 'cascade' })
  product!: Ref<Product>;

  @Property({ type: 'text' })
  meter!: string;

  @Property({ type: 'double precision', fieldName: 'limit' })
  limit!: number;

  @Property({ type: 'text' })
  kind!: 'hard' | 'soft';

  @Property({ type: 'text' })
  period!: 'billing_period';

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
