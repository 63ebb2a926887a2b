import { Arg, Authorized, Ctx, Mutation, Resolver } from 'type-graphql';
import { ActingUser, RequiresBilling } from '../../graphql/authorization';
import type { AuthUser, GraphQLContext } from '../../graphql/context';
import { redirectPolicyFrom } from '../checkout/redirect-url';
import { BillingPortalService } from './billing-portal.service';
import { BillingPortalSessionType } from './billing-portal.type';

@Resolver(() => BillingPortalSessionType)
export class BillingPortalResolver {
  @Mutation(() => BillingPortalSessionType, { description: "Opens Stripe's customer portal (payment methods, invoices, cancellation)." })
  @Authorized()
  @RequiresBilling()
  async createBillingPortalSession(
    @Ctx() ctx: GraphQLContext,
    @Arg('returnUrl', () => String, { description: 'Where the portal links back to; same origin rules as Checkout URLs.' }) returnUrl: string,
    @ActingUser({ arg: true }) user: AuthUser,
  ): Promise<BillingPortalSessionType> {
    const session = await new BillingPortalService(ctx.em, ctx.gateway, { redirect: redirectPolicyFrom(ctx.config) }).create(user, returnUrl);
    return Object.assign(new BillingPortalSessionType(), { url: session.url });
  }
}
