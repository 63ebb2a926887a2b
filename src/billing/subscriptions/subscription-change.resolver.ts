import { Arg, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context';
import { ActingCustomer, RequiresBilling } from '../../graphql/authorization';
import type { Customer } from '../customers/customer.entity';
import { SubscriptionChangeService, type SubscriptionChangeInput } from './subscription-change.service';
import {
  PendingChangeStatus,
  PendingChangeType,
  SubscriptionChangeEffective,
  SubscriptionChangePreviewType,
} from './subscription-change.type';
import { toSubscriptionType } from './subscription.resolver';
import { BillingInterval, SubscriptionType, UpdateSubscriptionInput } from './subscription.type';

function changes(ctx: GraphQLContext): SubscriptionChangeService {
  return new SubscriptionChangeService(ctx.em, ctx.gateway, { priceMap: ctx.config.stripe.priceMap });
}

/** The GraphQL input as the service takes it (enum values are the service's strings). */
export function toChangeInput(input: UpdateSubscriptionInput): SubscriptionChangeInput {
  return {
    id: input.id,
    plan: input.plan,
    priceId: input.priceId,
    interval: input.interval ?? null,
    quantity: input.quantity,
    prorationBehavior: input.prorationBehavior ?? null,
    effective: input.effective ?? null,
    prorationDate: input.prorationDate ?? null,
  };
}

@Resolver(() => SubscriptionType)
export class SubscriptionChangeResolver {
  @Query(() => SubscriptionChangePreviewType, {
    description: 'What updateSubscription with the same input would charge now and at the next renewal, with the proration lines. Changes nothing.',
  })
  @Authorized()
  @RequiresBilling()
  async previewSubscriptionChange(
    @Ctx() ctx: GraphQLContext,
    @Arg('input', () => UpdateSubscriptionInput) input: UpdateSubscriptionInput,
    @ActingCustomer() customer: Customer | null,
  ): Promise<SubscriptionChangePreviewType> {
    const preview = await changes(ctx).preview(customer, toChangeInput(input));
    return Object.assign(new SubscriptionChangePreviewType(), {
      ...preview,
      effective: preview.effective as SubscriptionChangeEffective,
    });
  }

  @Mutation(() => SubscriptionType, {
    description:
      'Changes plan, interval or quantity. Upgrades apply now and charge the prorated difference (clientSecret when the payment needs the customer; the change applies once paid); downgrades wait for the period end (pendingChange).',
  })
  @Authorized()
  @RequiresBilling()
  async updateSubscription(
    @Ctx() ctx: GraphQLContext,
    @Arg('input', () => UpdateSubscriptionInput) input: UpdateSubscriptionInput,
    @ActingCustomer() customer: Customer | null,
  ): Promise<SubscriptionType> {
    const changed = await changes(ctx).change(customer, toChangeInput(input));
    return Object.assign(toSubscriptionType(changed.subscription), { clientSecret: changed.clientSecret });
  }

  @Mutation(() => SubscriptionType, { description: 'Drops a change scheduled for the end of the period.' })
  @Authorized()
  @RequiresBilling()
  async cancelPendingChange(
    @Ctx() ctx: GraphQLContext,
    @Arg('id', () => ID) id: string,
    @ActingCustomer({ arg: true }) customer: Customer | null,
  ): Promise<SubscriptionType> {
    return toSubscriptionType(await changes(ctx).cancelPendingChange(customer, id));
  }

  @FieldResolver(() => PendingChangeType, { nullable: true, description: 'A plan change that has not taken effect yet.' })
  async pendingChange(@Root() sub: SubscriptionType, @Ctx() ctx: GraphQLContext): Promise<PendingChangeType | null> {
    const pending = sub.pendingChangeRow;
    if (!pending) return null;
    const price = await ctx.loaders.price.load(pending.priceId);
    const product = price ? await ctx.loaders.product.load(price.product.id) : null;
    if (!price || !product) return null;
    return Object.assign(new PendingChangeType(), {
      plan: product.code,
      interval: (price.interval as BillingInterval | null) ?? null,
      quantity: pending.quantity,
      effectiveAt: pending.effectiveAt ? new Date(pending.effectiveAt) : null,
      status: pending.kind as PendingChangeStatus,
      expiresAt: pending.expiresAt ? new Date(pending.expiresAt) : null,
    });
  }
}
