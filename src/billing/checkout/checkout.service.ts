import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { BillingError } from '../../common/errors';
import { assertId, isId } from '../../common/ids';
import type { AuthUser } from '../../auth/auth-user';
import { idempotencyKey } from '../../stripe/idempotency';
import type { CheckoutSessionSnapshot, StripeGateway, SubscriptionSnapshot } from '../../stripe/stripe.gateway';
import { Price } from '../catalog/price.entity';
import { Product } from '../catalog/product.entity';
import { Customer } from '../customers/customer.entity';
import { CustomerService } from '../customers/customer.service';
import { Subscription } from '../subscriptions/subscription.entity';
import {
  alreadySubscribed,
  applySubscriptionSnapshot,
  assertNoLiveSubscription,
  hasLiveSubscription,
  lockCustomerSubscriptions,
  MAX_QUANTITY,
  meteredPricesOfPlan,
} from '../subscriptions/subscription-rows';
import { CheckoutSession } from './checkout-session.entity';
import { checkRedirectUrl, type RedirectUrlPolicy } from './redirect-url';

export interface CreateCheckoutSessionInput {
  productId?: string | null;
  priceId?: string | null;
  quantity?: number | null;
  successUrl: string;
  cancelUrl: string;
}

export interface CheckoutServiceOptions {
  redirect: RedirectUrlPolicy;
}

export class CheckoutService {
  private readonly customers: CustomerService;

  constructor(
    private readonly em: EntityManager,
    private readonly gateway: StripeGateway,
    // Without a policy every redirect URL is refused: only reads and syncs work (webhooks).
    private readonly options: CheckoutServiceOptions = { redirect: { allowedOrigins: [], allowLoopback: false } },
  ) {
    this.customers = new CustomerService(em, gateway);
  }

  // ---- reads --------------------------------------------------------------------------------

  /** One of `customer`'s sessions as stored; anyone else's answers NOT_FOUND. */
  async getOwnedOrThrow(customer: Customer | null, id: string): Promise<CheckoutSession> {
    assertId(id, 'id');
    const row = customer ? await this.em.findOne(CheckoutSession, { id, customer: customer.id }) : null;
    if (!row) throw BillingError.notFound('Checkout session');
    return row;
  }

  /**
   * One of `customer`'s sessions, brought up to date from Stripe while it is still open. The
   * customer usually lands on the success page before Stripe's webhook arrives; reading
   * Stripe here means that page already sees the completed session and its subscription.
   */
  async getSyncedOrThrow(customer: Customer | null, id: string): Promise<CheckoutSession> {
    const row = await this.getOwnedOrThrow(customer, id);
    if (row.status !== 'open' || !this.gateway.enabled) return row;
    const fetchedAt = new Date();
    const snapshot = await this.gateway.retrieveCheckoutSession(row.stripeSessionId);
    await this.em.transactional((tx) => this.applySnapshot(tx, snapshot, fetchedAt));
    return this.em.findOneOrFail(CheckoutSession, { id: row.id }, { refresh: true });
  }

  /** The subscription row a session created, once it is in our table. */
  findSubscription(customerId: string, stripeSubscriptionId: string): Promise<Subscription | null> {
    return this.em.findOne(Subscription, { stripeSubscriptionId, customer: customerId });
  }

  // ---- writes -------------------------------------------------------------------------------

  async create(user: Pick<AuthUser, 'userId' | 'email'>, input: CreateCheckoutSessionInput): Promise<CheckoutSession> {
    const gateway = this.gateway;
    // Everything the caller sent is checked before anything is created in Stripe.
    const successUrl = checkRedirectUrl(input.successUrl, 'successUrl', this.options.redirect);
    const cancelUrl = checkRedirectUrl(input.cancelUrl, 'cancelUrl', this.options.redirect);
    const quantity = input.quantity ?? 1;
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) {
      throw BillingError.badInput(`quantity must be a whole number from 1 to ${MAX_QUANTITY}`, 'quantity');
    }
    const price = await this.resolvePrice(input);
    const mode = price.interval ? 'subscription' : 'payment';
    // A plan's metered prices ride along as extra line items, as in startSubscription, so usage
    // recorded on the resulting subscription is billed.
    const metered = mode === 'subscription' ? await meteredPricesOfPlan(this.em, price) : [];

    const customer = await this.customers.getOrCreateBillable(user);
    const open = (em: EntityManager) => this.open(em, gateway, { customer, user, price, mode, quantity, metered, successUrl, cancelUrl });
    if (mode === 'payment') return open(this.em);
    // One subscription per product: while this customer starts one (here or through
    // startSubscription) nothing else can, and an earlier Checkout session for the same product,
    // still open in another tab, is closed first. Two open sessions could both be paid.
    const created = await this.em.transactional(async (tx) => {
      await lockCustomerSubscriptions(tx, customer.id);
      await assertNoLiveSubscription(tx, customer.id, price.product.id);
      // One of them may have been paid meanwhile: it is recorded with its subscription
      // (committed), and this session is not created.
      if (await this.closeOpenSessions(tx, customer.id, price.product.id)) return null;
      return open(tx);
    });
    if (!created) throw alreadySubscribed();
    return created;
  }

  /**
   * Expires the customer's open subscription-mode sessions for `productId` in Stripe and records
   * what they are now: expired, or complete (paid before Stripe expired it, with its
   * subscription). Call in a transaction holding lockCustomerSubscriptions. Returns whether the
   * customer now has a live subscription to the product (from a session found paid).
   */
  async closeOpenSessions(tx: EntityManager, customerId: string, productId: string): Promise<boolean> {
    const rows = await tx.find(CheckoutSession, { customer: customerId, mode: 'subscription', status: 'open', price: { product: productId } });
    if (rows.length === 0) return false;
    const gateway = this.gateway;
    let completed = false;
    for (const row of rows) {
      const fetchedAt = new Date();
      const snapshot = await gateway.expireCheckoutSession({ id: row.stripeSessionId, idempotencyKey: idempotencyKey('checkout.expire', row.id) });
      completed ||= snapshot.status === 'complete';
      await this.applySnapshot(tx, snapshot, fetchedAt);
    }
    return completed && hasLiveSubscription(tx, customerId, productId);
  }

  /** Creates the session in Stripe and its row. */
  private async open(
    em: EntityManager,
    gateway: StripeGateway,
    o: {
      customer: Customer & { stripeCustomerId: string };
      user: Pick<AuthUser, 'userId'>;
      price: Price;
      mode: 'subscription' | 'payment';
      quantity: number;
      metered: Price[];
      successUrl: string;
      cancelUrl: string;
    },
  ): Promise<CheckoutSession> {
    // Our row id exists before the Stripe call: it is the idempotency key and the reference
    // Stripe carries back on the session (and on the subscription it creates).
    const id = randomUUID();
    const metadata = { tollgate_checkout_session_id: id, tollgate_customer_id: o.customer.id, tollgate_user_id: o.user.userId };
    const snapshot = await gateway.createCheckoutSession({
      customerId: o.customer.stripeCustomerId,
      mode: o.mode,
      priceId: o.price.stripePriceId!,
      quantity: o.quantity,
      meteredPriceIds: o.metered.map((m) => m.stripePriceId!),
      successUrl: o.successUrl,
      cancelUrl: o.cancelUrl,
      clientReferenceId: id,
      metadata,
      idempotencyKey: idempotencyKey('checkout.create', id),
    });
    const row = em.create(CheckoutSession, {
      id,
      customer: em.getReference(Customer, o.customer.id, { wrapped: true }),
      price: em.getReference(Price, o.price.id, { wrapped: true }),
      quantity: o.quantity,
      mode: o.mode,
      stripeSessionId: snapshot.id,
      url: snapshot.url,
      status: snapshot.status ?? 'open',
      paymentStatus: snapshot.paymentStatus,
      expiresAt: snapshot.expiresAt,
    });
    await em.flush();
    return row;
  }

  // ---- sync from Stripe -----------------------------------------------------------------------

  /**
   * Writes Stripe's view of a session into its row; for a completed subscription-mode session
   * also the subscription it created. Call inside a transaction. `fetchedAt` is when the
   * snapshot was read from Stripe (before the request), the version the subscription is dated
   * with. Sessions we did not create are ignored (null). A session only moves forward
   * (open to complete or expired), so an older snapshot never reopens it.
   */
  async applySnapshot(em: EntityManager, snapshot: CheckoutSessionSnapshot, fetchedAt: Date): Promise<CheckoutSession | null> {
    const found = await em.findOne(CheckoutSession, { stripeSessionId: snapshot.id });
    if (!found) return null;
    await lockCustomerSubscriptions(em, found.customer.id);
    const row = await em.findOneOrFail(CheckoutSession, { id: found.id }, { refresh: true });
    const status = snapshot.status ?? row.status;
    if (row.status !== 'open' && status === 'open') return row;

    if (status === 'complete' && row.mode === 'subscription') {
      const subscription = await this.subscriptionOf(snapshot);
      if (subscription) {
        const customer = await em.findOneOrFail(Customer, { id: row.customer.id });
        await applySubscriptionSnapshot(em, subscription, { customer, syncedAt: fetchedAt });
      }
    }

    row.status = status;
    row.paymentStatus = snapshot.paymentStatus ?? row.paymentStatus;
    row.url = snapshot.url;
    row.expiresAt = snapshot.expiresAt ?? row.expiresAt;
    row.stripeSubscriptionId = snapshot.subscriptionId ?? row.stripeSubscriptionId;
    if (status === 'complete' && !row.completedAt) row.completedAt = new Date();
    await em.flush();
    return row;
  }

  // ---- helpers ------------------------------------------------------------------------------

  private async subscriptionOf(snapshot: CheckoutSessionSnapshot): Promise<SubscriptionSnapshot | null> {
    if (snapshot.subscription) return snapshot.subscription;
    if (!snapshot.subscriptionId) return null;
    return this.gateway.retrieveSubscription(snapshot.subscriptionId);
  }

  /**
   * The price to sell: `priceId` as given, or for `productId` its monthly licensed price, else
   * its one-time price when it has exactly one.
   */
  private async resolvePrice(input: CreateCheckoutSessionInput): Promise<Price> {
    if (input.productId && input.priceId) throw BillingError.badInput('Give either productId or priceId, not both', 'productId');
    let price: Price | null;
    if (input.priceId) {
      if (!isId(input.priceId)) throw BillingError.badInput('priceId is not a valid id', 'priceId');
      price = await this.em.findOne(Price, { id: input.priceId });
      if (!price) throw BillingError.badInput('Unknown priceId', 'priceId');
    } else if (input.productId) {
      if (!isId(input.productId)) throw BillingError.badInput('productId is not a valid id', 'productId');
      const product = await this.em.findOne(Product, { id: input.productId, active: true });
      if (!product) throw BillingError.badInput('Unknown productId', 'productId');
      price = await this.em.findOne(Price, { product: product.id, active: true, usageType: 'licensed', interval: 'month' });
      if (!price) {
        const oneTime = await this.em.find(Price, { product: product.id, active: true, interval: null });
        if (oneTime.length > 1) throw BillingError.badInput('This product has several one-time prices; give a priceId', 'productId');
        price = oneTime[0] ?? null;
      }
      if (!price) throw BillingError.badInput('This product has no monthly or one-time price; give a priceId', 'productId');
    } else {
      throw BillingError.badInput('Give a productId or a priceId', 'productId');
    }
    if (!price.active) throw BillingError.badInput('This price is no longer available', 'priceId');
    if (price.usageType === 'metered') throw BillingError.badInput('A metered price comes with its plan; choose the plan', 'priceId');
    if (!price.stripePriceId) throw BillingError.badInput('This price is not available in Stripe yet', 'priceId');
    const product = await this.em.findOne(Product, { id: price.product.id });
    if (!product?.active) throw BillingError.badInput('This product is no longer available', 'priceId');
    return price;
  }
}
