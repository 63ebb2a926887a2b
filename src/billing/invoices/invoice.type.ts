import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum InvoiceStatus {
  DRAFT = 'draft',
  OPEN = 'open',
  PAID = 'paid',
  UNCOLLECTIBLE = 'uncollectible',
  VOID = 'void',
}
registerEnumType(InvoiceStatus, { name: 'InvoiceStatus', description: "Stripe's invoice statuses." });

@ObjectType('Invoice', { description: 'A Stripe invoice. Amounts are integer minor units of `currency` (1900 = $19.00).' })
export class InvoiceType {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { nullable: true, description: 'The number printed on the invoice; null while it is a draft.' })
  number!: string | null;

  @Field(() => InvoiceStatus)
  status!: InvoiceStatus;

  @Field(() => String, { description: 'ISO 4217, lower case.' })
  currency!: string;

  @Field(() => Int)
  amountDue!: number;

  @Field(() => Int)
  amountPaid!: number;

  @Field(() => Int)
  amountRemaining!: number;

  @Field(() => Int)
  total!: number;

  @Field(() => String, { nullable: true, description: "Stripe's page where the customer can view and pay it." })
  hostedInvoiceUrl!: string | null;

  @Field(() => Date, { nullable: true })
  periodStart!: Date | null;

  @Field(() => Date, { nullable: true })
  periodEnd!: Date | null;

  @Field(() => Date, { nullable: true })
  paidAt!: Date | null;

  @Field(() => Int, { description: "Payment attempts on Stripe's retry schedule (the first attempt counts as 1; 0 before any)." })
  attemptCount!: number;

  @Field(() => Date, { nullable: true, description: 'When Stripe retries a failed payment next; null when no retry is scheduled.' })
  nextPaymentAttempt!: Date | null;

  @Field(() => Date, { description: 'When Stripe created the invoice.' })
  createdAt!: Date;
}

@ObjectType('InvoiceEdge')
export class InvoiceEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => InvoiceType)
  node!: InvoiceType;
}

@ObjectType('PageInfo')
export class PageInfo {
  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true, description: 'Pass as `after` for the next page.' })
  endCursor!: string | null;
}

@ObjectType('InvoiceConnection', { description: 'Invoices, newest first.' })
export class InvoiceConnection {
  @Field(() => [InvoiceEdge])
  edges!: InvoiceEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}
