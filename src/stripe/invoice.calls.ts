import type Stripe from 'stripe';
import type { CallPolicy } from './stripe-call-policy';
import type { InvoiceSnapshot, ListInvoicesInput, Page } from './stripe.gateway';
import { toInvoiceSnapshot } from './stripe.mappers';

/**
 * The Stripe calls of invoices.
 */
export class InvoiceCalls {
  constructor(
    private readonly stripe: Stripe,
    private readonly call: CallPolicy,
  ) {}

  async listInvoices(input: ListInvoicesInput): Promise<Page<InvoiceSnapshot>> {
    const limit = Math.min(Math.max(Math.trunc(input.limit ?? 10), 1), 100);
    const page = await this.call(
      'invoices.list',
      () =>
        this.stripe.invoices.list({
          customer: input.customerId,
          limit,
          ...(input.startingAfter ? { starting_after: input.startingAfter } : {}),
        }),
      { resource: 'Invoice' },
    );
    const data = page.data.map(toInvoiceSnapshot);
    return { data, hasMore: page.has_more, nextCursor: page.has_more && data.length ? data[data.length - 1].id : null };
  }

  async retrieveInvoice(id: string): Promise<InvoiceSnapshot> {
    const invoice = await this.call('invoices.retrieve', () => this.stripe.invoices.retrieve(id), {
      resource: 'Invoice',
    });
    return toInvoiceSnapshot(invoice);
  }
}
