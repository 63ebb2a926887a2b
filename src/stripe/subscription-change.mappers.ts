import type Stripe from 'stripe';
import type {
  InvoicePreviewSnapshot,
  ScheduleStatus,
  SubscriptionScheduleSnapshot,
} from './stripe.gateway';
import { fromUnix, idOf } from './stripe.mappers';

/*
 * Pure mappers for plan changes: subscription schedules, invoice previews and the client secret
 * of a change whose payment awaits the customer. Like stripe.mappers.ts they take ids or expanded
 * objects alike and read only what they need.
 */

const SCHEDULE_STATUSES: readonly ScheduleStatus[] = ['not_started', 'active', 'completed', 'released', 'canceled'];

function minorUnits(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) ? value : 0;
}

export function toScheduleSnapshot(schedule: Stripe.SubscriptionSchedule): SubscriptionScheduleSnapshot {
  const status = SCHEDULE_STATUSES.includes(schedule.status as ScheduleStatus) ? (schedule.status as ScheduleStatus) : 'canceled';
  return {
    id: schedule.id,
    // A released schedule names its former subscription in released_subscription.
    subscriptionId: idOf(schedule.subscription) ?? idOf(schedule.released_subscription),
    customerId: idOf(schedule.customer) ?? '',
    status,
    endBehavior: schedule.end_behavior,
    currentPhase: schedule.current_phase
      ? { startDate: fromUnix(schedule.current_phase.start_date) ?? new Date(0), endDate: fromUnix(schedule.current_phase.end_date) }
      : null,
    phases: (schedule.phases ?? []).map((phase) => ({
      startDate: fromUnix(phase.start_date) ?? new Date(0),
      endDate: fromUnix(phase.end_date),
      items: (phase.items ?? []).map((item) => ({
        priceId: idOf(item.price) ?? '',
        quantity: typeof item.quantity === 'number' ? item.quantity : null,
      })),
    })),
    createdAt: fromUnix(schedule.created),
  };
}

export function toInvoicePreviewSnapshot(invoice: Stripe.Invoice): InvoicePreviewSnapshot {
  return {
    billingReason: invoice.billing_reason ?? null,
    currency: (invoice.currency ?? '').toLowerCase(),
    amountDue: minorUnits(invoice.amount_due),
    total: minorUnits(invoice.total),
    periodStart: fromUnix(invoice.period_start),
    periodEnd: fromUnix(invoice.period_end),
    lines: (invoice.lines?.data ?? []).map((line) => ({
      description: line.description ?? null,
      amount: minorUnits(line.amount),
      quantity: typeof line.quantity === 'number' ? line.quantity : null,
      proration: line.parent?.subscription_item_details?.proration === true || line.parent?.invoice_item_details?.proration === true,
      priceId: idOf(line.pricing?.price_details?.price),
      periodStart: fromUnix(line.period?.start),
      periodEnd: fromUnix(line.period?.end),
    })),
  };
}

/**
 * The client secret of the invoice a change created, while the customer still has to act on
 * it: a pending update waiting for payment, or a subscription the failed payment left past_due.
 */
export function changeClientSecret(subscription: Stripe.Subscription): string | null {
  const invoice = subscription.latest_invoice;
  if (!invoice || typeof invoice === 'string' || invoice.status !== 'open') return null;
  const waiting = subscription.pending_update != null || ['incomplete', 'past_due', 'unpaid'].includes(subscription.status);
  return waiting ? (invoice.confirmation_secret?.client_secret ?? null) : null;
}
