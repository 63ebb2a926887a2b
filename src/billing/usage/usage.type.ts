import { Field, Float, ID, InputType, ObjectType } from 'type-graphql';

@ObjectType('UsageRecord', { description: 'One usage event in the ledger, committed before recordUsage answers.' })
export class UsageRecordType {
  @Field(() => ID, { description: "Also the meter event's identifier in Stripe." })
  id!: string;

  @Field(() => ID)
  subscriptionId!: string;

  @Field(() => String)
  meter!: string;

  @Field(() => Float)
  quantity!: number;

  @Field(() => Date)
  occurredAt!: Date;

  @Field(() => String, { description: "The caller's key, or the one generated when none was given." })
  idempotencyKey!: string;
}

@InputType()
export class RecordUsageInput {
  @Field(() => ID, { nullable: true, description: 'The subscription to record on; without it, the one live subscription with `meter`.' })
  subscriptionId?: string | null;

  @Field(() => String, { nullable: true, description: "The meter's event name (e.g. api_calls); may be left out when the subscription has one metered item." })
  meter?: string | null;

  @Field(() => Float, { description: 'Positive, at most 1e9.' })
  quantity!: number;

  @Field(() => Date, { nullable: true, description: 'When the usage happened: now by default; at most 35 days ago and 5 minutes ahead.' })
  occurredAt?: Date | null;

  @Field(() => String, { nullable: true, description: 'Reusing a key with the same input returns the first record; with different input it is IDEMPOTENCY_CONFLICT.' })
  idempotencyKey?: string | null;

  @Field(() => ID, { nullable: true, description: 'Admins only.' })
  customerId?: string | null;
}

@ObjectType('UsageBucket')
export class UsageBucketType {
  @Field(() => String, { description: 'The UTC day, YYYY-MM-DD.' })
  date!: string;

  @Field(() => Float)
  total!: number;
}

@ObjectType('UsageSummary', { description: 'Usage from our own ledger over [from, to).' })
export class UsageSummaryType {
  @Field(() => ID)
  subscriptionId!: string;

  @Field(() => String)
  meter!: string;

  @Field(() => Date)
  from!: Date;

  @Field(() => Date)
  to!: Date;

  @Field(() => Float, { description: 'Recorded usage that is or will be billed (pending and sent).' })
  total!: number;

  @Field(() => Float, { description: 'The part of total not yet forwarded to Stripe.' })
  pending!: number;

  @Field(() => Float, { description: 'Usage Stripe refused for good (see the forwarder logs); not part of total.' })
  failed!: number;

  @Field(() => Float, { nullable: true, description: 'Seconds since the oldest pending event of this subscription and meter was recorded; null when nothing is pending.' })
  lagSeconds!: number | null;

  @Field(() => [UsageBucketType], { description: 'One per UTC day in the period, zero days included.' })
  buckets!: UsageBucketType[];
}
