import { BillingError, ErrorCode } from '../common/errors';
import { assertId } from '../common/ids';
import { Customer } from '../billing/customers/customer.entity';
import { CustomerService } from '../billing/customers/customer.service';
import type { AuthUser, GraphQLContext } from './context';

export function requireUser(ctx: GraphQLContext): AuthUser {
  if (!ctx.user) throw new BillingError(ErrorCode.UNAUTHENTICATED, 'Sign in: send Authorization: Bearer <token>');
  return ctx.user;
}

export function requireBilling(ctx: GraphQLContext): void {
  if (!ctx.config.billingEnabled || !ctx.gateway.enabled) throw new BillingError(ErrorCode.BILLING_DISABLED, 'Billing is disabled');
}

/**
 * The customer a request acts for: the caller's own, or (admins only) the one named by
 * `customerId`. Someone else's id from a non-admin is FORBIDDEN.
 */
export async function actingCustomer(ctx: GraphQLContext, customerId?: string | null): Promise<Customer | null> {
  const user = requireUser(ctx);
  if (customerId) {
    if (!user.isAdmin) throw new BillingError(ErrorCode.FORBIDDEN, 'Only admins may act for another customer');
    assertId(customerId, 'customerId');
    const customer = await ctx.em.findOne(Customer, { id: customerId });
    if (!customer) throw BillingError.notFound('Customer');
    return customer;
  }
  return new CustomerService(ctx.em, ctx.gateway).findByUserId(user.userId);
}
