import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { BillingError, ErrorCode } from '../../common/errors';
import type { SubscriptionSnapshot } from '../../stripe/stripe.gateway';
import { Meter } from '../catalog/meter.entity';
import { Price } from '../catalog/price.entity';
import { Customer } from '../customers/customer.entity';
import { Subscription, type SubscriptionItemSnapshot } from './subscription.entity';

// The rules and writes on subscription rows that both ways of subscribing (startSubscription and
// Checkout) share. They live apart from either service so that neither imports the other's.

/** Statuses in which a subscription still holds (or is about to hold) the product. */
export const LIVE_STATUSES = ['active', 'trialing', 'past_due', 'incomplete', 'unpaid', 'paused'];

/**
 * Serialises everything that may write a customer's subscription rows (startSubscription,
 * Checkout completion, subscription webhooks) inside the caller's transaction: whoever comes
 * second sees the row the first one wrote, instead of racing it to the insert.
 */
export async function lockCustomerSubscriptions(em: EntityManager, customerId: string): Promise<void> {
  await em.execute('select pg_advisory_xact_lock(hashtext(?))', [`subscription.start:${customerId}`]);
}

/**
 * The metered prices that come with a plan's licensed price (same product and interval): every
 * way of subscribing (startSubscription, Checkout) adds them, so recorded usage is billed.
 */
export function meteredPricesOfPlan(em: EntityManager, price: Price): Promise<Price[]> {
  return em.find(Price, {
    product: price.product.id,
    active: true,
    usageType: 'metered',
    interval: price.interval,
    stripePriceId: { $ne: null },
  });
}

/** One live subscription per product and customer: a second one is a CONFLICT. */
export async function assertNoLiveSubscription(em: EntityManager, customerId: string, productId: string): Promise<void> {
  if (await hasLiveSubscription(em, customerId, productId)) throw alreadySubscribed();
}

export async function hasLiveSubscription(em: EntityManager, customerId: string, productId: string): Promise<boolean> {
  return (await em.count(Subscription, { customer: customerId, status: { $in: LIVE_STATUSES }, price: { product: productId } })) > 0;
}

export function alreadySubscribed(): BillingError {
  return new BillingError(ErrorCode.CONFLICT, 'You already have a subscription to this product');
}

export const MAX_QUANTITY = 10_000;
/** Stripe metadata key carrying the caller's startSubscription idempotencyKey. */
export const IDEMPOTENCY_KEY_METADATA = 'tollgate_idempotency_key';

export interface SubscriptionSnapshotOptions {
  customer?: Customer;
  idempotencyKey?: string | null;
  syncedAt?: Date;
  /** Stripe announced the trial's end (`customer.subscription.trial_will_end`). */
  trialWillEnd?: boolean;
}

/**
 * Writes Stripe's view of a subscription into its row (creating it when new). `syncedAt` is
 * the Stripe-side time of this version: an older version never overwrites a newer one.
 */
export async function applySubscriptionSnapshot(
em: EntityManager,
snapshot: SubscriptionSnapshot,
options: SubscriptionSnapshotOptions = {},
): Promise<Subscription> {
  const syncedAt = options.syncedAt ?? new Date();
  const existing = await em.findOne(Subscription, { stripeSubscriptionId: snapshot.id });
  if (existing?.stripeSyncedAt && existing.stripeSyncedAt > syncedAt) return existing;

  const customer = options.customer ?? (await em.findOne(Customer, { stripeCustomerId: snapshot.customerId }));
  if (!customer) throw new BillingError(ErrorCode.NOT_FOUND, `No customer for Stripe customer ${snapshot.customerId}`);
  const main = snapshot.items.find((i) => i.price.recurring?.usageType !== 'metered') ?? snapshot.items[0];
  if (!main) throw new BillingError(ErrorCode.INTERNAL_SERVER_ERROR, 'Subscription has no items');
  const price = await em.findOne(Price, { stripePriceId: main.price.id });
  if (!price) throw new BillingError(ErrorCode.NOT_FOUND, `Price ${main.price.id} is not in the catalog`);

  const meterIds = snapshot.items.map((i) => i.price.recurring?.meterId).filter((m): m is string => Boolean(m));
  const meters = meterIds.length ? await em.find(Meter, { stripeMeterId: { $in: meterIds } }) : [];
  const items: SubscriptionItemSnapshot[] = snapshot.items.map((i) => ({
    stripeItemId: i.id,
    stripePriceId: i.price.id,
    quantity: i.quantity,
    meter: meters.find((m) => m.stripeMeterId === i.price.recurring?.meterId)?.eventName ?? null,
  }));
  const pending = await pendingChangeOf(em, snapshot, existing, price);
  const values = {
    ...pending,
    price: em.getReference(Price, price.id, { wrapped: true }),
    status: snapshot.status,
    quantity: main.quantity ?? 1,
    items,
    currentPeriodStart: snapshot.currentPeriodStart,
    currentPeriodEnd: snapshot.currentPeriodEnd,
    cancelAtPeriodEnd: snapshot.cancelAtPeriodEnd,
    canceledAt: snapshot.canceledAt,
    trialEnd: snapshot.trialEnd,
    latestStripeInvoiceId: snapshot.latestInvoiceId,
    ...(options.trialWillEnd && snapshot.trialEnd ? { trialEndNoticeFor: snapshot.trialEnd } : {}),
    stripeSyncedAt: syncedAt,
  };
  if (existing) {
    em.assign(existing, values);
    await em.flush();
    return existing;
  }
  const row = em.create(Subscription, {
    ...values,
    customer: em.getReference(Customer, customer.id, { wrapped: true }),
    stripeSubscriptionId: snapshot.id,
    idempotencyKey: options.idempotencyKey ?? snapshot.metadata?.[IDEMPOTENCY_KEY_METADATA] ?? null,
    createdAt: snapshot.createdAt,
  });
  try {
    await em.flush();
    return row;
  } catch (error) {
    if (!(error instanceof UniqueConstraintViolationException)) throw error;
    // Written meanwhile by a concurrent request or webhook: apply onto that row instead.
    em.clear();
    return applySubscriptionSnapshot(em, snapshot, { ...options, syncedAt });
  }
}

/**
 * The pending-change columns for a snapshot: a pending update (waiting for its invoice to be
 * paid) shows as `awaiting_payment`; one that is gone is cleared. A change scheduled for the
 * period end is kept while the schedule is attached and its time has not come, and cleared once
 * the schedule is detached, the period rolled over to it, or the subscription ended.
 */
async function pendingChangeOf(
  em: EntityManager,
  snapshot: SubscriptionSnapshot,
  existing: Subscription | null,
  price: Price,
): Promise<Pick<Subscription, 'pendingChange' | 'stripeScheduleId'>> {
  if (snapshot.status === 'canceled' || snapshot.status === 'incomplete_expired') return { pendingChange: null, stripeScheduleId: null };
  const scheduleId = snapshot.scheduleId === undefined ? (existing?.stripeScheduleId ?? null) : snapshot.scheduleId;
  if (snapshot.pendingUpdate) {
    const prices = await em.find(Price, { stripePriceId: { $in: snapshot.pendingUpdate.items.map((i) => i.priceId) } });
    const licensed = prices.find((p) => p.usageType === 'licensed') ?? price;
    const item = snapshot.pendingUpdate.items.find((i) => i.priceId === licensed.stripePriceId);
    return {
      stripeScheduleId: scheduleId,
      pendingChange: {
        kind: 'awaiting_payment',
        priceId: licensed.id,
        quantity: item?.quantity ?? 1,
        effectiveAt: null,
        expiresAt: snapshot.pendingUpdate.expiresAt?.toISOString() ?? null,
      },
    };
  }
  const kept = existing?.pendingChange?.kind === 'scheduled' ? existing.pendingChange : null;
  const due = kept?.effectiveAt && snapshot.currentPeriodStart && snapshot.currentPeriodStart.getTime() >= new Date(kept.effectiveAt).getTime();
  return { stripeScheduleId: scheduleId, pendingChange: kept && scheduleId && !due ? kept : null };
}
