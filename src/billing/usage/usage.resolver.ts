import { Arg, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context';
import { actingCustomer, requireBilling, requireUser } from '../../graphql/guards';
import { batcherFor } from './usage-batch';
import { BILLING_STATUSES, UsageService } from './usage.service';
import { RecordUsageInput, UsageRecordType, UsageSummaryType } from './usage.type';

@Resolver()
export class UsageResolver {
  @Mutation(() => UsageRecordType, {
    description: 'Records metered usage in the ledger; Stripe receives it shortly after, from the usage forwarder.',
  })
  async recordUsage(@Ctx() ctx: GraphQLContext, @Arg('input', () => RecordUsageInput) input: RecordUsageInput): Promise<UsageRecordType> {
    requireBilling(ctx);
    // The request's EntityManager fork is made only if the general path needs it.
    const service = new UsageService(() => ctx.em, undefined, batcherFor(ctx.rootEm, BILLING_STATUSES, ctx.log));
    if (input.customerId) {
      const customer = await actingCustomer(ctx, input.customerId);
      return Object.assign(new UsageRecordType(), await service.record(customer, input));
    }
    // The caller acts for itself: the customer is found by user id in the same statement as the
    // insert, and loaded on its own only when that statement could not record the event.
    const user = requireUser(ctx);
    return Object.assign(
      new UsageRecordType(),
      await service.recordForUser(user.userId, input, { loadCustomer: () => actingCustomer(ctx, null) }),
    );
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
