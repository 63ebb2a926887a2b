import { StripeSdkGateway } from './stripe-sdk.gateway';
import { WebhookSignatureError } from './stripe-errors';
import type { StripeEventSnapshot } from './stripe.gateway';

/** Verification makes no request: the key only satisfies the SDK's constructor. */
const VERIFY_ONLY_KEY = 'sk_test_webhook_signature_verification_only';

/**
 * Verifies `Stripe-Signature` against several signing secrets, each tried in turn, so a secret
 * can be rolled in Stripe (which signs with both for a while) without refusing a delivery.
 * Each secret gets the gateway's own check (SDK `constructEvent`, 300 s tolerance, event shape).
 */
export class StripeWebhookVerifier {
  private readonly verifiers: StripeSdkGateway[];

  constructor(secrets: string[], options: { toleranceSeconds?: number } = {}) {
    if (!secrets.length) throw new TypeError('at least one webhook secret is required');
    this.verifiers = secrets.map(
      (webhookSecret) =>
        new StripeSdkGateway({ secretKey: VERIFY_ONLY_KEY, webhookSecret, webhookToleranceSeconds: options.toleranceSeconds }),
    );
  }

  /** The verified event; throws `WebhookSignatureError` when no secret verifies it. */
  verify(rawBody: Buffer | string, signatureHeader: string | undefined): StripeEventSnapshot {
    let firstError: unknown;
    for (const verifier of this.verifiers) {
      try {
        return verifier.constructWebhookEvent(rawBody, signatureHeader);
      } catch (error) {
        // Only a signature mismatch may be another secret's; a bad payload or header is bad for all.
        if (!(error instanceof WebhookSignatureError) || error.reason !== 'invalid_signature') throw error;
        firstError ??= error;
      }
    }
    throw firstError;
  }
}
