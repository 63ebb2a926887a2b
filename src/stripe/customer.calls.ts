import type Stripe from 'stripe';
import type { CallPolicy } from './stripe-call-policy';
import type { BillingPortalSessionSnapshot, CreateBillingPortalSessionInput, CreateCustomerInput, CustomerSnapshot } from './stripe.gateway';
import { toBillingPortalSessionSnapshot, toCustomerSnapshot, USER_ID_METADATA_KEY } from './stripe.mappers';

/**
 * The Stripe calls about customers: creating and reading them, and their billing portal sessions.
 */
export class CustomerCalls {
  constructor(
    private readonly stripe: Stripe,
    private readonly call: CallPolicy,
  ) {}

  async createCustomer(input: CreateCustomerInput): Promise<CustomerSnapshot> {
    const customer = await this.call('customers.create', () =>
      this.stripe.customers.create(
        {
          ...(input.email ? { email: input.email } : {}),
          ...(input.name ? { name: input.name } : {}),
          ...(input.testClockId ? { test_clock: input.testClockId } : {}),
          metadata: { [USER_ID_METADATA_KEY]: input.userId },
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toCustomerSnapshot(customer);
  }

  async retrieveCustomer(id: string): Promise<CustomerSnapshot> {
    const customer = await this.call('customers.retrieve', () => this.stripe.customers.retrieve(id), {
      resource: 'Customer',
    });
    return toCustomerSnapshot(customer);
  }


  async createBillingPortalSession(input: CreateBillingPortalSessionInput): Promise<BillingPortalSessionSnapshot> {
    const session = await this.call('billing_portal.sessions.create', () =>
      this.stripe.billingPortal.sessions.create(
        { customer: input.customerId, return_url: input.returnUrl },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toBillingPortalSessionSnapshot(session);
  }
}
