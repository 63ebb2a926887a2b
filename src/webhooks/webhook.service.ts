import type { MikroORM } from '@mikro-orm/postgresql';
import { scrubSecrets } from '../common/secrets';
import { withPoolConnection } from '../db/raw-query';
import type { StripeEventSnapshot } from '../stripe/stripe.gateway';
import type { EventHandlerRegistry } from './handlers/handler-registry';
import type { ReceiveOutcome, StripeEventRepository } from './stripe-event.repository';
import { WebhookIngestBatcher } from './webhook-ingest.batcher';
import { stripeObjectRefOf } from './stripe-object-ref';

export type { ReceiveOutcome };

const MAX_ERROR_LENGTH = 1000;

/** An error message fit to store: no secrets (see common/secrets), bounded length. */
export function scrubError(error: unknown): string {
  const raw = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return scrubSecrets(raw).slice(0, MAX_ERROR_LENGTH);
}

/**
 * What the webhook route does with a verified event: record it in the `stripe_events` ledger
 * and, for a type with a handler, enqueue the job of its object in the same statement, together
 * with the deliveries that arrive at the same time (see WebhookIngestBatcher). Nothing else
 * happens in the request: no Stripe call, no lock, no unit of work; the job engine applies it
 * (see StripeObjectApplier).
 */
export class WebhookIngestService {
  private readonly batcher: WebhookIngestBatcher;

  constructor(
    orm: MikroORM,
    events: StripeEventRepository,
    private readonly handlers: EventHandlerRegistry,
  ) {
    this.batcher = new WebhookIngestBatcher(events, (fn) => withPoolConnection(orm, fn));
  }

  /** `rawBody`: the signed body, stored as the event's JSON (it is that JSON, byte for byte). */
  receive(event: StripeEventSnapshot, rawBody?: string): Promise<ReceiveOutcome> {
    return this.batcher.record({ event, ref: stripeObjectRefOf(event.object), apply: this.handlers.handles(event.type), payloadJson: rawBody });
  }
}
