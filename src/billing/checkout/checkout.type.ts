import { Field, ID, InputType, Int, ObjectType } from 'type-graphql';

@ObjectType('CheckoutSession', { description: 'A Stripe Checkout session: send the customer to `url`.' })
export class CheckoutSessionType {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { nullable: true, description: 'The hosted Checkout page; null once the session is complete or expired.' })
  url!: string | null;

  @Field(() => String, { description: "Stripe's status: open, complete or expired." })
  status!: string;

  @Field(() => String, { description: 'subscription (recurring prices) or payment (one-time prices).' })
  mode!: string;

  @Field(() => String, { nullable: true, description: 'paid, unpaid or no_payment_required.' })
  paymentStatus!: string | null;

  @Field(() => Int)
  quantity!: number;

  @Field(() => Date, { nullable: true })
  expiresAt!: Date | null;

  @Field(() => Date, { nullable: true })
  completedAt!: Date | null;

  /** The Stripe subscription the session created; resolved to our row on request. */
  stripeSubscriptionId!: string | null;
  customerId!: string;
  /** Resolved through the loaders. */
  priceId!: string;
}

@InputType()
export class CreateCheckoutSessionInput {
  @Field(() => ID, { nullable: true, description: "A product: its monthly price, or its one-time price." })
  productId?: string | null;

  @Field(() => ID, { nullable: true })
  priceId?: string | null;

  @Field(() => Int, { defaultValue: 1 })
  quantity!: number;

  @Field(() => String, { description: 'Where Stripe sends the customer after paying; may contain {CHECKOUT_SESSION_ID}.' })
  successUrl!: string;

  @Field(() => String, { description: 'Where Stripe sends the customer when they go back.' })
  cancelUrl!: string;

  @Field(() => ID, { nullable: true, description: 'Admins only: act for this customer.' })
  customerId?: string | null;
}
