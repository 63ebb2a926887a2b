import { BillingError, ErrorCode } from '../../common/errors';
import { Customer } from '../../billing/customers/customer.entity';
import { SubscriptionChangeService } from '../../billing/subscriptions/subscription-change.service';
import { lockCustomerSubscriptions } from '../../billing/subscriptions/subscription.service';
import type { SubscriptionScheduleSnapshot } from '../../stripe/stripe.gateway';
import { toScheduleSnapshot } from '../../stripe/subscription-change.mappers';
import { refetchOrEventCopy, type EventHandler } from './types';

interface ScheduleState {
  schedule: SubscriptionScheduleSnapshot;
  /** The schedule the subscription follows now (null: none), read after the schedule. */
  attached: string | null;
}

/**
 * `subscription_schedule.*`: keeps the subscription's `pendingChange` in step with its schedule
 * (ours, or one made in the billing portal or the Dashboard). The schedule and the subscription
 * are read from Stripe outside any transaction, so whatever order the events arrive in, the row
 * ends at the schedule's current state: an open schedule shows its next phase, a released,
 * canceled or completed one clears what it held.
 */
export const subscriptionScheduleHandler: EventHandler<ScheduleState> = {
  types: [
    'subscription_schedule.created',
    'subscription_schedule.updated',
    'subscription_schedule.released',
    'subscription_schedule.canceled',
    'subscription_schedule.completed',
    'subscription_schedule.aborted',
    'subscription_schedule.expiring',
  ],

  async refetch(event, { gateway, em }) {
    if (event.object.object !== 'subscription_schedule') return null;
    const fromEvent = toScheduleSnapshot(event.object as never);
    if (!(await em.count(Customer, { stripeCustomerId: fromEvent.customerId }))) return null;
    const fetched = await refetchOrEventCopy(event, fromEvent, () => gateway.retrieveSchedule(fromEvent.id));
    let attached: string | null = null;
    if (fetched.snapshot.subscriptionId) {
      try {
        // Which schedule the subscription follows now decides, not the order the events came in.
        attached = (await gateway.retrieveSubscription(fetched.snapshot.subscriptionId)).scheduleId ?? null;
      } catch (error) {
        if (!(error instanceof BillingError && error.code === ErrorCode.NOT_FOUND)) throw error;
      }
    }
    return { snapshot: { schedule: fetched.snapshot, attached }, syncedAt: fetched.syncedAt, current: fetched.current };
  },

  async apply(event, fetched, { em, gateway, log }) {
    if (!fetched?.snapshot.schedule.subscriptionId) return 'ignored';
    const customer = await em.findOne(Customer, { stripeCustomerId: fetched.snapshot.schedule.customerId });
    if (!customer) {
      log.debug({ eventId: event.id }, 'subscription schedule event for an unknown customer');
      return 'ignored';
    }
    // Plan changes hold this lock while they create, update or release a schedule.
    await lockCustomerSubscriptions(em, customer.id);
    const row = await new SubscriptionChangeService(em, gateway, { priceMap: {} }).applySchedule(em, fetched.snapshot.schedule, fetched.snapshot.attached);
    return row ? 'processed' : 'ignored';
  },
};
