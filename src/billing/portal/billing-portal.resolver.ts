import { Arg, Ctx, ID, Mutation, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context';
import { actingCustomer, requireBilling, requireUser } from '../../graphql/guards';
import { redirectPolicyFrom } from '../checkout/redirect-url';
import type { Customer } from '../customers/customer.entity';
import { BillingPortalService } from './billing-portal.service';
import { BillingPortalSessionType } from './billing-portal.type';

@Resolver(() => BillingPortalSessionType)
export class BillingPortalResolver {
  @Mutation(() => BillingPortalSessionType, { description: "Opens Stripe's customer portal (payment methods, invoices, cancellation)." })
  async createBillingPortalSession(
    @Ctx() ctx: GraphQLContext,
    @Arg('returnUrl', () => String, { description: 'Where the portal links back to; same origin rules as Checkout URLs.' }) returnUrl: string,
    @Arg('customerId', () => ID, { nullable: true, description: 'Admins only.' }) customerId?: string | null,
  ): Promise<BillingPortalSessionType> {
    requireBilling(ctx);
    let user = requireUser(ctx);
    if (customerId) {
      const customer = (await actingCustomer(ctx, customerId)) as Customer;
      user = { userId: customer.userId, email: customer.email ?? undefined, roles: [], isAdmin: false };
    }
    const session = await new BillingPortalService(ctx.em, ctx.gateway, { redirect: redirectPolicyFrom(ctx.config) }).create(user, returnUrl);
    return Object.assign(new BillingPortalSessionType(), { url: session.url });
  }
}
