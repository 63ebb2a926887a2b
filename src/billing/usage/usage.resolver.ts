import { Arg, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context';
import { actingCustomer, requireBilling } from '../../graphql/guards';
import { UsageService } from './usage.service';
import { RecordUsageInput, UsageRecordType, UsageSummaryType } from './usage.type';

@Resolver()
export class UsageResolver {
  @Mutation(() => UsageRecordType, {
    description: 'Records metered usage in the ledger; Stripe receives it shortly after, from the usage forwarder.',
  })
  async recordUsage(@Ctx() ctx: GraphQLContext, @Arg('input', () => RecordUsageInput) input: RecordUsageInput): Promise<UsageRecordType> {
    requireBilling(ctx);
    const customer = await actingCustomer(ctx, input.customerId);
    return Object.assign(new UsageRecordType(), await new UsageService(ctx.em).record(customer, input));
  }

  @Query(() => UsageSummaryType, { description: "Usage of a metered subscription from our ledger; by default over the current billing period." })
  async usage(
    @Ctx() ctx: GraphQLContext,
    @Arg('subscriptionId', () => ID, { nullable: true }) subscriptionId?: string | null,
    @Arg('meter', () => String, { nullable: true }) meter?: string | null,
    @Arg('from', () => Date, { nullable: true }) from?: Date | null,
    @Arg('to', () => Date, { nullable: true }) to?: Date | null,
    @Arg('customerId', () => ID, { nullable: true, description: 'Admins only.' }) customerId?: string | null,
  ): Promise<UsageSummaryType> {
    const customer = await actingCustomer(ctx, customerId);
    return Object.assign(new UsageSummaryType(), await new UsageService(ctx.em).summary(customer, { subscriptionId, meter, from, to }));
  }
}
