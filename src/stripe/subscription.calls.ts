import type Stripe from 'stripe';
import { BillingError, ErrorCode } from '../common/errors';
import { PAGINATION_LIMIT } from './stripe-call-policy';
import type { CallPolicy } from './stripe-call-policy';
import type { CancelSubscriptionInput, CreatedSubscription, CreateSubscriptionInput, SubscriptionSnapshot, UpdateSubscriptionInput } from './stripe.gateway';
import { latestInvoiceSnapshot, subscriptionClientSecret, toSubscriptionSnapshot } from './stripe.mappers';

/**
 * The Stripe calls of a subscription's life: create, read, change quantity or price, cancel,
 * resume, list. Plan changes across items and schedules are in subscription-change.calls.ts.
 */
export class SubscriptionCalls {
  constructor(
    private readonly stripe: Stripe,
    private readonly call: CallPolicy,
  ) {}

  async createSubscription(input: CreateSubscriptionInput): Promise<CreatedSubscription> {
    if (input.items.length === 0) throw BillingError.badInput('A subscription needs at least one price', 'items');
    const paymentBehavior = input.paymentBehavior ?? 'default_incomplete';
    const subscription = await this.call('subscriptions.create', () =>
      this.stripe.subscriptions.create(
        {
          customer: input.customerId,
          items: input.items.map((item) => ({
            price: item.priceId,
            ...(item.quantity !== undefined ? { quantity: item.quantity } : {}),
          })),
          payment_behavior: paymentBehavior,
          // The card confirmed for the first invoice becomes the default for renewals.
          ...(paymentBehavior === 'default_incomplete'
            ? { payment_settings: { save_default_payment_method: 'on_subscription' as const } }
            : {}),
          ...(input.trialDays ? { trial_period_days: input.trialDays } : {}),
          ...(input.metadata ? { metadata: input.metadata } : {}),
          expand: ['latest_invoice.confirmation_secret'],
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return { subscription: toSubscriptionSnapshot(subscription), clientSecret: subscriptionClientSecret(subscription), latestInvoice: latestInvoiceSnapshot(subscription) };
  }

  async retrieveSubscription(id: string): Promise<SubscriptionSnapshot> {
    const subscription = await this.call('subscriptions.retrieve', () => this.stripe.subscriptions.retrieve(id), {
      resource: 'Subscription',
    });
    return toSubscriptionSnapshot(subscription);
  }

  async updateSubscription(input: UpdateSubscriptionInput): Promise<SubscriptionSnapshot> {
    if (input.priceId === undefined && input.quantity === undefined) {
      throw BillingError.badInput('Nothing to change: give a price or a quantity');
    }
    const subscription = await this.call(
      'subscriptions.update',
      () =>
        this.stripe.subscriptions.update(
          input.id,
          {
            items: [
              {
                id: input.itemId,
                ...(input.priceId !== undefined ? { price: input.priceId } : {}),
                ...(input.quantity !== undefined ? { quantity: input.quantity } : {}),
              },
            ],
            ...(input.prorationBehavior ? { proration_behavior: input.prorationBehavior } : {}),
          },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Subscription' },
    );
    return toSubscriptionSnapshot(subscription);
  }

  async cancelSubscription(input: CancelSubscriptionInput): Promise<SubscriptionSnapshot> {
    if (input.atPeriodEnd) {
      const subscription = await this.call(
        'subscriptions.update',
        () =>
          this.stripe.subscriptions.update(
            input.id,
            { cancel_at_period_end: true },
            { idempotencyKey: input.idempotencyKey },
          ),
        { resource: 'Subscription' },
      );
      return toSubscriptionSnapshot(subscription);
    }
    // DELETE requests take no idempotency key at Stripe; cancelling twice is made harmless by
    // answering with the already canceled subscription instead.
    try {
      const subscription = await this.call('subscriptions.cancel', () => this.stripe.subscriptions.cancel(input.id), {
        resource: 'Subscription',
      });
      return toSubscriptionSnapshot(subscription);
    } catch (error) {
      // Stripe answers a DELETE on a canceled subscription with an error (resource_missing,
      // although the subscription can still be read); a retried cancel must not fail for it.
      const rejected =
        error instanceof BillingError &&
        (error.code === ErrorCode.NOT_FOUND || error.details.statusCode === 400);
      if (rejected) {
        const current = await this.retrieveSubscription(input.id);
        if (current.status === 'canceled') return current;
      }
      throw error;
    }
  }

  async resumeSubscription(input: { id: string; idempotencyKey: string }): Promise<SubscriptionSnapshot> {
    // Stripe's POST /v1/subscriptions/:id/resume is for *paused* subscriptions. Undoing a
    // scheduled cancellation is clearing cancel_at_period_end.
    const subscription = await this.call(
      'subscriptions.update',
      () =>
        this.stripe.subscriptions.update(
          input.id,
          { cancel_at_period_end: false },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Subscription' },
    );
    return toSubscriptionSnapshot(subscription);
  }

  async listSubscriptions(customerId: string): Promise<SubscriptionSnapshot[]> {
    const subscriptions = await this.call(
      'subscriptions.list',
      () =>
        this.stripe.subscriptions
          .list({ customer: customerId, status: 'all', limit: 100 })
          .autoPagingToArray({ limit: PAGINATION_LIMIT }),
      { resource: 'Customer' },
    );
    return subscriptions.map(toSubscriptionSnapshot);
  }
}
