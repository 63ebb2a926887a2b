import type { Logger } from 'pino';
import type { Pool } from 'pg';
import type { StripeGateway } from '../stripe/stripe.gateway';
import type { EventHandlerRegistry } from './handlers/handler-registry';
import type { StripeEventRepository } from './stripe-event.repository';
import { stripeObjectRefOf, stripeObjectRefOfPayload } from './stripe-object-ref';

/** Events of the same second as the newest one may still be missing: list from a little before it. */
const OVERLAP_SECONDS = 60;
/** At most this many pages (100 events each) per run; the next run goes on. */
const MAX_PAGES = 100;

export interface CatchUpResult {
  /** Events Stripe has that were never delivered here, now recorded and enqueued. */
  missed: number;
  /** Recorded events whose job was lost (a worker killed mid-way), enqueued again. */
  requeued: number;
}

/**
 * Heals missed deliveries: lists Stripe's events (`/v1/events`, kept 30 days) created since the
 * newest event in the ledger, and records and enqueues the ones never received, exactly as a
 * delivery would. Also enqueues again events recorded long ago and still not applied. Runs on
 * the job engine at worker start and on a schedule.
 */
export class EventCatchUpService {
  constructor(
    private readonly deps: {
      pool: Pool;
      gateway: StripeGateway;
      events: StripeEventRepository;
      handlers: EventHandlerRegistry;
      log: Logger;
      staleAfterSeconds: number;
    },
  ) {}

  async run(): Promise<CatchUpResult> {
    const { pool, gateway, events, handlers, log, staleAfterSeconds } = this.deps;
    const client = await pool.connect();
    try {
      let missed = 0;
      const newest = await events.newestCreatedAt(client);
      // An empty ledger has nothing to catch up from: history before the first delivery is not ours to apply.
      if (newest) {
        const createdAfter = new Date(newest.getTime() - OVERLAP_SECONDS * 1000);
        const expectLive = gateway.mode === 'live';
        let cursor: string | undefined;
        for (let page = 0; page < MAX_PAGES; page++) {
          const listed = await gateway.listEvents({ createdAfter, startingAfter: cursor, limit: 100 });
          const known = await events.knownIds(client, listed.data.map((e) => e.id));
          for (const event of listed.data) {
            if (known.has(event.id) || event.livemode !== expectLive) continue;
            const outcome = await events.recordAndEnqueue(client, event, stripeObjectRefOf(event.object), handlers.handles(event.type));
            if (outcome !== 'duplicate') missed++;
          }
          if (!listed.hasMore || !listed.nextCursor) break;
          cursor = listed.nextCursor;
        }
      }
      const stale = await events.staleReceived(client, staleAfterSeconds);
      if (stale.length) await events.requeue(client, stale, (e) => stripeObjectRefOfPayload(e.payload));
      if (missed || stale.length) log.info({ missed, requeued: stale.length }, 'stripe events caught up');
      return { missed, requeued: stale.length };
    } finally {
      client.release();
    }
  }
}
