import { ErrorCode } from '../common/errors';
import { isStripeSdkError, loggableStripeError, toBillingError, type StripeErrorContext } from './stripe-errors';

export interface StripeGatewayLogger {
  warn(obj: object, msg?: string): void;
}

const MAX_RATE_LIMIT_DELAY_MS = 5_000;

/** Most objects one list call reads (pages of 100 followed by the SDK's auto-pagination). */
export const PAGINATION_LIMIT = 10_000;

/** The gateway's call policy as the call groups use it: runs one SDK call, retries rate limits, maps errors to BillingError. */
export type CallPolicy = <T>(operation: string, fn: () => Promise<T>, context?: StripeErrorContext) => Promise<T>;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}

/**
 * How every call to Stripe is made: which failures are retried here (with what delay), and how
 * the rest become a BillingError. The SDK retries connection errors, 409 and 5xx itself (same
 * idempotency key); a 429 is retried by the SDK only when Stripe sends `Stripe-Should-Retry:
 * true`, so other rate limits are retried here, with backoff and the same request.
 */
export class StripeCallPolicy {
  readonly maxRetries: number;

  constructor(private readonly options: { secretKey: string; maxRetries: number; logger: StripeGatewayLogger }) {
    this.maxRetries = options.maxRetries;
  }

  /** Runs one SDK call and maps its failure to a BillingError. */
  async run<T>(operation: string, fn: () => Promise<T>, context: StripeErrorContext = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        const delay = this.retryDelay(error, attempt);
        if (delay !== null) {
          this.options.logger.warn({ operation, attempt: attempt + 1, delayMs: delay, ...loggableStripeError(error) }, 'Stripe rate limit, retrying');
          await sleep(delay);
          continue;
        }
        const mapped = this.toBillingError(error, context);
        if (mapped.code === ErrorCode.PAYMENT_PROVIDER_ERROR || mapped.code === ErrorCode.INTERNAL_SERVER_ERROR) {
          this.options.logger.warn({ operation, code: mapped.code, ...loggableStripeError(error) }, 'Stripe request failed');
        }
        throw mapped;
      }
    }
  }

  /**
   * How long to wait before attempt `attempt + 1` of a call that failed with `error`, or null
   * when it is not retried here.
   */
  retryDelay(error: unknown, attempt: number): number | null {
    return isUnretriedRateLimit(error) && attempt < this.maxRetries ? rateLimitDelay(error, attempt) : null;
  }

  /** The BillingError for a failed call, with the secret key scrubbed from its message. */
  toBillingError(error: unknown, context: StripeErrorContext = {}) {
    return toBillingError(error, { ...context, secrets: [this.options.secretKey, ...(context.secrets ?? [])] });
  }
}

/**
 * A rate limit the SDK did not retry. With `Stripe-Should-Retry: true` the SDK has already
 * spent its retries on it, and retrying again here would multiply the attempts.
 */
function isUnretriedRateLimit(error: unknown): boolean {
  if (!isStripeSdkError(error)) return false;
  const limited = error.type === 'StripeRateLimitError' || error.type === 'RateLimitError' || error.statusCode === 429;
  const sdkRetried = (error as { headers?: Record<string, string> }).headers?.['stripe-should-retry'] === 'true';
  return limited && !sdkRetried;
}

function rateLimitDelay(error: unknown, attempt: number): number {
  const header = (error as { headers?: Record<string, string> }).headers?.['retry-after'];
  const seconds = header !== undefined ? Number(header) : NaN;
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_RATE_LIMIT_DELAY_MS);
  const base = Math.min(250 * 2 ** attempt, MAX_RATE_LIMIT_DELAY_MS);
  return base / 2 + Math.random() * (base / 2);
}
