import { BillingError, ErrorCode } from '../../common/errors';
import { Customer } from '../../billing/customers/customer.entity';
import { SubscriptionChangeService } from '../../billing/subscriptions/subscription-change.service';
import { lockCustomerSubscriptions } from '../../billing/subscriptions/subscription.service';
import type { SubscriptionScheduleSnapshot } from '../../stripe/stripe.gateway';
import { toScheduleSnapshot } from '../../stripe/subscription-change.mappers';
import { handleSubscriptionEvent } from './subscription.handler';
import type { EventHandler } from './types';

/**
 * `subscription_schedule.*`: keeps the subscription's `pendingChange` in step with its schedule
 * (ours, or one made in the billing portal or the Dashboard). Like the subscription handler it
 * refetches the schedule, so whatever order the events arrive in, the row ends at the
 * schedule's current state: an open schedule shows its next phase, a released, canceled or
 * completed one clears what it held.
 */
export const handleSubscriptionScheduleEvent: EventHandler = async (event, { em, gateway, log }) => {
  if (event.object.object !== 'subscription_schedule') return 'ignored';
  const fromEvent = toScheduleSnapshot(event.object as never);
  const customer = await em.findOne(Customer, { stripeCustomerId: fromEvent.customerId });
  if (!customer) {
    log.debug({ eventId: event.id, customer: fromEvent.customerId }, 'subscription schedule event for an unknown customer');
    return 'ignored';
  }
  // Plan changes hold this lock while they create, update or release a schedule.
  await lockCustomerSubscriptions(em, customer.id);
  let schedule: SubscriptionScheduleSnapshot = fromEvent;
  try {
    schedule = await gateway.retrieveSchedule(fromEvent.id);
  } catch (error) {
    if (!(error instanceof BillingError && error.code === ErrorCode.NOT_FOUND)) throw error;
  }
  if (!schedule.subscriptionId) return 'ignored';
  // Which schedule the subscription follows now decides, not the order the events came in.
  let attached: string | null = null;
  try {
    attached = (await gateway.retrieveSubscription(schedule.subscriptionId)).scheduleId ?? null;
  } catch (error) {
    if (!(error instanceof BillingError && error.code === ErrorCode.NOT_FOUND)) throw error;
  }
  const row = await new SubscriptionChangeService(em, gateway, { priceMap: {} }).applySchedule(em, schedule, attached);
  return row ? 'processed' : 'ignored';
};

/**
 * The event types of plan changes, for the webhook service's handler table: schedules, and
 * the subscription events of pending updates (applied or expired), which carry the new items.
 */
export const SUBSCRIPTION_SCHEDULE_HANDLERS: Record<string, EventHandler> = {
  'subscription_schedule.created': handleSubscriptionScheduleEvent,
  'subscription_schedule.updated': handleSubscriptionScheduleEvent,
  'subscription_schedule.released': handleSubscriptionScheduleEvent,
  'subscription_schedule.canceled': handleSubscriptionScheduleEvent,
  'subscription_schedule.completed': handleSubscriptionScheduleEvent,
  'subscription_schedule.aborted': handleSubscriptionScheduleEvent,
  'subscription_schedule.expiring': handleSubscriptionScheduleEvent,
  'customer.subscription.pending_update_applied': handleSubscriptionEvent,
  'customer.subscription.pending_update_expired': handleSubscriptionEvent,
};
