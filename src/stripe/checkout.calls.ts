import type Stripe from 'stripe';
import { BillingError, ErrorCode } from '../common/errors';
import type { CallPolicy, StripeGatewayLogger } from './stripe-call-policy';
import { isStripeSdkError } from './stripe-errors';
import type { CheckoutSessionSnapshot, CreateCheckoutSessionInput } from './stripe.gateway';
import { toCheckoutSessionSnapshot } from './stripe.mappers';

/**
 * The Stripe calls of Checkout sessions.
 */
export class CheckoutCalls {
  constructor(
    private readonly stripe: Stripe,
    private readonly call: CallPolicy,
    private readonly logger: StripeGatewayLogger,
  ) {}

  async createCheckoutSession(input: CreateCheckoutSessionInput): Promise<CheckoutSessionSnapshot> {
    const metadata = input.metadata && Object.keys(input.metadata).length ? input.metadata : undefined;
    const session = await this.call('checkout.sessions.create', () =>
      this.stripe.checkout.sessions.create(
        {
          customer: input.customerId,
          mode: input.mode,
          // Metered line items take no quantity: Stripe rejects one.
          line_items: [{ price: input.priceId, quantity: input.quantity }, ...(input.meteredPriceIds ?? []).map((price) => ({ price }))],
          success_url: input.successUrl,
          cancel_url: input.cancelUrl,
          ...(input.clientReferenceId ? { client_reference_id: input.clientReferenceId } : {}),
          ...(metadata ? { metadata } : {}),
          ...(metadata && input.mode === 'subscription' ? { subscription_data: { metadata } } : {}),
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toCheckoutSessionSnapshot(session);
  }

  async retrieveCheckoutSession(id: string): Promise<CheckoutSessionSnapshot> {
    const session = await this.call(
      'checkout.sessions.retrieve',
      () => this.stripe.checkout.sessions.retrieve(id, { expand: ['subscription'] }),
      { resource: 'Checkout session' },
    );
    return toCheckoutSessionSnapshot(session);
  }

  async expireCheckoutSession(input: { id: string; idempotencyKey: string }): Promise<CheckoutSessionSnapshot> {
    const session = await this.call(
      'checkout.sessions.expire',
      async () => {
        try {
          return await this.stripe.checkout.sessions.expire(input.id, { expand: ['subscription'] }, { idempotencyKey: input.idempotencyKey });
        } catch (error) {
          // Stripe refuses to expire a session that is no longer open (paid or expired meanwhile):
          // what the session is now is the answer, read below.
          if (isStripeSdkError(error) && error.type === 'StripeInvalidRequestError' && error.code !== 'resource_missing') return null;
          throw error;
        }
      },
      { resource: 'Checkout session' },
    );
    if (session) return toCheckoutSessionSnapshot(session);
    const current = await this.retrieveCheckoutSession(input.id);
    if (current.status === 'open') {
      this.logger.warn({ operation: 'checkout.sessions.expire' }, 'Stripe refused to expire an open Checkout session');
      throw new BillingError(ErrorCode.PAYMENT_PROVIDER_ERROR, 'The payment provider could not close an earlier Checkout session; try again later.', { retryable: true });
    }
    return current;
  }
}
