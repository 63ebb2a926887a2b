import { Arg, Ctx, ID, Int, Query, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context';
import { actingCustomer } from '../../graphql/guards';
import type { Invoice } from './invoice.entity';
import { DEFAULT_PAGE_SIZE, encodeCursor, InvoiceService } from './invoice.service';
import { InvoiceConnection, InvoiceEdge, InvoiceStatus, InvoiceType, PageInfo } from './invoice.type';

export function toInvoiceType(row: Invoice): InvoiceType {
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
    createdAt: row.stripeCreatedAt,
  });
}

@Resolver(() => InvoiceType)
export class InvoiceResolver {
  @Query(() => InvoiceConnection, { description: "The caller's invoices, newest first." })
  async invoices(
    @Ctx() ctx: GraphQLContext,
    @Arg('first', () => Int, { defaultValue: DEFAULT_PAGE_SIZE, description: '1 to 100.' }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'The endCursor of the previous page.' }) after?: string | null,
    @Arg('customerId', () => ID, { nullable: true, description: 'Admins only.' }) customerId?: string | null,
  ): Promise<InvoiceConnection> {
    const customer = await actingCustomer(ctx, customerId);
    const page = await new InvoiceService(ctx.em, ctx.gateway, ctx.log).list(customer, first, after);
    return Object.assign(new InvoiceConnection(), {
      edges: page.rows.map((row) => Object.assign(new InvoiceEdge(), { cursor: encodeCursor(row), node: toInvoiceType(row) })),
      pageInfo: Object.assign(new PageInfo(), { hasNextPage: page.hasNextPage, endCursor: page.endCursor }),
    });
  }
}
