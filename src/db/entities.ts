import { Meter } from '../billing/catalog/meter.entity';
import { Price } from '../billing/catalog/price.entity';
import { Product } from '../billing/catalog/product.entity';
import { CheckoutSession } from '../billing/checkout/checkout-session.entity';
import { Customer } from '../billing/customers/customer.entity';
import { TestClock } from '../billing/customers/test-clock.entity';
import { Entitlement } from '../billing/entitlements/entitlement.entity';
import { PlanFeature } from '../billing/entitlements/plan-feature.entity';
import { Invoice } from '../billing/invoices/invoice.entity';
import { Subscription } from '../billing/subscriptions/subscription.entity';
import { UsageEvent } from '../billing/usage/usage-event.entity';
import { UsageHourly } from '../billing/usage/usage-hourly.entity';
import { PlanLimit } from '../billing/usage/plan-limit.entity';
import { UsageLimitCounter } from '../billing/usage/usage-limit-counter.entity';
import { StripeEvent } from '../webhooks/stripe-event.entity';

/** Every entity, listed once: no folder scanning, so ts, js and jest all see the same set. */
export const entities = [Customer, Meter, Product, Price, Subscription, UsageEvent, UsageHourly, CheckoutSession, Invoice, StripeEvent, PlanFeature, Entitlement, PlanLimit, UsageLimitCounter, TestClock];
