import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import type { InvoiceView } from '../invoices/invoice.view';
import type { PendingChangeSnapshot } from './subscription.entity';

export enum SubscriptionStatus {
  ACTIVE = 'active',
  TRIALING = 'trialing',
  INCOMPLETE = 'incomplete',
  INCOMPLETE_EXPIRED = 'incomplete_expired',
  PAST_DUE = 'past_due',
  UNPAID = 'unpaid',
  PAUSED = 'paused',
  CANCELED = 'canceled',
}
registerEnumType(SubscriptionStatus, { name: 'SubscriptionStatus', description: "Stripe's subscription statuses." });

export enum BillingInterval {
  MONTH = 'month',
  YEAR = 'year',
}
registerEnumType(BillingInterval, { name: 'BillingInterval' });

export enum SubscriptionChangeEffective {
  IMMEDIATELY = 'immediately',
  PERIOD_END = 'period_end',
}
registerEnumType(SubscriptionChangeEffective, {
  name: 'SubscriptionChangeEffective',
  description: 'When a plan change takes effect. Default: a downgrade (a lower amount per billing period) at the period end, anything else now.',
});

export enum ProrationBehaviorEnum {
  CREATE_PRORATIONS = 'create_prorations',
  ALWAYS_INVOICE = 'always_invoice',
  NONE = 'none',
}
registerEnumType(ProrationBehaviorEnum, { name: 'ProrationBehavior' });

@ObjectType('Subscription')
export class SubscriptionType {
  @Field(() => ID)
  id!: string;

  @Field(() => SubscriptionStatus)
  status!: SubscriptionStatus;

  @Field(() => Int)
  quantity!: number;

  @Field(() => Date, { nullable: true })
  currentPeriodStart!: Date | null;

  @Field(() => Date, { nullable: true })
  currentPeriodEnd!: Date | null;

  @Field(() => Boolean, { description: 'True when the subscription ends at the end of the current period.' })
  cancelAtPeriodEnd!: boolean;

  @Field(() => Date, { nullable: true })
  canceledAt!: Date | null;

  @Field(() => Date, { nullable: true })
  trialEnd!: Date | null;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => String, {
    nullable: true,
    description: 'In the answer to a change whose payment needs the customer (declined card, 3-D Secure): confirm it with Stripe.js; the change applies once paid.',
  })
  clientSecret?: string | null;

  /** Resolved through the loaders. */
  priceId!: string;

  /** Resolved to `pendingChange` through the loaders. */
  pendingChangeRow?: PendingChangeSnapshot | null;

  /** Resolved to `latestInvoice`: the joined row (null: none held), or undefined when not read yet. */
  latestInvoiceRow?: InvoiceView | null;

  /** Stripe's id of the latest invoice, to read it when `latestInvoiceRow` was not. */
  latestStripeInvoiceId?: string | null;
}

@ObjectType('StartSubscriptionPayload')
export class StartSubscriptionPayload {
  @Field(() => SubscriptionType)
  subscription!: SubscriptionType;

  @Field(() => String, {
    nullable: true,
    description: 'Present when the customer must confirm the first payment in the browser (Stripe.js confirmPayment).',
  })
  clientSecret!: string | null;
}

@ObjectType('Customer', { description: "The caller's billing customer." })
export class CustomerType {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { nullable: true })
  email!: string | null;
}

@InputType()
export class StartSubscriptionInput {
  @Field(() => String, { nullable: true, description: 'A plan code such as starter or pro.' })
  plan?: string | null;

  @Field(() => ID, { nullable: true })
  priceId?: string | null;

  @Field(() => BillingInterval, { nullable: true, description: 'With plan: which price (default MONTH).' })
  interval?: BillingInterval | null;

  @Field(() => Int, { defaultValue: 1 })
  quantity!: number;

  @Field(() => Int, { nullable: true })
  trialDays?: number | null;

  @Field(() => String, { nullable: true, description: 'The same key never creates a second subscription.' })
  idempotencyKey?: string | null;

  @Field(() => ID, { nullable: true, description: 'Admins only: act for this customer.' })
  customerId?: string | null;
}

@InputType()
export class UpdateSubscriptionInput {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { nullable: true })
  plan?: string | null;

  @Field(() => ID, { nullable: true })
  priceId?: string | null;

  @Field(() => BillingInterval, { nullable: true })
  interval?: BillingInterval | null;

  @Field(() => Int, { nullable: true })
  quantity?: number | null;

  @Field(() => ProrationBehaviorEnum, { nullable: true, description: 'Default: ALWAYS_INVOICE for upgrades (charged now), CREATE_PRORATIONS otherwise.' })
  prorationBehavior?: ProrationBehaviorEnum | null;

  @Field(() => SubscriptionChangeEffective, { nullable: true })
  effective?: SubscriptionChangeEffective | null;

  @Field(() => Date, { nullable: true, description: "previewSubscriptionChange's prorationDate, to be charged exactly what was previewed." })
  prorationDate?: Date | null;

  @Field(() => ID, { nullable: true, description: 'Admins only: act for this customer.' })
  customerId?: string | null;
}
