import type { NonEmptyArray } from 'type-graphql';
import { CatalogResolver } from '../billing/catalog/catalog.resolver';
import { CheckoutResolver } from '../billing/checkout/checkout.resolver';
import { EntitlementResolver } from '../billing/entitlements/entitlement.resolver';
import { UsageLimitResolver } from '../billing/usage/usage-limit.resolver';
import { InvoiceResolver } from '../billing/invoices/invoice.resolver';
import { BillingPortalResolver } from '../billing/portal/billing-portal.resolver';
import { SubscriptionChangeResolver } from '../billing/subscriptions/subscription-change.resolver';
import { SubscriptionResolver, ViewerResolver } from '../billing/subscriptions/subscription.resolver';
import { UsageResolver } from '../billing/usage/usage.resolver';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export const resolvers: NonEmptyArray<Function> = [CatalogResolver, SubscriptionResolver, ViewerResolver, CheckoutResolver, BillingPortalResolver, InvoiceResolver, UsageResolver, EntitlementResolver, SubscriptionChangeResolver, UsageLimitResolver];
