import { Arg, Authorized, Ctx, FieldResolver, Query, Resolver, Root } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context';
import { ActingScope, type CustomerScope } from '../../graphql/authorization';
import { CustomerType } from '../subscriptions/subscription.type';
import { EntitlementService } from './entitlement.service';
import { EntitlementType } from './entitlement.type';

function service(ctx: GraphQLContext): EntitlementService {
  return new EntitlementService(ctx.rootEm, ctx.log);
}

@Resolver(() => CustomerType)
export class EntitlementResolver {
  @Query(() => Boolean, {
    description: 'Whether the caller (admins: the customer named by customerId) has the feature now. Answered from the database, never from Stripe.',
  })
  @Authorized()
  async hasEntitlement(
    @Ctx() ctx: GraphQLContext,
    @Arg('feature', () => String, { description: 'A feature lookup key, such as "sso".' }) feature: string,
    @ActingScope({ arg: true }) scope: CustomerScope,
  ): Promise<boolean> {
    // The caller's own customer is found through the definitions cache; a customer an admin names is checked and loaded.
    const entitlements = service(ctx);
    const customerId = scope.customerId ? ((await scope.customer())?.id ?? null) : ((await entitlements.customerOfUser(scope.user.userId))?.id ?? null);
    return entitlements.has(customerId, feature);
  }

  @FieldResolver(() => [EntitlementType], { description: 'Every feature of the catalog (and any other the customer was granted), with whether the customer has it now.' })
  async entitlements(@Root() customer: CustomerType, @Ctx() ctx: GraphQLContext): Promise<EntitlementType[]> {
    const rows = await service(ctx).list(customer.id);
    return rows.map((r) => Object.assign(new EntitlementType(), r));
  }
}
