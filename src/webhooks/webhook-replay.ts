import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { toEventSnapshot } from '../stripe/stripe.mappers';
import type { StripeGateway } from '../stripe/stripe.gateway';
import { WebhookService, type ReceiveResult } from './webhook.service';

export interface ReplayResult {
  eventId: string;
  type: string;
  outcome: ReceiveResult['outcome'] | 'not_found' | 'not_replayable';
  error?: string;
}

/**
 * Re-applies stored events: every `failed` one (oldest first), or the ones named. The payload
 * in the ledger is the event exactly as Stripe signed it, so replaying goes through the same
 * handlers and the same one-apply-per-event claim as a delivery. Processed and ignored events
 * are left alone: applying them again is never needed, and a claim would refuse it anyway.
 */
export async function replayEvents(
  deps: { orm: MikroORM; gateway: StripeGateway; log: Logger },
  options: { eventIds?: string[]; limit?: number } = {},
): Promise<ReplayResult[]> {
  const service = new WebhookService(deps.orm, deps.gateway, deps.log);
  const em = deps.orm.em.fork();
  const named = options.eventIds?.length ? options.eventIds : undefined;
  const rows: { stripe_event_id: string; type: string; status: string; payload: Record<string, unknown> }[] = named
    ? await em.execute(`select stripe_event_id, type, status, payload from stripe_events where stripe_event_id in (?)`, [named])
    : await em.execute(
        `select stripe_event_id, type, status, payload from stripe_events where status = 'failed' order by stripe_created_at, received_at limit ?`,
        [options.limit ?? 1000],
      );

  const results: ReplayResult[] = [];
  for (const id of named ?? rows.map((r) => r.stripe_event_id)) {
    const row = rows.find((r) => r.stripe_event_id === id);
    if (!row) {
      results.push({ eventId: id, type: '', outcome: 'not_found' });
      continue;
    }
    if (row.status !== 'failed' && row.status !== 'received') {
      results.push({ eventId: id, type: row.type, outcome: 'not_replayable' });
      continue;
    }
    const event = toEventSnapshot(row.payload as unknown as Parameters<typeof toEventSnapshot>[0]);
    const result = await service.apply(event);
    results.push({ eventId: id, type: row.type, outcome: result.outcome, ...('error' in result ? { error: result.error } : {}) });
  }
  return results;
}
