import { Customer } from '../../billing/customers/customer.entity';
import { InvoiceService } from '../../billing/invoices/invoice.service';
import type { InvoiceSnapshot } from '../../stripe/stripe.gateway';
import { toObjectSnapshot } from '../../stripe/stripe.mappers';
import { refetchOrEventCopy, type EventHandler } from './types';

/**
 * `invoice.paid|payment_succeeded|payment_failed|finalized|payment_action_required|voided|marked_uncollectible`: upserts the
 * invoice row from Stripe's current invoice, dated by when it was read, so whatever order the
 * events arrive in the row ends at Stripe's state (an invoice needing the customer's action shows
 * it through its status and `latestInvoice`). Invoices of Stripe customers we do not know are
 * ignored.
 *
 * Stripe's invoice does not say whether its last attempt failed or waits for the customer to
 * authenticate (that is on the PaymentIntent): `invoice.payment_action_required` does, and the
 * row keeps the attempt it was about (`action_required_attempt`) for the billing alerts.
 */
export const invoiceHandler: EventHandler<InvoiceSnapshot> = {
  types: [
    'invoice.paid',
    'invoice.payment_succeeded',
    'invoice.payment_failed',
    'invoice.finalized',
    'invoice.payment_action_required',
    // An invoice that will not be paid any more: latestInvoice and the alerts stop asking for it.
    'invoice.voided',
    'invoice.marked_uncollectible',
  ],

  async refetch(event, { gateway, em }) {
    const mapped = toObjectSnapshot(event.object);
    if (mapped.kind !== 'invoice' || !mapped.invoice.customerId) return null;
    if (!(await em.count(Customer, { stripeCustomerId: mapped.invoice.customerId }))) return null;
    return refetchOrEventCopy(event, mapped.invoice, () => gateway.retrieveInvoice(mapped.invoice.id));
  },

  async apply(event, fetched, { em, log }) {
    if (!fetched?.snapshot.customerId) return 'ignored';
    const customer = await em.findOne(Customer, { stripeCustomerId: fetched.snapshot.customerId });
    if (!customer) {
      log.debug({ eventId: event.id, customer: fetched.snapshot.customerId }, 'invoice event for an unknown customer');
      return 'ignored';
    }
    await new InvoiceService(em).applySnapshot(em, fetched.snapshot, fetched.syncedAt, customer, event.type === 'invoice.payment_action_required');
    return 'processed';
  },
};

