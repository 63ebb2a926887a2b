import { Arg, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { BillingError } from '../../common/errors';
import { ActingCustomer, ActingScope, ActingUser, CurrentUser, RequiresBilling, type CustomerScope } from '../../graphql/authorization';
import type { AuthUser, GraphQLContext } from '../../graphql/context';
import { toPriceType, toProductType } from '../catalog/catalog.mapper';
import { PriceType, ProductType } from '../catalog/catalog.type';
import type { Customer } from '../customers/customer.entity';
import { customerIdOf } from '../customers/customer-id';
import { toInvoiceType } from '../invoices/invoice.resolver';
import { InvoiceService } from '../invoices/invoice.service';
import { InvoiceType } from '../invoices/invoice.type';
import { BillingAlertType } from './billing-alert.type';
import { billingAlertsOf, type BillingAlert } from './billing-alerts';
import { EntitlementService } from '../entitlements/entitlement.service';
import type { Subscription } from './subscription.entity';
import { SubscriptionReadRepository, type SubscriptionView } from './subscription-read.repository';
import { SubscriptionService } from './subscription.service';
import {
  CustomerType,
  StartSubscriptionInput,
  StartSubscriptionPayload,
  SubscriptionStatus,
  SubscriptionType,
} from './subscription.type';

export function toSubscriptionType(row: Subscription | SubscriptionView): SubscriptionType {
  return Object.assign(new SubscriptionType(), {
    id: row.id,
    status: row.status as SubscriptionStatus,
    quantity: row.quantity,
    currentPeriodStart: row.currentPeriodStart ?? null,
    currentPeriodEnd: row.currentPeriodEnd ?? null,
    cancelAtPeriodEnd: row.cancelAtPeriodEnd,
    canceledAt: row.canceledAt ?? null,
    trialEnd: row.trialEnd ?? null,
    createdAt: row.createdAt,
    priceId: row.price.id,
    pendingChangeRow: row.pendingChange ?? null,
    // A view carries its latest invoice (joined); an entity only Stripe's id of it.
    ...('latestInvoice' in row ? { latestInvoiceRow: row.latestInvoice } : { latestStripeInvoiceId: row.latestStripeInvoiceId ?? null }),
  });
}

function toBillingAlertType(alert: BillingAlert): BillingAlertType {
  const invoice = alert.invoice;
  return Object.assign(new BillingAlertType(), {
    code: alert.code,
    message: alert.message,
    subscription: toSubscriptionType(alert.subscription),
    invoice: invoice ? toInvoiceType(invoice) : null,
    amountDue: invoice ? invoice.amountRemaining : null,
    currency: invoice ? invoice.currency : null,
    nextPaymentAttempt: invoice?.nextPaymentAttempt ?? null,
    hostedInvoiceUrl: invoice?.hostedInvoiceUrl ?? null,
    trialEnd: alert.trialEnd,
  });
}

function service(ctx: GraphQLContext): SubscriptionService {
  return new SubscriptionService(ctx.em, ctx.gateway, { priceMap: ctx.config.stripe.priceMap });
}

@Resolver(() => SubscriptionType)
export class SubscriptionResolver {
  @Query(() => [SubscriptionType], { description: "The caller's subscriptions, newest first." })
  @Authorized()
  async subscriptions(
    @Ctx() ctx: GraphQLContext,
    @Arg('status', () => SubscriptionStatus, { nullable: true }) status: SubscriptionStatus | null | undefined,
    @ActingScope({ arg: true }) scope: CustomerScope,
  ): Promise<SubscriptionType[]> {
    // The caller's own: one statement finds the customer and its rows.
    if (!scope.customerId) return (await new SubscriptionReadRepository(ctx.rootEm).listForUser(scope.user.userId, status)).map(toSubscriptionType);
    const customer = await scope.customer();
    return customer ? (await new SubscriptionReadRepository(ctx.rootEm).listForCustomer(customer.id, status)).map(toSubscriptionType) : [];
  }

  @Query(() => SubscriptionType)
  @Authorized()
  async subscription(
    @Ctx() ctx: GraphQLContext,
    @Arg('id', () => ID) id: string,
    @ActingCustomer({ arg: true }) customer: Customer | null,
  ): Promise<SubscriptionType> {
    return toSubscriptionType(await service(ctx).getOwnedOrThrow(customer, id));
  }

  @Mutation(() => StartSubscriptionPayload)
  @Authorized()
  @RequiresBilling()
  async startSubscription(
    @Ctx() ctx: GraphQLContext,
    @Arg('input', () => StartSubscriptionInput) input: StartSubscriptionInput,
    @ActingUser() user: AuthUser,
  ): Promise<StartSubscriptionPayload> {
    const result = await service(ctx).start(user, input);
    return Object.assign(new StartSubscriptionPayload(), {
      subscription: toSubscriptionType(result.subscription),
      clientSecret: result.clientSecret,
    });
  }

  @Mutation(() => SubscriptionType, { description: 'Cancels at the end of the period by default; atPeriodEnd: false ends it now.' })
  @Authorized()
  @RequiresBilling()
  async cancelSubscription(
    @Ctx() ctx: GraphQLContext,
    @Arg('id', () => ID) id: string,
    @Arg('atPeriodEnd', () => Boolean, { defaultValue: true }) atPeriodEnd: boolean,
    @ActingCustomer({ arg: true }) customer: Customer | null,
  ): Promise<SubscriptionType> {
    return toSubscriptionType(await service(ctx).cancel(customer, id, atPeriodEnd));
  }

  @Mutation(() => SubscriptionType, { description: 'Undoes a scheduled cancellation.' })
  @Authorized()
  @RequiresBilling()
  async resumeSubscription(
    @Ctx() ctx: GraphQLContext,
    @Arg('id', () => ID) id: string,
    @ActingCustomer({ arg: true }) customer: Customer | null,
  ): Promise<SubscriptionType> {
    return toSubscriptionType(await service(ctx).resume(customer, id));
  }

  // Answered without a promise from the catalog in memory when it holds the row (the usual
  // case); a row it does not hold yet is loaded.
  @FieldResolver(() => PriceType)
  price(@Root() sub: SubscriptionType, @Ctx() ctx: GraphQLContext): PriceType | Promise<PriceType> {
    const cached = ctx.loaders.catalog.current()?.pricesById.get(sub.priceId);
    if (cached) return toPriceType(cached, cached.meter?.getEntity().eventName ?? null);
    return (async () => {
      const price = await ctx.loaders.price.load(sub.priceId);
      if (!price) throw BillingError.notFound('Price');
      return toPriceType(price, price.meter?.getEntity().eventName ?? null);
    })();
  }

  @FieldResolver(() => InvoiceType, {
    nullable: true,
    description: "Stripe's latest invoice of the subscription (a renewal, a failed payment to fix), from our tables; null until it arrives.",
  })
  async latestInvoice(@Root() sub: SubscriptionType, @Ctx() ctx: GraphQLContext): Promise<InvoiceType | null> {
    if (sub.latestInvoiceRow !== undefined) return sub.latestInvoiceRow ? toInvoiceType(sub.latestInvoiceRow) : null;
    if (!sub.latestStripeInvoiceId) return null;
    const row = await new InvoiceService(ctx.em).findByStripeId(sub.latestStripeInvoiceId);
    return row ? toInvoiceType(row) : null;
  }

  @FieldResolver(() => ProductType)
  product(@Root() sub: SubscriptionType, @Ctx() ctx: GraphQLContext): ProductType | Promise<ProductType> {
    const snapshot = ctx.loaders.catalog.current();
    const cached = snapshot?.productsById.get(snapshot.pricesById.get(sub.priceId)?.product.id ?? '');
    if (cached) return toProductType(cached);
    return (async () => {
      const price = await ctx.loaders.price.load(sub.priceId);
      const product = price ? await ctx.loaders.product.load(price.product.id) : null;
      if (!product) throw BillingError.notFound('Product');
      return toProductType(product);
    })();
  }
}

@Resolver(() => CustomerType)
export class ViewerResolver {
  @Query(() => CustomerType, { description: "The caller's billing customer." })
  @Authorized()
  async viewer(@Ctx() ctx: GraphQLContext, @CurrentUser() user: AuthUser): Promise<CustomerType> {
    // Known customers come from the per-customer cache (no round trip). A query writes nothing:
    // a caller with no row yet is shown the id its row will get (and, under it, nothing).
    const row = await new EntitlementService(ctx.rootEm).customerOfUser(user.userId);
    return Object.assign(new CustomerType(), row ? { id: row.id, email: row.email ?? null } : { id: customerIdOf(user.userId), email: user.email ?? null });
  }

  @FieldResolver(() => [SubscriptionType])
  async subscriptions(@Root() customer: CustomerType, @Ctx() ctx: GraphQLContext): Promise<SubscriptionType[]> {
    return (await new SubscriptionReadRepository(ctx.rootEm).listForCustomer(customer.id)).map(toSubscriptionType);
  }

  @FieldResolver(() => [BillingAlertType], {
    description: "What needs the customer's action now (failed or unauthenticated payments, an unpaid subscription, a trial ending), from our tables.",
  })
  async billingAlerts(@Root() customer: CustomerType, @Ctx() ctx: GraphQLContext): Promise<BillingAlertType[]> {
    const subscriptions = await new SubscriptionReadRepository(ctx.rootEm).listForCustomer(customer.id);
    return billingAlertsOf(subscriptions, new Date()).map(toBillingAlertType);
  }
}
