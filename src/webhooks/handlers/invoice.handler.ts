import { BillingError, ErrorCode } from '../../common/errors';
import { Customer } from '../../billing/customers/customer.entity';
import { InvoiceService } from '../../billing/invoices/invoice.service';
import type { InvoiceSnapshot } from '../../stripe/stripe.gateway';
import { toObjectSnapshot } from '../../stripe/stripe.mappers';
import type { EventHandler } from './types';

/**
 * `invoice.paid|payment_succeeded|payment_failed`: upserts the invoice row. The invoice is
 * refetched from Stripe and dated by when it was read, so whatever order the events arrive in
 * the row ends at Stripe's state; only when Stripe no longer has it is the event's own copy
 * applied, dated by the event, which never overwrites a newer version. Invoices of Stripe
 * customers we do not know are ignored.
 */
export const handleInvoiceEvent: EventHandler = async (event, { em, gateway, log }) => {
  const mapped = toObjectSnapshot(event.object);
  if (mapped.kind !== 'invoice' || !mapped.invoice.customerId) return 'ignored';
  const customer = await em.findOne(Customer, { stripeCustomerId: mapped.invoice.customerId });
  if (!customer) {
    log.debug({ eventId: event.id, customer: mapped.invoice.customerId }, 'invoice event for an unknown customer');
    return 'ignored';
  }

  let snapshot: InvoiceSnapshot = mapped.invoice;
  let syncedAt = event.createdAt;
  try {
    const startedAt = new Date();
    snapshot = await gateway.retrieveInvoice(mapped.invoice.id);
    syncedAt = startedAt;
  } catch (error) {
    if (!(error instanceof BillingError && error.code === ErrorCode.NOT_FOUND)) throw error;
  }
  await new InvoiceService(em, gateway, log).applySnapshot(em, snapshot, syncedAt, customer);
  return 'processed';
};
