/** The codes every GraphQL error carries in `extensions.code` (DESIGN section 5). */
export enum ErrorCode {
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  FORBIDDEN = 'FORBIDDEN',
  NOT_FOUND = 'NOT_FOUND',
  BAD_USER_INPUT = 'BAD_USER_INPUT',
  BILLING_DISABLED = 'BILLING_DISABLED',
  CONFLICT = 'CONFLICT',
  IDEMPOTENCY_CONFLICT = 'IDEMPOTENCY_CONFLICT',
  USAGE_LIMIT_EXCEEDED = 'USAGE_LIMIT_EXCEEDED',
  RATE_LIMITED = 'RATE_LIMITED',
  PAYMENT_PROVIDER_ERROR = 'PAYMENT_PROVIDER_ERROR',
  INTERNAL_SERVER_ERROR = 'INTERNAL_SERVER_ERROR',
}

/**
 * The one error type services throw. Its message is shown to the caller as is, so it must be
 * safe for users: no secrets, no Stripe ids of other customers, no internals.
 */
export class BillingError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'BillingError';
  }

  static notFound(what: string): BillingError {
    return new BillingError(ErrorCode.NOT_FOUND, `${what} not found`);
  }

  static badInput(message: string, field?: string): BillingError {
    return new BillingError(ErrorCode.BAD_USER_INPUT, message, field ? { field } : {});
  }
}
