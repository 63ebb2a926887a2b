import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AuthUser } from '../../auth/auth-user';
import { idempotencyKey } from '../../stripe/idempotency';
import type { BillingPortalSessionSnapshot, StripeGateway } from '../../stripe/stripe.gateway';
import { checkRedirectUrl, type RedirectUrlPolicy } from '../checkout/redirect-url';
import { CustomerService } from '../customers/customer.service';

export interface BillingPortalServiceOptions {
  redirect: RedirectUrlPolicy;
}

export class BillingPortalService {
  private readonly customers: CustomerService;

  constructor(
    em: EntityManager,
    private readonly gateway: StripeGateway,
    private readonly options: BillingPortalServiceOptions,
  ) {
    this.customers = new CustomerService(em, gateway);
  }

  /** A portal session for the user's Stripe customer (created on first use), returning to `returnUrl`. */
  async create(user: Pick<AuthUser, 'userId' | 'email'>, returnUrl: string): Promise<BillingPortalSessionSnapshot> {
    const checked = checkRedirectUrl(returnUrl, 'returnUrl', this.options.redirect);
    const customer = await this.customers.getOrCreateBillable(user);
    // Portal sessions are single-use and nothing of ours is created, so each call is a new
    // request; the key still keeps the SDK's own network retries to one session.
    return this.gateway.createBillingPortalSession({
      customerId: customer.stripeCustomerId,
      returnUrl: checked,
      idempotencyKey: idempotencyKey('billing_portal.create', customer.id, randomUUID()),
    });
  }
}
