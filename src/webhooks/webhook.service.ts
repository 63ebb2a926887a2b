import type { MikroORM } from '@mikro-orm/postgresql';
import { scrubSecrets } from '../common/secrets';
import { withPoolConnection } from '../db/raw-query';
import type { StripeEventSnapshot } from '../stripe/stripe.gateway';
import type { EventHandlerRegistry } from './handlers/handler-registry';
import type { StripeEventRepository } from './stripe-event.repository';
import { stripeObjectRefOf } from './stripe-object-ref';

export type ReceiveOutcome = 'recorded' | 'ignored' | 'duplicate';

const MAX_ERROR_LENGTH = 1000;

/** An error message fit to store: no secrets (see common/secrets), bounded length. */
export function scrubError(error: unknown): string {
  const raw = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return scrubSecrets(raw).slice(0, MAX_ERROR_LENGTH);
}

/**
 * What the webhook route does with a verified event: record it in the `stripe_events` ledger
 * and, for a type with a handler, enqueue the job of its object in the same transaction. Nothing
 * else happens in the request: no Stripe call, no lock, no unit of work; the job engine applies
 * it (see StripeObjectApplier).
 */
export class WebhookIngestService {
  constructor(
    private readonly orm: MikroORM,
    private readonly events: StripeEventRepository,
    private readonly handlers: EventHandlerRegistry,
  ) {}

  receive(event: StripeEventSnapshot): Promise<ReceiveOutcome> {
    const ref = stripeObjectRefOf(event.object);
    const apply = this.handlers.handles(event.type);
    return withPoolConnection(this.orm, (client) => this.events.recordAndEnqueue(client, event, ref, apply));
  }
}
