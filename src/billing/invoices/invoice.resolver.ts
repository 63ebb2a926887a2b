import { Arg, Authorized, Ctx, Int, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context';
import { ActingCustomer } from '../../graphql/authorization';
import type { Customer } from '../customers/customer.entity';
import { listCost } from '../../security/field-costs';
import type { InvoiceView } from './invoice.view';
import { DEFAULT_PAGE_SIZE, encodeCursor, InvoiceService } from './invoice.service';
import { InvoiceConnection, InvoiceEdge, InvoiceStatus, InvoiceType, PageInfo } from './invoice.type';

export function toInvoiceType(row: InvoiceView): InvoiceType {
  return Object.assign(new InvoiceType(), {
    id: row.id,
    number: row.number ?? null,
    status: row.status as InvoiceStatus,
    currency: row.currency,
    amountDue: row.amountDue,
    amountPaid: row.amountPaid,
    amountRemaining: row.amountRemaining,
    total: row.total,
    hostedInvoiceUrl: row.hostedInvoiceUrl ?? null,
    periodStart: row.periodStart ?? null,
    periodEnd: row.periodEnd ?? null,
    paidAt: row.paidAt ?? null,
    attemptCount: row.attemptCount,
    nextPaymentAttempt: row.nextPaymentAttempt ?? null,
    createdAt: row.stripeCreatedAt,
  });
}

@Resolver(() => InvoiceType)
export class InvoiceResolver {
  @Query(() => InvoiceConnection, {
    description: "The caller's invoices, newest first, from our tables (kept current by Stripe's invoice events and the mutations that create invoices).",
    // Read from the table only: every page costs its `first` items.
    complexity: listCost,
  })
  @Authorized()
  async invoices(
    @Ctx() ctx: GraphQLContext,
    @Arg('first', () => Int, { defaultValue: DEFAULT_PAGE_SIZE, description: '1 to 100.' }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'The endCursor of the previous page.' }) after: string | null | undefined,
    @ActingCustomer({ arg: true }) customer: Customer | null,
  ): Promise<InvoiceConnection> {
    const page = await new InvoiceService(ctx.em).list(customer, first, after);
    return Object.assign(new InvoiceConnection(), {
      edges: page.rows.map((row) => Object.assign(new InvoiceEdge(), { cursor: encodeCursor(row), node: toInvoiceType(row) })),
      pageInfo: Object.assign(new PageInfo(), { hasNextPage: page.hasNextPage, endCursor: page.endCursor }),
    });
  }
}
