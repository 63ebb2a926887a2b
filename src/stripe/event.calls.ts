import type Stripe from 'stripe';
import { BillingError, ErrorCode } from '../common/errors';
import type { CallPolicy } from './stripe-call-policy';
import { isStripeSdkError, WebhookSignatureError } from './stripe-errors';
import type { Page, StripeEventSnapshot } from './stripe.gateway';
import { toEventSnapshot } from './stripe.mappers';

/**
 * Stripe events: read from the API (the catch-up and refetches), or verified from a webhook
 * delivery's raw bytes.
 */
export class EventCalls {
  constructor(
    private readonly stripe: Stripe,
    private readonly call: CallPolicy,
    /** Null when no webhook secret is configured: then no event can be verified. */
    private readonly webhookSecret: string | undefined,
    /** Maximum age of a signature's timestamp, in seconds. */
    private readonly webhookTolerance: number,
  ) {}

  async retrieveEvent(id: string): Promise<StripeEventSnapshot> {
    const event = await this.call('events.retrieve', () => this.stripe.events.retrieve(id), { resource: 'Event' });
    return toEventSnapshot(event);
  }

  async listEvents(input: { createdAfter?: Date; startingAfter?: string; limit?: number }): Promise<Page<StripeEventSnapshot>> {
    const limit = Math.min(Math.max(Math.trunc(input.limit ?? 100), 1), 100);
    const page = await this.call(
      'events.list',
      () =>
        this.stripe.events.list({
          limit,
          ...(input.createdAfter ? { created: { gt: Math.floor(input.createdAfter.getTime() / 1000) } } : {}),
          ...(input.startingAfter ? { starting_after: input.startingAfter } : {}),
        }),
      { resource: 'Event' },
    );
    const data = page.data.map((event) => toEventSnapshot(event));
    return { data, hasMore: page.has_more, nextCursor: page.has_more && data.length ? data[data.length - 1].id : null };
  }


  constructWebhookEvent(rawBody: Buffer | string, signatureHeader: string | undefined): StripeEventSnapshot {
    if (!this.webhookSecret) {
      throw new BillingError(ErrorCode.INTERNAL_SERVER_ERROR, 'Webhook secret is not configured');
    }
    if (!signatureHeader) throw new WebhookSignatureError('missing_signature', 'Missing Stripe-Signature header.');
    let event: Stripe.Event;
    try {
      event = this.stripe.webhooks.constructEvent(rawBody, signatureHeader, this.webhookSecret, this.webhookTolerance);
    } catch (error) {
      if (isStripeSdkError(error) && error.type === 'StripeSignatureVerificationError') {
        const stale = /timestamp outside the tolerance zone/i.test(error.message);
        throw new WebhookSignatureError(
          'invalid_signature',
          stale ? 'Webhook signature timestamp is too old.' : 'Invalid webhook signature.',
        );
      }
      // The signature matched but the body is not JSON: signed garbage is still not an event.
      throw new WebhookSignatureError('invalid_payload', 'Webhook payload is not a valid event.');
    }
    if (!isEventShaped(event)) {
      throw new WebhookSignatureError('invalid_payload', 'Webhook payload is not a valid event.');
    }
    // constructEvent parsed the body: the event is plain JSON already, with nothing to copy.
    return toEventSnapshot(event, { plainJson: true });
  }
}

/** Latest `created` accepted: far beyond any real event, and still a date PostgreSQL can store. */
const MAX_EVENT_CREATED = 10 ** 11;

/**
 * What recording an event relies on. Stripe's own events always pass; a correctly signed body
 * that does not (an empty id, a `created` no database can store) is refused like any other
 * non-event instead of failing to record with a 500 that Stripe would retry for days.
 */
function isEventShaped(event: unknown): event is Stripe.Event {
  if (!event || typeof event !== 'object' || Array.isArray(event)) return false;
  const e = event as Record<string, unknown>;
  const nonEmpty = (v: unknown) => typeof v === 'string' && v.length > 0;
  const created = e.created;
  const data = e.data;
  return (
    nonEmpty(e.id) &&
    nonEmpty(e.type) &&
    (created === undefined || (typeof created === 'number' && Number.isInteger(created) && created >= 0 && created <= MAX_EVENT_CREATED)) &&
    (e.api_version === undefined || e.api_version === null || typeof e.api_version === 'string') &&
    (data === undefined || (typeof data === 'object' && data !== null && !Array.isArray(data)))
  );
}
