import { Field, Float, ID, ObjectType } from 'type-graphql';

@ObjectType('UsageLimit', { description: "A usage limit of the customer's plan on one meter, and where this billing period's usage stands." })
export class UsageLimitType {
  @Field(() => ID)
  subscriptionId!: string;

  @Field(() => String)
  meter!: string;

  @Field(() => Float, { description: 'Usage allowed per billing period.' })
  limit!: number;

  @Field(() => Float, { description: 'Usage recorded this billing period (less what Stripe refused).' })
  used!: number;

  @Field(() => Float, { description: 'limit − used, never below 0.' })
  remaining!: number;

  @Field(() => Date, { description: 'The end of the billing period, when usage counts from zero again.' })
  resetsAt!: Date;

  @Field(() => String, { description: '`hard`: usage beyond the limit is refused with USAGE_LIMIT_EXCEEDED; `soft`: it is recorded and reported here.' })
  kind!: string;

  @Field(() => Boolean, { description: 'Whether usage this period is above the limit (possible for soft limits only).' })
  overLimit!: boolean;
}
