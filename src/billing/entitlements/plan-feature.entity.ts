import { randomUUID } from 'node:crypto';
import { Entity, ManyToOne, OptionalProps, PrimaryKey, Property, Unique, type Ref } from '@mikro-orm/core';
import { Product } from '../catalog/product.entity';

/**
 * A feature a plan grants, as the catalog lists it (written by the catalog sync): the
 * catalog's side of every customer's entitlements.
 */
@Entity({ tableName: 'plan_features' })
@Unique({ properties: ['product', 'lookupKey'] })
export class PlanFeature {
  [OptionalProps]?: 'createdAt' | 'updatedAt';

  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @ManyToOne(() => Product, { ref: true, deleteRule: 'cascade' })
  product!: Ref<Product>;

  /** The feature's lookup key (`sso`), what `hasEntitlement(feature)` asks for. */
  @Property({ type: 'text' })
  lookupKey!: string;

  @Property({ type: 'text' })
  name!: string;

  @Property({ type: 'text', nullable: true })
  stripeFeatureId?: string | null;

  @Property({ type: 'text', nullable: true })
  stripeProductFeatureId?: string | null;

  @Property({ type: 'timestamptz' })
  createdAt: Date = new Date();

  @Property({ type: 'timestamptz', onUpdate: () => new Date() })
  updatedAt: Date = new Date();
}
