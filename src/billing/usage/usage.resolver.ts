import { Arg, Authorized, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { BillingError } from '../../common/errors';
import { ActingCustomer, ActingScope, RequiresBilling, type CustomerScope } from '../../graphql/authorization';
import type { GraphQLContext } from '../../graphql/context';
import { billingClockOf } from '../customers/billing-clock';
import type { Customer } from '../customers/customer.entity';
import { batcherFor } from './usage-batch';
import { BILLING_STATUSES, generalPathFor, UsageService } from './usage.service';
import { EntitlementService } from '../entitlements/entitlement.service';
import { UsageLimitService } from './usage-limit.service';
import {
  RecordUsageBatchInput,
  RecordUsageBatchPayloadType,
  RecordUsageInput,
  UsageBatchStatus,
  UsageRecordType,
  UsageSummaryType,
} from './usage.type';

@Resolver()
export class UsageResolver {
  @Mutation(() => UsageRecordType, {
    description: 'Records metered usage in the ledger; Stripe receives it shortly after, from the usage forwarder.',
  })
  @Authorized()
  @RequiresBilling()
  async recordUsage(
    @Ctx() ctx: GraphQLContext,
    @Arg('input', () => RecordUsageInput) input: RecordUsageInput,
    @ActingScope() scope: CustomerScope,
  ): Promise<UsageRecordType> {
    // The request's EntityManager fork is made only if the general path needs it.
    // A customer on a test clock records usage in the clock's time (its periods are in it).
    const now = await billingClockOf(ctx.rootEm, ctx.gateway, scope.customerId ? { customerId: scope.customerId } : { userId: scope.user.userId });
    const service = new UsageService(() => ctx.em, now, batcherFor(ctx.rootEm, BILLING_STATUSES, ctx.log), generalPathFor(ctx.rootEm));
    if (scope.customerId) return Object.assign(new UsageRecordType(), await service.record(await scope.customer(), input));
    // The caller acts for itself: the customer is found by user id in the same statement as the
    // insert, and looked up on its own (through the entitlements' cache of who is which customer)
    // only when that statement could not record the event.
    const { userId } = scope.user;
    const customers = new EntitlementService(ctx.rootEm);
    const limits = new UsageLimitService(ctx.rootEm);
    return Object.assign(
      new UsageRecordType(),
      await service.recordForUser(userId, input, {
        loadCustomer: () => customers.customerOfUser(userId),
        limits: () => limits.heldLimitsOfUser(userId) ?? customers.customerOfUser(userId).then((c) => (c ? limits.definitions(c.id) : [])),
      }),
    );
  }

  @Mutation(() => RecordUsageBatchPayloadType, {
    description:
      'Records up to 1,000 usage events in one statement: the way a metering backend should send usage. Each event is checked and answered on its own (recorded, replayed or failed with a code), so one bad event never fails the others; each counts against the usage rate budget.',
  })
  @Authorized()
  @RequiresBilling()
  async recordUsageBatch(
    @Ctx() ctx: GraphQLContext,
    @Arg('input', () => RecordUsageBatchInput) input: RecordUsageBatchInput,
    @ActingCustomer() customer: Customer | null,
  ): Promise<RecordUsageBatchPayloadType> {
    const now = customer ? await billingClockOf(ctx.rootEm, ctx.gateway, { customerId: customer.id }) : undefined;
    const results = await new UsageService(ctx.em, now).recordBatch(customer, input.events, (event) =>
      // An event may not name a customer of its own: the batch's is the one all are recorded for.
      event.customerId && event.customerId !== (input.customerId ?? null)
        ? BillingError.badInput('Give customerId on the batch, not on its events', 'customerId')
        : null,
    );
    const payload = Object.assign(new RecordUsageBatchPayloadType(), { results: [], recorded: 0, replayed: 0, failed: 0 });
    for (const result of results) {
      if (result.status === 'failed') {
        payload.failed++;
        payload.results.push({
          index: result.index,
          status: UsageBatchStatus.FAILED,
          record: null,
          error: { code: result.error.code, message: result.error.message, field: typeof result.error.details.field === 'string' ? result.error.details.field : null },
        });
      } else {
        payload[result.status]++;
        payload.results.push({
          index: result.index,
          status: result.status === 'recorded' ? UsageBatchStatus.RECORDED : UsageBatchStatus.REPLAYED,
          record: Object.assign(new UsageRecordType(), result.record),
          error: null,
        });
      }
    }
    return payload;
  }

  @Query(() => UsageSummaryType, { description: "Usage of a metered subscription from our ledger; by default over the current billing period." })
  @Authorized()
  async usage(
    @Ctx() ctx: GraphQLContext,
    @Arg('subscriptionId', () => ID, { nullable: true }) subscriptionId: string | null | undefined,
    @Arg('meter', () => String, { nullable: true }) meter: string | null | undefined,
    @Arg('from', () => Date, { nullable: true }) from: Date | null | undefined,
    @Arg('to', () => Date, { nullable: true }) to: Date | null | undefined,
    @ActingCustomer({ arg: true }) customer: Customer | null,
  ): Promise<UsageSummaryType> {
    const now = customer ? await billingClockOf(ctx.rootEm, ctx.gateway, { customerId: customer.id }) : undefined;
    return Object.assign(new UsageSummaryType(), await new UsageService(ctx.em, now).summary(customer, { subscriptionId, meter, from, to }));
  }
}
