import { randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { BillingError, ErrorCode } from '../../common/errors';
import { assertId, isId } from '../../common/ids';
import type { AuthUser } from '../../graphql/context';
import { idempotencyKey } from '../../stripe/idempotency';
import type { ProrationBehavior, StripeGateway, SubscriptionSnapshot } from '../../stripe/stripe.gateway';
import { Meter } from '../catalog/meter.entity';
import { Price } from '../catalog/price.entity';
import { Product } from '../catalog/product.entity';
import { Customer } from '../customers/customer.entity';
import { CustomerService } from '../customers/customer.service';
// Imported both ways (Checkout uses this module's locks and checks): only used inside methods.
import { CheckoutService } from '../checkout/checkout.service';
// Imported both ways too (plan changes build on this service): only used inside methods.
import { SubscriptionChangeService } from './subscription-change.service';
import { Subscription, type SubscriptionItemSnapshot } from './subscription.entity';

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
/** Stripe accepts trials of up to two years. */
export const MAX_TRIAL_DAYS = 730;

export interface PlanSelector {
  plan?: string | null;
  priceId?: string | null;
  /** For plan codes: which recurring price (default month). */
  interval?: 'month' | 'year' | null;
}

export interface StartSubscriptionInput extends PlanSelector {
  quantity?: number | null;
  trialDays?: number | null;
  idempotencyKey?: string | null;
}

export interface UpdateSubscriptionInput extends PlanSelector {
  id: string;
  quantity?: number | null;
  prorationBehavior?: ProrationBehavior | null;
}

export interface SubscriptionServiceOptions {
  /** STRIPE_PRODUCT_PRICE_MAP: plan code to Stripe price id. */
  priceMap: Record<string, string>;
}

export class SubscriptionService {
  private readonly customers: CustomerService;

  constructor(
    private readonly em: EntityManager,
    private readonly gateway: StripeGateway | null,
    private readonly options: SubscriptionServiceOptions,
  ) {
    this.customers = new CustomerService(em, gateway);
  }

  // ---- reads --------------------------------------------------------------------------------

  async list(customer: Customer | null, status?: string | null): Promise<Subscription[]> {
    if (!customer) return [];
    return this.em.find(
      Subscription,
      { customer: customer.id, ...(status ? { status } : {}) },
      { orderBy: { createdAt: 'desc', id: 'asc' } },
    );
  }

  /** One of `customer`'s subscriptions; anyone else's answers NOT_FOUND, so existence is not revealed. */
  async getOwnedOrThrow(customer: Customer | null, id: string): Promise<Subscription> {
    assertId(id, 'id');
    const row = customer ? await this.em.findOne(Subscription, { id, customer: customer.id }) : null;
    if (!row) throw BillingError.notFound('Subscription');
    return row;
  }

  // ---- writes -------------------------------------------------------------------------------

  async start(user: AuthUser, input: StartSubscriptionInput): Promise<{ subscription: Subscription; clientSecret: string | null }> {
    const gateway = this.requireGateway();
    const quantity = checkQuantity(input.quantity ?? 1);
    const trialDays = input.trialDays ?? undefined;
    if (trialDays !== undefined && (!Number.isInteger(trialDays) || trialDays < 1 || trialDays > MAX_TRIAL_DAYS)) {
      throw BillingError.badInput(`trialDays must be a whole number from 1 to ${MAX_TRIAL_DAYS}`, 'trialDays');
    }
    const clientKey = input.idempotencyKey ?? undefined;
    if (clientKey !== undefined && (clientKey.length < 1 || clientKey.length > 200)) {
      throw BillingError.badInput('idempotencyKey must be 1 to 200 characters', 'idempotencyKey');
    }
    const price = await this.resolveRecurringPrice(input);

    const replay = await this.findByClientKey(user, clientKey);
    if (replay) return this.replayed(replay, price);

    const customer = await this.customers.getOrCreateBillable(user);
    const started = await this.em.transactional(async (tx) => {
      // One start at a time per customer: the conflict check and the insert cannot interleave.
      await lockCustomerSubscriptions(tx, customer.id);
      if (clientKey) {
        const again = await tx.findOne(Subscription, { customer: customer.id, idempotencyKey: clientKey });
        if (again) return this.replayed(again, price);
      }
      await assertNoLiveSubscription(tx, customer.id, price.product.id);
      // A Checkout session for the same product, still open in some tab, could be paid after this
      // subscription starts: it is expired in Stripe first. One found paid instead is recorded
      // (committed with its subscription) and this start refused.
      if (await new CheckoutService(tx, gateway).closeOpenSessions(tx, customer.id, price.product.id)) return null;

      const metered = await meteredPricesOfPlan(tx, price);
      const created = await gateway.createSubscription({
        customerId: customer.stripeCustomerId,
        items: [{ priceId: price.stripePriceId!, quantity }, ...metered.map((m) => ({ priceId: m.stripePriceId! }))],
        trialDays,
        // The caller's key rides along so that the row a webhook writes first (when our answer from
        // Stripe was lost to a timeout) is still found by the caller's retry with that key.
        metadata: {
          tollgate_customer_id: customer.id,
          tollgate_user_id: user.userId,
          ...(clientKey ? { [IDEMPOTENCY_KEY_METADATA]: clientKey } : {}),
        },
        idempotencyKey: idempotencyKey('subscription.create', customer.id, clientKey ?? randomUUID()),
      });
      const row = await this.applySnapshot(tx, created.subscription, { customer, idempotencyKey: clientKey ?? null });
      return { subscription: row, clientSecret: created.clientSecret };
    });
    if (!started) throw alreadySubscribed();
    return started;
  }

  /** A plan, interval or quantity change: see SubscriptionChangeService (now, or at the period end). */
  async update(customer: Customer | null, input: UpdateSubscriptionInput): Promise<Subscription> {
    return (await new SubscriptionChangeService(this.em, this.gateway, this.options).change(customer, input)).subscription;
  }

  async cancel(customer: Customer | null, id: string, atPeriodEnd: boolean): Promise<Subscription> {
    const gateway = this.requireGateway();
    const row = await this.getOwnedOrThrow(customer, id);
    if (row.status === 'canceled' || row.status === 'incomplete_expired') return row;
    // A change scheduled for the period end goes with the cancellation (its schedule is released first).
    if (row.stripeScheduleId || row.pendingChange?.kind === 'scheduled') {
      await new SubscriptionChangeService(this.em, this.gateway, this.options).releaseSchedule(this.em, row);
    }
    const snapshot = await gateway.cancelSubscription({
      id: row.stripeSubscriptionId,
      atPeriodEnd,
      idempotencyKey: idempotencyKey('subscription.cancel', row.id, row.updatedAt.getTime(), atPeriodEnd ? 'period_end' : 'now'),
    });
    return this.applySnapshot(this.em, snapshot, { customer: customer! });
  }

  async resume(customer: Customer | null, id: string): Promise<Subscription> {
    const gateway = this.requireGateway();
    const row = await this.getOwnedOrThrow(customer, id);
    // Already resumed (a retry whose first answer was lost, say): nothing left to undo.
    if (!row.cancelAtPeriodEnd && LIVE_STATUSES.includes(row.status)) return row;
    if (!LIVE_STATUSES.includes(row.status)) {
      throw new BillingError(ErrorCode.CONFLICT, `A ${row.status} subscription cannot be resumed; start a new one`);
    }
    const snapshot = await gateway.resumeSubscription({
      id: row.stripeSubscriptionId,
      idempotencyKey: idempotencyKey('subscription.resume', row.id, row.updatedAt.getTime()),
    });
    return this.applySnapshot(this.em, snapshot, { customer: customer! });
  }

  // ---- sync from Stripe -----------------------------------------------------------------------

  /**
   * Writes Stripe's view of a subscription into its row (creating it when new). `syncedAt` is
   * the Stripe-side time of this version: an older version never overwrites a newer one.
   */
  async applySnapshot(
    em: EntityManager,
    snapshot: SubscriptionSnapshot,
    options: { customer?: Customer; idempotencyKey?: string | null; syncedAt?: Date } = {},
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
      return this.applySnapshot(em, snapshot, { ...options, syncedAt });
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  private async findByClientKey(user: AuthUser, clientKey: string | undefined): Promise<Subscription | null> {
    if (!clientKey) return null;
    const customer = await this.customers.findByUserId(user.userId);
    return customer ? this.em.findOne(Subscription, { customer: customer.id, idempotencyKey: clientKey }) : null;
  }

  private replayed(row: Subscription, price: Price): { subscription: Subscription; clientSecret: string | null } {
    if (row.price.id !== price.id) {
      throw new BillingError(ErrorCode.IDEMPOTENCY_CONFLICT, 'This idempotencyKey was already used for a different subscription');
    }
    return { subscription: row, clientSecret: null };
  }

  private licensedItem(row: Subscription): SubscriptionItemSnapshot {
    const item = row.items.find((i) => !i.meter) ?? row.items[0];
    if (!item) throw new BillingError(ErrorCode.INTERNAL_SERVER_ERROR, 'Subscription has no items');
    return item;
  }

  /** A plan code (catalog, then STRIPE_PRODUCT_PRICE_MAP) or a price id, as an active recurring licensed price. */
  async resolveRecurringPrice(selector: PlanSelector): Promise<Price> {
    if (selector.plan && selector.priceId) throw BillingError.badInput('Give either plan or priceId, not both', 'plan');
    let price: Price | null = null;
    if (selector.priceId) {
      if (!isId(selector.priceId)) throw BillingError.badInput('priceId is not a valid id', 'priceId');
      price = await this.em.findOne(Price, { id: selector.priceId });
      if (!price) throw BillingError.badInput('Unknown priceId', 'priceId');
    } else if (selector.plan) {
      const interval = selector.interval ?? 'month';
      const product = await this.em.findOne(Product, { code: selector.plan, active: true });
      if (product) {
        price = await this.em.findOne(Price, { product: product.id, active: true, usageType: 'licensed', interval });
      }
      const mapped = this.options.priceMap[selector.plan];
      if (!price && mapped) price = await this.em.findOne(Price, { stripePriceId: mapped });
      if (!price) throw BillingError.badInput(`Unknown plan "${selector.plan}"${product ? ` with a ${interval}ly price` : ''}`, 'plan');
    } else {
      throw BillingError.badInput('Give a plan or a priceId', 'plan');
    }
    if (!price.active) throw BillingError.badInput('This price is no longer available', 'priceId');
    if (!price.interval) throw BillingError.badInput('This price is one-time; buy it through createCheckoutSession', 'priceId');
    if (price.usageType === 'metered') throw BillingError.badInput('A metered price comes with its plan; choose the plan', 'priceId');
    if (!price.stripePriceId) throw BillingError.badInput('This price is not available in Stripe yet', 'priceId');
    return price;
  }

  private requireGateway(): StripeGateway {
    if (!this.gateway) throw new BillingError(ErrorCode.BILLING_DISABLED, 'Billing is disabled');
    return this.gateway;
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

function checkQuantity(quantity: number): number {
  if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) {
    throw BillingError.badInput(`quantity must be a whole number from 1 to ${MAX_QUANTITY}`, 'quantity');
  }
  return quantity;
}
