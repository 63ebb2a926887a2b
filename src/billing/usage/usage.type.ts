import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';

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

@InputType()
export class RecordUsageBatchInput {
  @Field(() => [RecordUsageInput], { description: 'Up to 1,000 events, each checked and answered on its own.' })
  events!: RecordUsageInput[];

  @Field(() => ID, { nullable: true, description: 'Admins only: the customer every event is recorded for.' })
  customerId?: string | null;
}

export enum UsageBatchStatus {
  RECORDED = 'RECORDED',
  REPLAYED = 'REPLAYED',
  FAILED = 'FAILED',
}
registerEnumType(UsageBatchStatus, {
  name: 'UsageBatchStatus',
  valuesConfig: {
    RECORDED: { description: 'The event is now in the ledger.' },
    REPLAYED: { description: 'The key was recorded before with the same input: the first record.' },
    FAILED: { description: 'Nothing was recorded for this event; see error.' },
  },
});

@ObjectType('UsageBatchError', { description: 'Why one event of a batch was refused; the same code recordUsage would answer.' })
export class UsageBatchErrorType {
  @Field(() => String, { description: 'BAD_USER_INPUT, NOT_FOUND, CONFLICT, IDEMPOTENCY_CONFLICT, ...' })
  code!: string;

  @Field(() => String)
  message!: string;

  @Field(() => String, { nullable: true, description: 'The input field at fault, when one is.' })
  field!: string | null;
}

@ObjectType('UsageBatchResult', { description: 'The outcome of one event of a batch.' })
export class UsageBatchResultType {
  @Field(() => Int, { description: "The event's position in the input list, from 0." })
  index!: number;

  @Field(() => UsageBatchStatus)
  status!: UsageBatchStatus;

  @Field(() => UsageRecordType, { nullable: true, description: 'Set when recorded or replayed.' })
  record!: UsageRecordType | null;

  @Field(() => UsageBatchErrorType, { nullable: true, description: 'Set when failed.' })
  error!: UsageBatchErrorType | null;
}

@ObjectType('RecordUsageBatchPayload')
export class RecordUsageBatchPayloadType {
  @Field(() => [UsageBatchResultType], { description: 'One per event, in input order.' })
  results!: UsageBatchResultType[];

  @Field(() => Int)
  recorded!: number;

  @Field(() => Int)
  replayed!: number;

  @Field(() => Int)
  failed!: number;
}
