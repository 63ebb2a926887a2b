import Stripe from 'stripe';
import { BillingError, ErrorCode } from '../../src/common/errors';
import { redactSecrets, toBillingError, WebhookSignatureError } from '../../src/stripe/stripe-errors';

const SECRET = 'sk_test_51SuperSecretKeyValue1234567890';

function causeOf(error: BillingError): unknown {
  return (error as { cause?: unknown }).cause;
}

describe('toBillingError', () => {
  describe('card errors', () => {
    it('become PAYMENT_PROVIDER_ERROR with a user-safe message and the decline code', () => {
      const sdkError = new Stripe.errors.StripeCardError({
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'insufficient_funds',
        message: 'Your card has insufficient funds.',
        statusCode: 402,
      });
      const error = toBillingError(sdkError);
      expect(error).toBeInstanceOf(BillingError);
      expect(error.code).toBe(ErrorCode.PAYMENT_PROVIDER_ERROR);
      expect(error.message).toBe('The card has insufficient funds.');
      expect(error.details.declineCode).toBe('insufficient_funds');
      expect(causeOf(error)).toBe(sdkError);
    });

    it('fall back to a generic decline message for unknown reasons', () => {
      const error = toBillingError(
        new Stripe.errors.StripeCardError({ type: 'card_error', code: 'card_declined', decline_code: 'do_not_honor' }),
      );
      expect(error.message).toBe('The card was declined.');
      expect(error.details.declineCode).toBe('do_not_honor');
    });
  });

  describe('provider failures', () => {
    it.each([
      ['rate limit', new Stripe.errors.StripeRateLimitError({ type: 'invalid_request_error', statusCode: 429, message: 'Too many requests' }), true],
      ['connection', new Stripe.errors.StripeConnectionError({ message: 'ECONNREFUSED' }), true],
      ['api (5xx)', new Stripe.errors.StripeAPIError({ type: 'api_error', statusCode: 500, message: 'boom' }), true],
      ['authentication', new Stripe.errors.StripeAuthenticationError({ type: 'invalid_request_error', statusCode: 401, message: 'Invalid API Key' }), false],
      ['permission', new Stripe.errors.StripePermissionError({ type: 'invalid_request_error', statusCode: 403, message: 'nope' }), false],
    ])('%s errors become PAYMENT_PROVIDER_ERROR with a generic message', (_name, sdkError, retryable) => {
      const error = toBillingError(sdkError);
      expect(error.code).toBe(ErrorCode.PAYMENT_PROVIDER_ERROR);
      expect(error.message).toMatch(/payment provider/i);
      expect(error.message).not.toContain((sdkError as Error).message);
      expect(error.details.retryable).toBe(retryable);
      expect(causeOf(error)).toBe(sdkError);
    });
  });

  describe('invalid requests', () => {
    it('map resource_missing to NOT_FOUND named after the resource', () => {
      const error = toBillingError(
        new Stripe.errors.StripeInvalidRequestError({
          type: 'invalid_request_error',
          code: 'resource_missing',
          param: 'id',
          message: "No such subscription: 'sub_123'",
          statusCode: 404,
        }),
        { resource: 'Subscription' },
      );
      expect(error.code).toBe(ErrorCode.NOT_FOUND);
      expect(error.message).toBe('Subscription not found');
    });

    it('name the resource from Stripe message when no context is given', () => {
      const error = toBillingError(
        new Stripe.errors.StripeInvalidRequestError({
          type: 'invalid_request_error',
          code: 'resource_missing',
          message: "No such price: 'price_x'",
          statusCode: 400,
        }),
      );
      expect(error).toMatchObject({ code: ErrorCode.NOT_FOUND, message: 'Price not found' });
    });

    it('map parameter_invalid_* to BAD_USER_INPUT with the parameter', () => {
      const error = toBillingError(
        new Stripe.errors.StripeInvalidRequestError({
          type: 'invalid_request_error',
          code: 'parameter_invalid_integer',
          param: 'quantity',
          message: 'Invalid integer: abc',
          statusCode: 400,
        }),
      );
      expect(error.code).toBe(ErrorCode.BAD_USER_INPUT);
      expect(error.details.param).toBe('quantity');
      expect(error.message).toBe('Invalid integer: abc');
    });

    it('map other invalid requests (our bugs) to PAYMENT_PROVIDER_ERROR without Stripe text', () => {
      const error = toBillingError(
        new Stripe.errors.StripeInvalidRequestError({
          type: 'invalid_request_error',
          code: 'something_internal',
          message: 'Internal detail about the account',
          statusCode: 400,
        }),
      );
      expect(error.code).toBe(ErrorCode.PAYMENT_PROVIDER_ERROR);
      expect(error.message).not.toContain('Internal detail');
    });
  });

  it('maps idempotency errors to IDEMPOTENCY_CONFLICT', () => {
    const error = toBillingError(
      new Stripe.errors.StripeIdempotencyError({
        type: 'idempotency_error',
        message: 'Keys for idempotent requests can only be used with the same parameters',
        statusCode: 400,
      }),
    );
    expect(error.code).toBe(ErrorCode.IDEMPOTENCY_CONFLICT);
  });

  it('passes BillingErrors through unchanged', () => {
    const original = BillingError.notFound('Thing');
    expect(toBillingError(original)).toBe(original);
  });

  it('turns unexpected errors into INTERNAL_SERVER_ERROR with the cause kept', () => {
    const original = new TypeError('x is undefined');
    const error = toBillingError(original);
    expect(error.code).toBe(ErrorCode.INTERNAL_SERVER_ERROR);
    expect(error.message).not.toContain('undefined');
    expect(causeOf(error)).toBe(original);
  });

  describe('secrets', () => {
    it('never lets a secret key in an SDK message reach the BillingError message', () => {
      const error = toBillingError(
        new Stripe.errors.StripeInvalidRequestError({
          type: 'invalid_request_error',
          code: 'parameter_invalid_string',
          param: 'email',
          message: `Invalid value, request made with key ${SECRET}`,
          statusCode: 400,
        }),
        { secrets: [SECRET] },
      );
      expect(error.code).toBe(ErrorCode.BAD_USER_INPUT);
      expect(error.message).not.toContain(SECRET);
      expect(error.message).toContain('[redacted]');
      expect(JSON.stringify(error.details)).not.toContain(SECRET);
    });

    it('scrubs the key from the kept cause too, so logs cannot leak it', () => {
      const sdkError = new Stripe.errors.StripeAuthenticationError({
        type: 'invalid_request_error',
        statusCode: 401,
        message: `Invalid API Key provided: ${SECRET}`,
      });
      const error = toBillingError(sdkError, { secrets: [SECRET] });
      expect(error.message).not.toContain(SECRET);
      expect((causeOf(error) as Error).message).not.toContain(SECRET);
    });

    it('redacts any Stripe-shaped key or webhook secret, even unknown ones', () => {
      expect(redactSecrets('a rk_live_abc123 b whsec_xyz= c pk_test_1')).toBe('a rk_live_[redacted] b whsec_[redacted] c pk_test_[redacted]');
    });
  });
});

describe(WebhookSignatureError.name, () => {
  it('is a BAD_USER_INPUT BillingError carrying the reason', () => {
    const error = new WebhookSignatureError('invalid_signature');
    expect(error).toBeInstanceOf(BillingError);
    expect(error.code).toBe(ErrorCode.BAD_USER_INPUT);
    expect(error.reason).toBe('invalid_signature');
  });
});
