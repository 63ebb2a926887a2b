import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { BillingError, ErrorCode } from '../../common/errors';
import { assertId, isId } from '../../common/ids';
import type { AuthUser } from '../../auth/auth-user';
import { idempotencyKey } from '../../stripe/idempotency';
import type { ProrationBehavior, StripeGateway, SubscriptionSnapshot } from '../../stripe/stripe.gateway';
import { Price } from '../catalog/price.entity';
import { Product } from '../catalog/product.entity';
import type { Customer } from '../customers/customer.entity';
import { CustomerService } from '../customers/customer.service';
import { CheckoutService } from '../checkout/checkout.service';
import { InvoiceService, stripeSecond } from '../invoices/invoice.service';
import { Subscription } from './subscription.entity';
import {
  alreadySubscribed,
  applySubscriptionSnapshot,
  assertNoLiveSubscription,
  hasLiveSubscription,
  IDEMPOTENCY_KEY_METADATA,
  LIVE_STATUSES,
  lockCustomerSubscriptions,
  MAX_QUANTITY,
  meteredPricesOfPlan,
  type SubscriptionSnapshotOptions,
} from './subscription-rows';

export {
  alreadySubscribed,
  assertNoLiveSubscription,
  hasLiveSubscription,
  IDEMPOTENCY_KEY_METADATA,
  LIVE_STATUSES,
  lockCustomerSubscriptions,
  MAX_QUANTITY,
  meteredPricesOfPlan,
};

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
    private readonly gateway: StripeGateway,
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
    const gateway = this.gateway;
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
      const askedAt = stripeSecond(new Date());
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
      // The first invoice came back with the subscription: it is listed from now on, without
      // waiting for its event.
      if (created.latestInvoice) await new InvoiceService(tx).applySnapshot(tx, created.latestInvoice, askedAt, customer);
      return { subscription: row, clientSecret: created.clientSecret };
    });
    if (!started) throw alreadySubscribed();
    return started;
  }

  async cancel(customer: Customer | null, id: string, atPeriodEnd: boolean): Promise<Subscription> {
    const gateway = this.gateway;
    const row = await this.getOwnedOrThrow(customer, id);
    if (row.status === 'canceled' || row.status === 'incomplete_expired') return row;
    // A change scheduled for the period end goes with the cancellation: its schedule is released first.
    if (row.stripeScheduleId) await this.releaseSchedule(row.stripeScheduleId, row.id);
    const snapshot = await gateway.cancelSubscription({
      id: row.stripeSubscriptionId,
      atPeriodEnd,
      idempotencyKey: idempotencyKey('subscription.cancel', row.id, row.updatedAt.getTime(), atPeriodEnd ? 'period_end' : 'now'),
    });
    return this.applySnapshot(this.em, snapshot, { customer: customer! });
  }

  async resume(customer: Customer | null, id: string): Promise<Subscription> {
    const gateway = this.gateway;
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

  /**
   * Releases a subscription schedule (the subscription stays as it is now). One already
   * released, canceled or completed (the period rolled over meanwhile) is fine.
   */
  async releaseSchedule(scheduleId: string, rowId: string): Promise<void> {
    const gateway = this.gateway;
    try {
      await gateway.releaseSchedule({ id: scheduleId, idempotencyKey: idempotencyKey('schedule.release', rowId, scheduleId) });
    } catch (error) {
      const current = await gateway.retrieveSchedule(scheduleId).catch(() => null);
      if (!current || current.status === 'active' || current.status === 'not_started') throw error;
    }
  }

  // ---- sync from Stripe -----------------------------------------------------------------------

  /**
   * Writes Stripe's view of a subscription into its row (creating it when new). `syncedAt` is
   * the Stripe-side time of this version: an older version never overwrites a newer one.
   */
  applySnapshot(
    em: EntityManager,
    snapshot: SubscriptionSnapshot,
    options: SubscriptionSnapshotOptions = {},
  ): Promise<Subscription> {
    return applySubscriptionSnapshot(em, snapshot, options);
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
}

function checkQuantity(quantity: number): number {
  if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) {
    throw BillingError.badInput(`quantity must be a whole number from 1 to ${MAX_QUANTITY}`, 'quantity');
  }
  return quantity;
}
