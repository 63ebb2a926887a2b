import { Field, ObjectType } from 'type-graphql';

@ObjectType('Entitlement', { description: 'A feature of the catalog and whether the customer has it now.' })
export class EntitlementType {
  @Field(() => String, { description: 'The feature lookup key, such as "sso".' })
  feature!: string;

  @Field(() => Boolean)
  active!: boolean;
}
