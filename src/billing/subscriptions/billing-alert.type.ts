import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { InvoiceType } from '../invoices/invoice.type';
import { BillingAlertCode } from './billing-alerts';
import { SubscriptionType } from './subscription.type';

registerEnumType(BillingAlertCode, {
  name: 'BillingAlertCode',
  description: 'What the customer must do: pay or fix a failed payment, authenticate a payment (3-D Secure), pay an unpaid subscription, or note a trial ending.',
});

@ObjectType('BillingAlert', { description: "Something that needs the customer's action, with what a frontend needs to send them to do it." })
export class BillingAlertType {
  @Field(() => BillingAlertCode)
  code!: BillingAlertCode;

  @Field(() => String, { description: 'A sentence a frontend may show as it is.' })
  message!: string;

  @Field(() => SubscriptionType)
  subscription!: SubscriptionType;

  @Field(() => InvoiceType, { nullable: true, description: 'The invoice to pay or authenticate (its hostedInvoiceUrl is where).' })
  invoice!: InvoiceType | null;

  @Field(() => Int, { nullable: true, description: 'What is left to pay, in minor units of currency.' })
  amountDue!: number | null;

  @Field(() => String, { nullable: true })
  currency!: string | null;

  @Field(() => Date, { nullable: true, description: 'When Stripe retries the payment next.' })
  nextPaymentAttempt!: Date | null;

  @Field(() => String, { nullable: true, description: "Stripe's page where the customer pays or authenticates the invoice." })
  hostedInvoiceUrl!: string | null;

  @Field(() => Date, { nullable: true, description: 'For TRIAL_ENDING: when the trial ends.' })
  trialEnd!: Date | null;
}
