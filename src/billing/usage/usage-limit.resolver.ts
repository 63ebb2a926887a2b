import { Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context';
import { CustomerType } from '../subscriptions/subscription.type';
import { UsageLimitService } from './usage-limit.service';
import { UsageLimitType } from './usage-limit.type';

@Resolver(() => CustomerType)
export class UsageLimitResolver {
  @FieldResolver(() => [UsageLimitType], { description: "The usage limits of the customer's live subscriptions' plans, with this billing period's usage." })
  async limits(@Root() customer: CustomerType, @Ctx() ctx: GraphQLContext): Promise<UsageLimitType[]> {
    const rows = await new UsageLimitService(ctx.rootEm).limits(customer.id);
    return rows.map((r) => Object.assign(new UsageLimitType(), r));
  }
}
