import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { stripeEventsApplied } from '../common/metrics';
import type { StripeObjectJob } from '../jobs/job-queue.repository';
import type { RateBudget } from '../jobs/rate-budget';
import { toEventSnapshot } from '../stripe/stripe.mappers';
import type { StripeGateway } from '../stripe/stripe.gateway';
import type { EventHandlerRegistry } from './handlers/handler-registry';
import type { HandlerOutcome } from './handlers/types';
import type { PendingEvent, StripeEventRepository } from './stripe-event.repository';
import { scrubError } from './webhook.service';

export interface ApplyResult {
  /** Null when nothing was pending (applied by an earlier job). */
  outcome: HandlerOutcome | null;
  events: number;
}

/**
 * The event applied on behalf of all the pending ones: a `*.deleted` event if there is one (Stripe
 * may no longer have the object to refetch), otherwise the newest.
 */
function leadEvent(pending: PendingEvent[]): PendingEvent {
  return pending.find((e) => e.type.endsWith('.deleted')) ?? pending[pending.length - 1];
}

/**
 * Applies the pending events of one Stripe object, the `stripe_object` job:
 *
 * 1. Reads the object's pending events from the ledger (no transaction).
 * 2. Refetches the object from Stripe, outside any transaction, within the worker's Stripe
 *    budget: one read for however many events the burst brought.
 * 3. In one short transaction: locks those events still pending (another worker may have applied
 *    them meanwhile: then nothing is written), writes the snapshot (rows only move forward, by
 *    `stripe_synced_at`), and marks every covered event with the outcome.
 *
 * A failure (Stripe 429/5xx, a price not in the catalog) marks the events `failed` with attempts
 * and error, and is rethrown so the job engine retries the job with exponential backoff.
 */
export class StripeObjectApplier {
  constructor(
    private readonly deps: {
      orm: MikroORM;
      gateway: StripeGateway;
      log: Logger;
      events: StripeEventRepository;
      handlers: EventHandlerRegistry;
      budget: RateBudget;
      /** Called after an application committed (in-process caches of the API drop what changed). */
      onApplied?: (job: StripeObjectJob, outcome: HandlerOutcome) => void;
    },
  ) {}

  async apply(job: StripeObjectJob): Promise<ApplyResult> {
    const { orm, gateway, log, events, handlers, budget } = this.deps;
    const pending = await events.pendingForObject(orm.em.fork(), job);
    if (!pending.length) return { outcome: null, events: 0 };
    const lead = leadEvent(pending);
    const event = toEventSnapshot(lead.payload as never);
    const handler = handlers.handlerFor(event.type);
    const ids = pending.map((e) => e.id);
    try {
      let outcome: HandlerOutcome | null = null;
      if (handler) {
        await budget.take();
        const fetched = await handler.refetch(event, { gateway, em: orm.em.fork() });
        outcome = await orm.em.fork().transactional(async (tx) => {
          const claimed = await events.claim(tx, ids);
          if (!claimed.length) return null;
          const result = await handler.apply(event, fetched, { em: tx, gateway, log });
          await events.markApplied(tx, claimed, result);
          return result;
        });
      } else {
        // A type whose handler was removed since it was recorded.
        await orm.em.fork().transactional(async (tx) => events.markApplied(tx, await events.claim(tx, ids), 'ignored'));
        outcome = 'ignored';
      }
      if (outcome) {
        for (const e of pending) stripeEventsApplied.inc({ type: e.type, outcome });
        this.deps.onApplied?.(job, outcome);
      }
      return { outcome, events: pending.length };
    } catch (error) {
      const message = scrubError(error);
      log.warn({ err: error, object: `${job.objectType}:${job.objectId}`, events: pending.length }, 'stripe events failed to apply; the job will be retried');
      await events.markFailed(orm.em.fork(), ids, message);
      for (const e of pending) stripeEventsApplied.inc({ type: e.type, outcome: 'failed' });
      throw error;
    }
  }
}
