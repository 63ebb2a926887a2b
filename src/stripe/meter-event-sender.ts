import type Stripe from 'stripe';
import { chunk } from '../common/chunk';
import { BillingError, ErrorCode } from '../common/errors';
import { meterEventIdempotencyKey } from './idempotency';
import { sleep, type StripeCallPolicy, type StripeGatewayLogger } from './stripe-call-policy';
import { isStripeSdkError, loggableStripeError, toBillingError } from './stripe-errors';
import type { MeterEventInput, MeterEventOutcome, SendMeterEventsResult } from './stripe.gateway';

/** Stripe takes at most this many events per v2 meter event stream request. */
export const METER_STREAM_BATCH_SIZE = 100;
/** Renew the stream session this long before Stripe says it expires. */
const METER_SESSION_RENEW_MARGIN_MS = 60_000;
/** Concurrency of the one-by-one v1 fallback. */
const V1_METER_EVENT_CONCURRENCY = 5;

type MeterEventStreamParams = Parameters<Stripe['v2']['billing']['meterEventStream']['create']>[0];

function toUnixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/**
 * Sends billing meter events: through the v2 meter event stream (a session token renewed before
 * it expires, up to 100 events a request) or, when the stream is unavailable or the transport is
 * `v1`, one v1 event a request. It keeps the session and whether the stream is available, so one
 * sender lives as long as its gateway.
 */
export class MeterEventSender {
  private session: { token: string; expiresAt: number } | null = null;
  private sessionPending: Promise<string> | null = null;
  private streamUnavailable = false;

  constructor(
    private readonly stripe: Stripe,
    private readonly policy: StripeCallPolicy,
    private readonly options: { transport: 'auto' | 'v1'; logger: StripeGatewayLogger },
  ) {}

  async send(events: MeterEventInput[]): Promise<SendMeterEventsResult> {
    for (const event of events) {
      if (!Number.isFinite(event.value)) throw BillingError.badInput('Meter event value must be a finite number', 'value');
      if (!event.identifier) throw BillingError.badInput('Meter event identifier is required', 'identifier');
    }
    if (events.length === 0) return { transport: this.useStream() ? 'v2_stream' : 'v1', outcomes: [] };
    if (this.useStream()) {
      const outcomes = await this.sendThroughStream(events);
      if (outcomes) return { transport: 'v2_stream', outcomes };
    }
    return { transport: 'v1', outcomes: await this.sendThroughV1(events) };
  }

  private useStream(): boolean {
    return this.options.transport === 'auto' && !this.streamUnavailable;
  }

  /** Null when the stream turned out to be unavailable (the caller falls back to v1). */
  private async sendThroughStream(events: MeterEventInput[]): Promise<MeterEventOutcome[] | null> {
    const outcomes: MeterEventOutcome[] = [];
    for (const batch of chunk(events, METER_STREAM_BATCH_SIZE)) {
      const result = await this.sendStreamBatch(batch);
      if (result === 'unavailable') {
        if (outcomes.length === 0) return null;
        outcomes.push(...(await this.sendThroughV1(events.slice(outcomes.length))));
        return outcomes;
      }
      outcomes.push(...result);
    }
    return outcomes;
  }

  private async sendStreamBatch(batch: MeterEventInput[]): Promise<MeterEventOutcome[] | 'unavailable'> {
    const body: MeterEventStreamParams = {
      events: batch.map((e) => ({
        event_name: e.eventName,
        identifier: e.identifier,
        timestamp: e.timestamp.toISOString(),
        payload: { stripe_customer_id: e.stripeCustomerId, value: String(e.value) },
      })),
    };
    for (let attempt = 0; ; attempt++) {
      let token: string;
      try {
        token = await this.sessionToken();
      } catch (error) {
        if (this.isEndpointMissing(error)) return this.markStreamUnavailable(error);
        return this.failAll(batch, error);
      }
      try {
        // The stream authenticates with the session token, not the secret key. The SDK sends it
        // to meter-events.stripe.com, or to the configured custom host (emulator, stripe-mock).
        await this.stripe.v2.billing.meterEventStream.create(body, { apiKey: token });
        return batch.map((e) => ({ identifier: e.identifier, status: 'accepted', retryable: false }));
      } catch (error) {
        if (isStripeSdkError(error) && error.type === 'TemporarySessionExpiredError' && attempt === 0) {
          this.session = null;
          continue;
        }
        if (this.isEndpointMissing(error)) return this.markStreamUnavailable(error);
        const delay = this.policy.retryDelay(error, attempt);
        if (delay !== null) {
          await sleep(delay);
          continue;
        }
        if (isStripeSdkError(error) && error.statusCode === 400) {
          // One invalid event fails the whole batch; v1 validates each event on its own,
          // which tells the caller which ones are at fault.
          this.options.logger.warn({ count: batch.length, ...loggableStripeError(error) }, 'Meter event batch rejected, resending one by one');
          return this.sendThroughV1(batch);
        }
        return this.failAll(batch, error);
      }
    }
  }

  private isEndpointMissing(error: unknown): boolean {
    return isStripeSdkError(error) && error.statusCode === 404;
  }

  private markStreamUnavailable(error: unknown): 'unavailable' {
    this.streamUnavailable = true;
    this.options.logger.warn(loggableStripeError(error), 'Meter event stream unavailable, using v1 meter events');
    return 'unavailable';
  }

  private failAll(batch: MeterEventInput[], error: unknown): MeterEventOutcome[] {
    const mapped = this.policy.toBillingError(error);
    this.options.logger.warn({ count: batch.length, ...loggableStripeError(error) }, 'Meter events not delivered');
    return batch.map((e) => ({
      identifier: e.identifier,
      status: 'failed',
      retryable: mapped.details.retryable === true,
      error: { code: mapped.code, message: mapped.message },
    }));
  }

  /** A valid session token, shared by concurrent callers and renewed before it expires. */
  private async sessionToken(): Promise<string> {
    const session = this.session;
    if (session && session.expiresAt - Date.now() > METER_SESSION_RENEW_MARGIN_MS) return session.token;
    if (!this.sessionPending) {
      this.sessionPending = (async () => {
        try {
          const created = await this.stripe.v2.billing.meterEventSession.create();
          const expiresAt = Date.parse(created.expires_at);
          this.session = {
            token: created.authentication_token,
            // Stripe documents 15 minutes; trust its answer when it is readable.
            expiresAt: Number.isFinite(expiresAt) ? expiresAt : Date.now() + 15 * 60_000,
          };
          return created.authentication_token;
        } finally {
          this.sessionPending = null;
        }
      })();
    }
    return this.sessionPending;
  }

  private async sendThroughV1(events: MeterEventInput[]): Promise<MeterEventOutcome[]> {
    const outcomes = new Array<MeterEventOutcome>(events.length);
    let next = 0;
    const worker = async () => {
      while (next < events.length) {
        const index = next++;
        outcomes[index] = await this.sendOneV1(events[index]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(V1_METER_EVENT_CONCURRENCY, events.length) }, worker));
    return outcomes;
  }

  private async sendOneV1(event: MeterEventInput): Promise<MeterEventOutcome> {
    try {
      await this.policy.run('billing.meter_events.create', () =>
        this.stripe.billing.meterEvents.create(
          {
            event_name: event.eventName,
            identifier: event.identifier,
            timestamp: toUnixSeconds(event.timestamp),
            payload: { stripe_customer_id: event.stripeCustomerId, value: String(event.value) },
          },
          { idempotencyKey: meterEventIdempotencyKey(event.identifier) },
        ),
      );
      return { identifier: event.identifier, status: 'accepted', retryable: false };
    } catch (error) {
      const mapped = error instanceof BillingError ? error : toBillingError(error);
      const cause = (mapped as { cause?: unknown }).cause;
      // Stripe rejects a second event with an identifier it has seen: it was delivered before.
      if (
        mapped.code === ErrorCode.CONFLICT ||
        (isStripeSdkError(cause) && /identifier/i.test(cause.message) && /already|duplicate|exists/i.test(cause.message))
      ) {
        return { identifier: event.identifier, status: 'duplicate', retryable: false };
      }
      return {
        identifier: event.identifier,
        status: 'failed',
        retryable: mapped.details.retryable === true,
        error: { code: mapped.code, message: mapped.message },
      };
    }
  }
}
