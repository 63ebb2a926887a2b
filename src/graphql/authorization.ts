import { createMethodMiddlewareDecorator, createParameterDecorator, ID, type AuthChecker } from 'type-graphql';
import { BillingError, ErrorCode } from '../common/errors';
import type { Customer } from '../billing/customers/customer.entity';
import type { AuthUser, GraphQLContext } from './context';
import { actingCustomer, requireBilling, requireUser } from './guards';

/** The one role `@Authorized('admin')` names. */
export const ADMIN = 'admin';

/**
 * Decides `@Authorized()`: any signed-in caller passes; `@Authorized('admin')` needs an admin.
 * It throws the project's own errors so refusals keep their UNAUTHENTICATED / FORBIDDEN codes.
 */
export const authChecker: AuthChecker<GraphQLContext> = ({ context }, roles) => {
  const user = requireUser(context);
  if (roles.includes(ADMIN) && !user.isAdmin) throw new BillingError(ErrorCode.FORBIDDEN, 'Only admins may do this');
  return true;
};

/** The field answers BILLING_DISABLED unless billing is on and a gateway is configured. */
export function RequiresBilling(): MethodDecorator {
  return createMethodMiddlewareDecorator<GraphQLContext>(({ context }, next) => {
    requireBilling(context);
    return next();
  });
}

/** The signed-in caller (UNAUTHENTICATED without one). */
export function CurrentUser() {
  return createParameterDecorator<GraphQLContext>(({ context }) => requireUser(context));
}

type CustomerIdArgs = { customerId?: string | null; input?: { customerId?: string | null } | null };

function namedCustomerId(args: CustomerIdArgs): string | null {
  return args.customerId ?? args.input?.customerId ?? null;
}

/** Declares the field's `customerId: ID` argument ("Admins only."). */
const CUSTOMER_ID_ARG = { name: 'customerId', typeFunc: () => ID, options: { nullable: true, description: 'Admins only.' } };

/**
 * The customer the request acts for: the caller's own, or (admins only) the one named by the
 * `customerId` argument or `input.customerId`. A non-admin naming one is FORBIDDEN; an unknown
 * one is NOT_FOUND. With `{ arg: true }` the decorated parameter also declares `customerId`.
 */
export function ActingCustomer(options: { arg?: boolean } = {}) {
  return createParameterDecorator<GraphQLContext>(
    ({ context, args }) => actingCustomer(context, namedCustomerId(args as CustomerIdArgs)),
    options.arg ? { arg: CUSTOMER_ID_ARG } : {},
  );
}

/**
 * Who the request acts as: the caller, or (admins only) the user of the customer named by
 * `customerId` / `input.customerId`, for services that take a user and find or create its customer.
 */
export function ActingUser(options: { arg?: boolean } = {}) {
  return createParameterDecorator<GraphQLContext>(async ({ context, args }): Promise<AuthUser> => {
    const caller = requireUser(context);
    const customerId = namedCustomerId(args as CustomerIdArgs);
    if (!customerId) return caller;
    const customer = (await actingCustomer(context, customerId)) as Customer;
    return { userId: customer.userId, email: customer.email ?? undefined, roles: [], isAdmin: false };
  }, options.arg ? { arg: CUSTOMER_ID_ARG } : {});
}

/** For reads with a fast path for the caller's own data: the customer is loaded only on demand. */
export interface CustomerScope {
  user: AuthUser;
  /** The customer an admin named, or null when the caller acts for itself. */
  customerId: string | null;
  /** The acting customer, checked and loaded as `@ActingCustomer()` does. */
  customer(): Promise<Customer | null>;
}

/** Like `@ActingCustomer()`, but hands the resolver a `CustomerScope` that loads lazily. */
export function ActingScope(options: { arg?: boolean } = {}) {
  return createParameterDecorator<GraphQLContext>(({ context, args }): CustomerScope => {
    const user = requireUser(context);
    const customerId = namedCustomerId(args as CustomerIdArgs);
    return { user, customerId, customer: () => actingCustomer(context, customerId) };
  }, options.arg ? { arg: CUSTOMER_ID_ARG } : {});
}
