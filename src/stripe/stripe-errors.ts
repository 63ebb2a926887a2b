import type Stripe from 'stripe';
import { BillingError, ErrorCode } from '../common/errors';
import { scrubSecrets } from '../common/secrets';

/*
 * Maps SDK errors to BillingError. Detection goes by the SDK error's `type` string (and the
 * raw Stripe error fields) instead of `instanceof`, so this file needs no value import of
 * 'stripe' and also works on errors from another copy of the SDK.
 *
 * Choices:
 * - Card errors (402) become PAYMENT_PROVIDER_ERROR with a fixed message per decline reason
 *   and `details.declineCode`: the payment failed at the provider, and the caller can show
 *   the message to the customer as is.
 * - Rate limits, connection failures, timeouts, Stripe 5xx, authentication and permission
 *   errors become PAYMENT_PROVIDER_ERROR with a generic message; `details.retryable` says
 *   whether trying again later may help. A bad key is our configuration problem, never the
 *   user's, so it must not read like one.
 * - Invalid-request errors caused by input (`parameter_invalid_*`, `parameter_missing`,
 *   `email_invalid`, `url_invalid`, amounts) become BAD_USER_INPUT with `details.param`;
 *   `resource_missing` becomes NOT_FOUND (services check ownership before calling Stripe, so
 *   a missing object is, for the caller, one that does not exist); `resource_already_exists`
 *   becomes CONFLICT. Other invalid requests are our bugs and become PAYMENT_PROVIDER_ERROR.
 * - Idempotency errors become IDEMPOTENCY_CONFLICT.
 * - The SDK error is kept as `cause` for logs. Messages shown to users are ours, except for
 *   BAD_USER_INPUT, which passes Stripe's explanation through `redactSecrets` first.
 */

/** Removes anything that looks like a Stripe key or webhook secret, plus the given exact strings. */
export function redactSecrets(text: string, extraSecrets: readonly string[] = []): string {
  return scrubSecrets(text, extraSecrets);
}

/** The fields of an SDK error this module reads. */
type SdkErrorLike = Error & {
  type?: string;
  rawType?: string;
  code?: string;
  decline_code?: string;
  param?: string;
  statusCode?: number;
  requestId?: string;
  headers?: Record<string, string>;
  raw?: { message?: string };
};

const SDK_ERROR_TYPES = new Set([
  'StripeError',
  'StripeCardError',
  'StripeInvalidRequestError',
  'StripeAPIError',
  'StripeAuthenticationError',
  'StripePermissionError',
  'StripeRateLimitError',
  'StripeConnectionError',
  'StripeSignatureVerificationError',
  'StripeIdempotencyError',
  'RateLimitError',
  'TemporarySessionExpiredError',
]);

/** True for errors thrown by the Stripe SDK (API, network and signature errors). */
export function isStripeSdkError(error: unknown): error is Stripe.errors.StripeError {
  if (!(error instanceof Error)) return false;
  const type = (error as SdkErrorLike).type;
  return typeof type === 'string' && (SDK_ERROR_TYPES.has(type) || type.endsWith('Error')) && 'rawType' in error;
}

const GENERIC_MESSAGE = 'The payment provider could not process the request. Please try again later.';
const UNAVAILABLE_MESSAGE = 'The payment provider is temporarily unavailable. Please try again later.';

const DECLINE_MESSAGES: Record<string, string> = {
  insufficient_funds: 'The card has insufficient funds.',
  expired_card: 'The card has expired.',
  incorrect_cvc: "The card's security code is incorrect.",
  invalid_cvc: "The card's security code is invalid.",
  incorrect_number: 'The card number is incorrect.',
  invalid_number: 'The card number is invalid.',
  invalid_expiry_month: "The card's expiration month is invalid.",
  invalid_expiry_year: "The card's expiration year is invalid.",
  processing_error: 'An error occurred while processing the card. Please try again.',
  authentication_required: 'The card requires authentication. Please complete the payment in the browser.',
  card_not_supported: 'The card does not support this type of purchase.',
  lost_card: 'The card was declined.',
  stolen_card: 'The card was declined.',
  fraudulent: 'The card was declined.',
};

const USER_INPUT_CODES = new Set([
  'parameter_missing',
  'parameter_unknown',
  'email_invalid',
  'url_invalid',
  'amount_too_small',
  'amount_too_large',
  'invalid_characters',
  'string_length_exceeds_maximum',
  'country_unsupported',
]);

export interface StripeErrorContext {
  /** Names the object in NOT_FOUND messages ("Subscription not found"). */
  resource?: string;
  /** Exact strings (the secret key) that must never appear in a message. */
  secrets?: readonly string[];
}

function withCause(error: BillingError, cause: unknown): BillingError {
  Object.defineProperty(error, 'cause', { value: cause, enumerable: false, writable: true, configurable: true });
  return error;
}

/**
 * Scrubs secrets from the SDK error itself, so whatever logs the `cause` later cannot leak
 * a key even if Stripe or a proxy echoed one back.
 */
function scrubCause(error: SdkErrorLike, secrets: readonly string[]): void {
  try {
    error.message = redactSecrets(error.message ?? '', secrets);
    if (error.raw && typeof error.raw.message === 'string') {
      error.raw.message = redactSecrets(error.raw.message, secrets);
    }
  } catch {
    // A frozen error object keeps its message; it is still never shown to users.
  }
}

/** Title-cases a Stripe object name from a "No such price: 'x'" message. */
function resourceFromMessage(message: string): string | null {
  const match = /No such ([a-z_ ]+?)(?::|\s'|$)/i.exec(message);
  if (!match) return null;
  const name = match[1].replace(/_/g, ' ').trim();
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/** True when retrying the same request later may succeed. */
function isTransient(error: SdkErrorLike): boolean {
  return (
    error.type === 'StripeRateLimitError' ||
    error.type === 'RateLimitError' ||
    error.type === 'StripeConnectionError' ||
    error.type === 'StripeAPIError' ||
    (typeof error.statusCode === 'number' && (error.statusCode >= 500 || error.statusCode === 429 || error.statusCode === 409))
  );
}

/**
 * Converts anything a gateway call threw into a BillingError with a user-safe message.
 * BillingErrors pass through; non-Stripe errors become INTERNAL_SERVER_ERROR (kept as cause).
 */
export function toBillingError(error: unknown, context: StripeErrorContext = {}): BillingError {
  if (error instanceof BillingError) return error;
  const secrets = context.secrets ?? [];
  if (!isStripeSdkError(error)) {
    return withCause(new BillingError(ErrorCode.INTERNAL_SERVER_ERROR, 'Internal error'), error);
  }
  const e = error as SdkErrorLike;
  scrubCause(e, secrets);
  const base = {
    stripeType: e.rawType ?? e.type,
    stripeCode: e.code,
    statusCode: e.statusCode,
    requestId: e.requestId,
  };
  const make = (code: ErrorCode, message: string, details: Record<string, unknown> = {}) =>
    withCause(new BillingError(code, message, { ...base, ...details }), error);

  switch (e.type) {
    case 'StripeCardError': {
      const reason = e.decline_code ?? e.code ?? 'card_declined';
      return make(ErrorCode.PAYMENT_PROVIDER_ERROR, DECLINE_MESSAGES[reason] ?? 'The card was declined.', {
        declineCode: e.decline_code ?? null,
        retryable: false,
      });
    }
    case 'StripeIdempotencyError':
      return make(
        ErrorCode.IDEMPOTENCY_CONFLICT,
        'This idempotency key was already used for a different request.',
      );
    case 'StripeRateLimitError':
    case 'RateLimitError':
    case 'StripeConnectionError':
    case 'StripeAPIError':
      return make(ErrorCode.PAYMENT_PROVIDER_ERROR, UNAVAILABLE_MESSAGE, { retryable: true });
    case 'StripeAuthenticationError':
    case 'StripePermissionError':
      return make(ErrorCode.PAYMENT_PROVIDER_ERROR, GENERIC_MESSAGE, { retryable: false });
    case 'StripeSignatureVerificationError':
      return make(ErrorCode.BAD_USER_INPUT, 'Invalid webhook signature.');
    case 'StripeInvalidRequestError': {
      const code = e.code ?? '';
      if (code === 'resource_missing') {
        const resource = context.resource ?? resourceFromMessage(e.message) ?? 'Resource';
        return make(ErrorCode.NOT_FOUND, `${resource} not found`, { param: e.param ?? null });
      }
      if (code === 'resource_already_exists') {
        return make(ErrorCode.CONFLICT, 'The object already exists.', { param: e.param ?? null });
      }
      if (code.startsWith('parameter_invalid') || USER_INPUT_CODES.has(code)) {
        const message = redactSecrets(e.message || 'The request has an invalid value.', secrets);
        return make(ErrorCode.BAD_USER_INPUT, message, { param: e.param ?? null, field: e.param ?? undefined });
      }
      return make(ErrorCode.PAYMENT_PROVIDER_ERROR, GENERIC_MESSAGE, { retryable: false });
    }
    default:
      return make(ErrorCode.PAYMENT_PROVIDER_ERROR, isTransient(e) ? UNAVAILABLE_MESSAGE : GENERIC_MESSAGE, {
        retryable: isTransient(e),
      });
  }
}

/** Safe fields of an SDK error for a log line (never the message, which Stripe writes). */
export function loggableStripeError(error: unknown): Record<string, unknown> {
  if (!isStripeSdkError(error)) return { errorName: error instanceof Error ? error.name : typeof error };
  const e = error as SdkErrorLike;
  return { stripeType: e.rawType ?? e.type, stripeCode: e.code, statusCode: e.statusCode, requestId: e.requestId };
}

/**
 * A webhook delivery that failed verification: bad or missing signature, a timestamp outside
 * the tolerance, or a body that is not an event. The router answers 400 and stores nothing.
 * It is a BillingError (BAD_USER_INPUT) so generic error handling also treats it as a client error.
 */
export class WebhookSignatureError extends BillingError {
  constructor(
    readonly reason: 'missing_signature' | 'invalid_signature' | 'invalid_payload',
    message = 'Invalid webhook signature.',
  ) {
    super(ErrorCode.BAD_USER_INPUT, message, { reason });
    this.name = 'WebhookSignatureError';
  }
}
