import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum PriceInterval {
  MONTH = 'month',
  YEAR = 'year',
}
registerEnumType(PriceInterval, { name: 'PriceInterval', description: 'How often a recurring price bills; null for one-time prices.' });

export enum UsageType {
  LICENSED = 'licensed',
  METERED = 'metered',
}
registerEnumType(UsageType, { name: 'UsageType', description: 'LICENSED bills a quantity up front; METERED bills recorded usage.' });

@ObjectType('Price', { description: 'A price of a product. Money is integer minor units of `currency` (1900 = 19.00 USD).' })
export class PriceType {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { nullable: true })
  lookupKey!: string | null;

  @Field(() => String, { description: 'ISO 4217 code, lower case.' })
  currency!: string;

  @Field(() => Int, { nullable: true, description: 'Minor units per unit (per billing interval for licensed prices).' })
  unitAmount!: number | null;

  @Field(() => PriceInterval, { nullable: true })
  interval!: PriceInterval | null;

  @Field(() => Int)
  intervalCount!: number;

  @Field(() => UsageType)
  usageType!: UsageType;

  @Field(() => String, { nullable: true, description: "The meter's event name, for metered prices." })
  meter!: string | null;

  @Field(() => Boolean)
  active!: boolean;

  /** Not exposed: used to resolve the product. */
  productId!: string;
}

@ObjectType('Product', { description: 'A plan of the catalog.' })
export class ProductType {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { description: 'Stable plan code, such as starter or pro.' })
  code!: string;

  @Field(() => String)
  name!: string;

  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field(() => Boolean)
  active!: boolean;
}
