import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { BillingInterval, SubscriptionChangeEffective } from './subscription.type';

export { SubscriptionChangeEffective };

export enum PendingChangeStatus {
  SCHEDULED = 'scheduled',
  AWAITING_PAYMENT = 'awaiting_payment',
}
registerEnumType(PendingChangeStatus, {
  name: 'PendingChangeStatus',
  valuesConfig: {
    SCHEDULED: { description: 'Takes effect at effectiveAt (the end of the current period).' },
    AWAITING_PAYMENT: { description: 'Takes effect once its invoice is paid (declined card or 3-D Secure); lapses at expiresAt.' },
  },
});

@ObjectType('SubscriptionPendingChange', { description: 'A plan change that has not taken effect yet.' })
export class PendingChangeType {
  @Field(() => String, { description: 'The plan code after the change.' })
  plan!: string;

  @Field(() => BillingInterval, { nullable: true })
  interval!: BillingInterval | null;

  @Field(() => Int)
  quantity!: number;

  @Field(() => Date, { nullable: true, description: 'When it takes effect; null while it waits for a payment.' })
  effectiveAt!: Date | null;

  @Field(() => PendingChangeStatus)
  status!: PendingChangeStatus;

  @Field(() => Date, { nullable: true, description: 'For AWAITING_PAYMENT: when Stripe drops the change if still unpaid.' })
  expiresAt!: Date | null;
}

@ObjectType('InvoicePreviewLine')
export class InvoicePreviewLineType {
  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field(() => Int, { description: 'Minor units; negative for credits.' })
  amount!: number;

  @Field(() => Int, { nullable: true })
  quantity!: number | null;

  @Field(() => Boolean, { description: 'A proration: credit for unused time or charge for the remaining time.' })
  proration!: boolean;

  @Field(() => Date, { nullable: true })
  periodStart!: Date | null;

  @Field(() => Date, { nullable: true })
  periodEnd!: Date | null;
}

@ObjectType('SubscriptionChangePreview', { description: "What a change would cost, from Stripe's invoice preview. Amounts are minor units of currency." })
export class SubscriptionChangePreviewType {
  @Field(() => SubscriptionChangeEffective)
  effective!: SubscriptionChangeEffective;

  @Field(() => String)
  currency!: string;

  @Field(() => Int, { description: 'Charged when the change is made (0 when nothing is invoiced now).' })
  amountDueNow!: number;

  @Field(() => Int, { description: 'The next renewal invoice after the change.' })
  amountDueAtRenewal!: number;

  @Field(() => Date, { nullable: true })
  renewsAt!: Date | null;

  @Field(() => Date, {
    nullable: true,
    description: 'The time prorations were computed for: pass it as prorationDate to updateSubscription to be charged exactly this.',
  })
  prorationDate!: Date | null;

  @Field(() => [InvoicePreviewLineType], { description: 'Lines of the invoice due now.' })
  lines!: InvoicePreviewLineType[];

  @Field(() => [InvoicePreviewLineType], { description: 'Lines of the renewal invoice.' })
  renewalLines!: InvoicePreviewLineType[];
}
