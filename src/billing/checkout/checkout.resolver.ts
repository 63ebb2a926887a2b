import { Arg, Authorized, Ctx, Extensions, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { BillingError } from '../../common/errors';
import type { GraphQLContext } from '../../graphql/context';
import { ActingCustomer, ActingUser, RequiresBilling } from '../../graphql/authorization';
import type { AuthUser } from '../../graphql/context';
import { CALLS_STRIPE, STRIPE_CALL_COST } from '../../security/field-costs';
import { toPriceType, toProductType } from '../catalog/catalog.mapper';
import { PriceType, ProductType } from '../catalog/catalog.type';
import type { Customer } from '../customers/customer.entity';
import { toSubscriptionType } from '../subscriptions/subscription.resolver';
import { SubscriptionType } from '../subscriptions/subscription.type';
import type { CheckoutSession } from './checkout-session.entity';
import { CheckoutService } from './checkout.service';
import { CheckoutSessionType, CreateCheckoutSessionInput } from './checkout.type';
import { redirectPolicyFrom } from './redirect-url';

export function toCheckoutSessionType(row: CheckoutSession): CheckoutSessionType {
  return Object.assign(new CheckoutSessionType(), {
    id: row.id,
    url: row.url ?? null,
    status: row.status,
    mode: row.mode,
    quantity: row.quantity,
    paymentStatus: row.paymentStatus ?? null,
    expiresAt: row.expiresAt ?? null,
    completedAt: row.completedAt ?? null,
    stripeSubscriptionId: row.stripeSubscriptionId ?? null,
    customerId: row.customer.id,
    priceId: row.price.id,
  });
}

function service(ctx: GraphQLContext): CheckoutService {
  return new CheckoutService(ctx.em, ctx.gateway, { redirect: redirectPolicyFrom(ctx.config) });
}

@Resolver(() => CheckoutSessionType)
export class CheckoutResolver {
  @Mutation(() => CheckoutSessionType, {
    description: 'Starts a hosted Checkout: subscription mode for recurring prices, payment mode for one-time prices.',
  })
  @Authorized()
  @RequiresBilling()
  async createCheckoutSession(
    @Ctx() ctx: GraphQLContext,
    @Arg('input', () => CreateCheckoutSessionInput) input: CreateCheckoutSessionInput,
    @ActingUser() user: AuthUser,
  ): Promise<CheckoutSessionType> {
    return toCheckoutSessionType(await service(ctx).create(user, input));
  }

  @Query(() => CheckoutSessionType, {
    description: "One of the caller's Checkout sessions, read from Stripe while it is open.",
    complexity: ({ childComplexity }) => STRIPE_CALL_COST + childComplexity,
  })
  @Extensions({ [CALLS_STRIPE]: true })
  @Authorized()
  async checkoutSession(
    @Ctx() ctx: GraphQLContext,
    @Arg('id', () => ID) id: string,
    @ActingCustomer({ arg: true }) customer: Customer | null,
  ): Promise<CheckoutSessionType> {
    // Aliases of the same session share one read of Stripe.
    const row = await ctx.loaders.stripeReads.once(`checkout:${customer?.id ?? ''}:${id}`, () => service(ctx).getSyncedOrThrow(customer, id));
    return toCheckoutSessionType(row);
  }

  @FieldResolver(() => PriceType, { description: 'What is being bought.' })
  async price(@Root() session: CheckoutSessionType, @Ctx() ctx: GraphQLContext): Promise<PriceType> {
    const price = await ctx.loaders.price.load(session.priceId);
    if (!price) throw BillingError.notFound('Price');
    return toPriceType(price, price.meter?.getEntity().eventName ?? null);
  }

  @FieldResolver(() => ProductType)
  async product(@Root() session: CheckoutSessionType, @Ctx() ctx: GraphQLContext): Promise<ProductType> {
    const price = await ctx.loaders.price.load(session.priceId);
    const product = price ? await ctx.loaders.product.load(price.product.id) : null;
    if (!product) throw BillingError.notFound('Product');
    return toProductType(product);
  }

  @FieldResolver(() => SubscriptionType, { nullable: true, description: 'The subscription a completed subscription-mode session created.' })
  async subscription(@Root() session: CheckoutSessionType, @Ctx() ctx: GraphQLContext): Promise<SubscriptionType | null> {
    if (!session.stripeSubscriptionId) return null;
    const row = await service(ctx).findSubscription(session.customerId, session.stripeSubscriptionId);
    return row ? toSubscriptionType(row) : null;
  }
}
