import type Stripe from 'stripe';
import type { CallPolicy } from './stripe-call-policy';
import type {
  ChangedSubscription,
  ChangeSubscriptionItemsInput,
  InvoicePreviewSnapshot,
  PreviewSubscriptionChangeInput,
  SubscriptionItemChange,
  SubscriptionScheduleSnapshot,
  UpdateSchedulePhasesInput,
} from './stripe.gateway';
import { latestInvoiceSnapshot, toSubscriptionSnapshot } from './stripe.mappers';
import { changeClientSecret, toInvoicePreviewSnapshot, toScheduleSnapshot } from './subscription-change.mappers';


function unix(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

function itemParams(items: SubscriptionItemChange[]): Stripe.SubscriptionUpdateParams.Item[] {
  return items.map((item) => ({
    ...(item.itemId ? { id: item.itemId } : {}),
    ...(item.deleted ? { deleted: true } : {}),
    ...(item.priceId && !item.deleted ? { price: item.priceId } : {}),
    ...(item.quantity !== undefined && !item.deleted ? { quantity: item.quantity } : {}),
  }));
}

/**
 * The Stripe calls of plan changes (subscription item updates, schedules, invoice previews),
 * used by the SDK gateway with its client and call policy.
 */
export class SubscriptionChangeCalls {
  constructor(
    private readonly stripe: Stripe,
    private readonly call: CallPolicy,
  ) {}

  async changeSubscriptionItems(input: ChangeSubscriptionItemsInput): Promise<ChangedSubscription> {
    const subscription = await this.call(
      'subscriptions.update',
      () =>
        this.stripe.subscriptions.update(
          input.id,
          {
            items: itemParams(input.items),
            proration_behavior: input.prorationBehavior,
            ...(input.prorationDate ? { proration_date: unix(input.prorationDate) } : {}),
            payment_behavior: input.paymentBehavior,
            expand: ['latest_invoice.confirmation_secret'],
          },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Subscription' },
    );
    return { subscription: toSubscriptionSnapshot(subscription), clientSecret: changeClientSecret(subscription), latestInvoice: latestInvoiceSnapshot(subscription) };
  }

  async previewSubscriptionInvoice(input: PreviewSubscriptionChangeInput): Promise<InvoicePreviewSnapshot> {
    const details: Stripe.InvoiceCreatePreviewParams.SubscriptionDetails = {
      ...(input.items ? { items: itemParams(input.items) } : {}),
      ...(input.prorationBehavior ? { proration_behavior: input.prorationBehavior } : {}),
      ...(input.prorationDate ? { proration_date: unix(input.prorationDate) } : {}),
    };
    const invoice = await this.call(
      'invoices.createPreview',
      () =>
        this.stripe.invoices.createPreview({
          customer: input.customerId,
          subscription: input.subscriptionId,
          ...(Object.keys(details).length ? { subscription_details: details } : {}),
          ...(input.previewMode ? { preview_mode: input.previewMode } : {}),
        }),
      { resource: 'Subscription' },
    );
    return toInvoicePreviewSnapshot(invoice);
  }

  async createScheduleFromSubscription(input: { subscriptionId: string; idempotencyKey: string }): Promise<SubscriptionScheduleSnapshot> {
    const schedule = await this.call(
      'subscriptionSchedules.create',
      () => this.stripe.subscriptionSchedules.create({ from_subscription: input.subscriptionId }, { idempotencyKey: input.idempotencyKey }),
      { resource: 'Subscription' },
    );
    return toScheduleSnapshot(schedule);
  }

  async updateSchedulePhases(input: UpdateSchedulePhasesInput): Promise<SubscriptionScheduleSnapshot> {
    const schedule = await this.call(
      'subscriptionSchedules.update',
      () =>
        this.stripe.subscriptionSchedules.update(
          input.id,
          {
            phases: input.phases.map((phase) => ({
              items: phase.items.map((item) => ({ price: item.priceId, ...(item.quantity !== undefined ? { quantity: item.quantity } : {}) })),
              start_date: unix(phase.startDate),
              ...(phase.endDate ? { end_date: unix(phase.endDate) } : {}),
              ...(phase.duration ? { duration: { interval: phase.duration.interval, interval_count: phase.duration.intervalCount } } : {}),
              // A phase boundary falls on a period end, where nothing is left to prorate.
              proration_behavior: 'none' as const,
            })),
            end_behavior: input.endBehavior,
          },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Subscription schedule' },
    );
    return toScheduleSnapshot(schedule);
  }

  async releaseSchedule(input: { id: string; idempotencyKey: string }): Promise<SubscriptionScheduleSnapshot> {
    const schedule = await this.call(
      'subscriptionSchedules.release',
      () => this.stripe.subscriptionSchedules.release(input.id, {}, { idempotencyKey: input.idempotencyKey }),
      { resource: 'Subscription schedule' },
    );
    return toScheduleSnapshot(schedule);
  }

  async retrieveSchedule(id: string): Promise<SubscriptionScheduleSnapshot> {
    const schedule = await this.call('subscriptionSchedules.retrieve', () => this.stripe.subscriptionSchedules.retrieve(id), {
      resource: 'Subscription schedule',
    });
    return toScheduleSnapshot(schedule);
  }
}
