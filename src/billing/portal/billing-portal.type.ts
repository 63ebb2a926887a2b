import { Field, ObjectType } from 'type-graphql';

@ObjectType('BillingPortalSession', { description: "Stripe's customer portal: send the customer to `url`." })
export class BillingPortalSessionType {
  @Field(() => String, { description: 'Short-lived and single-use: create a new session for each visit.' })
  url!: string;
}
