import { randomUUID } from 'node:crypto';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { scrubSecrets } from '../common/secrets';
import type { StripeEventSnapshot, StripeGateway } from '../stripe/stripe.gateway';
import { handlePriceEvent, handleProductEvent } from './handlers/catalog.handler';
import { handleCheckoutSessionEvent } from './handlers/checkout.handler';
import { handleInvoiceEvent } from './handlers/invoice.handler';
import { handleSubscriptionEvent } from './handlers/subscription.handler';
import { SUBSCRIPTION_SCHEDULE_HANDLERS } from './handlers/subscription-schedule.handler';
import type { EventHandler, HandlerOutcome } from './handlers/types';

/** Event types with a handler. Everything else is stored as `ignored`. */
const HANDLERS: Record<string, EventHandler> = {
  'customer.subscription.created': handleSubscriptionEvent,
  'customer.subscription.updated': handleSubscriptionEvent,
  'customer.subscription.deleted': handleSubscriptionEvent,
  'product.updated': handleProductEvent,
  'product.deleted': handleProductEvent,
  'price.updated': handlePriceEvent,
  'price.deleted': handlePriceEvent,
  'checkout.session.completed': handleCheckoutSessionEvent,
  'checkout.session.expired': handleCheckoutSessionEvent,
  'invoice.paid': handleInvoiceEvent,
  'invoice.payment_succeeded': handleInvoiceEvent,
  'invoice.payment_failed': handleInvoiceEvent,
  ...SUBSCRIPTION_SCHEDULE_HANDLERS,
};

export type ReceiveResult =
  | { outcome: 'duplicate' }
  | { outcome: HandlerOutcome }
  | { outcome: 'failed'; error: string };

const MAX_ERROR_LENGTH = 1000;

/** An error message fit to store: no secrets (see common/secrets), bounded length. */
export function scrubError(error: unknown): string {
  const raw = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return scrubSecrets(raw).slice(0, MAX_ERROR_LENGTH);
}

/**
 * Records verified Stripe events in the `stripe_events` ledger and applies each at most once.
 *
 * 1. The event is inserted with `on conflict (stripe_event_id) do nothing`: a redelivery, even one
 *    racing the first delivery, never makes a second row.
 * 2. The row is claimed with `select ... for update skip locked` inside the transaction that applies
 *    it, and only while its status is `received` or `failed`. Two deliveries can therefore not
 *    apply the same event at once, a processed or ignored event is never applied again, and a
 *    failed one is re-applied by Stripe's retry.
 * 3. A failure rolls the transaction back and then marks the row `failed` with attempts + 1 and
 *    the (scrubbed) error message.
 */
export class WebhookService {
  constructor(
    private readonly orm: MikroORM,
    private readonly gateway: StripeGateway,
    private readonly log: Logger,
  ) {}

  async receive(event: StripeEventSnapshot): Promise<ReceiveResult> {
    await this.record(event);
    return this.apply(event);
  }

  /** Inserts the ledger row unless the event id is already there. True when this call inserted it. */
  async record(event: StripeEventSnapshot): Promise<boolean> {
    const rows = await this.orm.em.fork().execute(
      `insert into stripe_events (id, stripe_event_id, type, livemode, api_version, payload, stripe_created_at, received_at, status, attempts)
       values (?, ?, ?, ?, ?, ?::jsonb, ?, now(), 'received', 0)
       on conflict (stripe_event_id) do nothing
       returning id`,
      [randomUUID(), event.id, event.type, event.livemode, event.apiVersion, JSON.stringify(event.payload), event.createdAt],
    );
    return rows.length > 0;
  }

  /** Applies the stored event if it is still to be applied and nobody else is applying it. */
  async apply(event: StripeEventSnapshot): Promise<ReceiveResult> {
    const em = this.orm.em.fork();
    try {
      return await em.transactional(async (tx) => {
        const claimed = await tx.execute(
          `select id from stripe_events
           where stripe_event_id = ? and status in ('received', 'failed')
           for update skip locked`,
          [event.id],
        );
        if (!claimed.length) return { outcome: 'duplicate' } as const;
        const outcome = await this.dispatch(tx, event);
        await tx.execute(
          `update stripe_events set status = ?, processed_at = now(), attempts = attempts + 1, error = null where id = ?`,
          [outcome, claimed[0].id],
        );
        return { outcome };
      });
    } catch (error) {
      const message = scrubError(error);
      this.log.error({ err: error, eventId: event.id, type: event.type }, 'stripe event failed to apply');
      await this.orm.em
        .fork()
        .execute(
          `update stripe_events set status = 'failed', attempts = attempts + 1, error = ? where stripe_event_id = ? and status in ('received', 'failed')`,
          [message, event.id],
        );
      return { outcome: 'failed', error: message };
    }
  }

  private async dispatch(em: EntityManager, event: StripeEventSnapshot): Promise<HandlerOutcome> {
    const handler = HANDLERS[event.type];
    if (!handler) return 'ignored';
    return handler(event, { em, gateway: this.gateway, log: this.log });
  }
}
