/** Stripe-shaped API errors raised by resource handlers and turned into Stripe's error JSON. */
export type StripeErrorType =
  | 'invalid_request_error'
  | 'card_error'
  | 'api_error'
  | 'rate_limit_error'
  | 'idempotency_error'
  | 'authentication_error';

export interface StripeErrorBody {
  type: StripeErrorType;
  code?: string;
  message: string;
  param?: string;
  decline_code?: string;
  doc_url?: string;
  payment_intent?: unknown;
  payment_method?: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly body: StripeErrorBody;
  /** Extra response headers (e.g. Stripe-Should-Retry). */
  readonly headers: Record<string, string>;
  /** Keep the state changes and events of the failed request (e.g. a declined payment attempt). */
  keepEffects = false;

  constructor(status: number, body: StripeErrorBody, headers: Record<string, string> = {}) {
    super(body.message);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

/** Stripe's page for an error code (`parameter_missing` → .../parameter-missing). */
export function docUrl(code: string): string {
  return `https://stripe.com/docs/error-codes/${code.replace(/_/g, '-')}`;
}

export function invalidRequest(message: string, param?: string, code?: string): ApiError {
  return new ApiError(400, {
    type: 'invalid_request_error',
    message,
    ...(param ? { param } : {}),
    ...(code ? { code, doc_url: docUrl(code) } : {}),
  });
}

export function missingParam(param: string): ApiError {
  return invalidRequest(`Missing required param: ${param}.`, param, 'parameter_missing');
}

export function unknownParam(param: string): ApiError {
  return invalidRequest(`Received unknown parameter: ${param}`, param, 'parameter_unknown');
}

export function noSuch(kind: string, id: string, param?: string): ApiError {
  return new ApiError(404, {
    type: 'invalid_request_error',
    code: 'resource_missing',
    message: `No such ${kind}: '${id}'`,
    ...(param ? { param } : {}),
    doc_url: 'https://stripe.com/docs/error-codes/resource-missing',
  });
}

export function cardError(message: string, code: string, declineCode?: string, extra: Partial<StripeErrorBody> = {}): ApiError {
  return new ApiError(402, {
    type: 'card_error',
    code,
    message,
    ...(declineCode ? { decline_code: declineCode } : {}),
    ...extra,
  });
}
