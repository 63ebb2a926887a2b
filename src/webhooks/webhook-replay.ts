import type { ClientBase } from 'pg';
import type { StripeEventRepository } from './stripe-event.repository';
import { stripeObjectRefOfPayload } from './stripe-object-ref';

export interface ReplayResult {
  eventId: string;
  type: string;
  outcome: 'enqueued' | 'not_found' | 'not_replayable';
}

/**
 * Enqueues stored events on the job engine again: every `failed` one (oldest first), or the ones
 * named. They are marked `received` and their objects' jobs are added (a job that used up its
 * attempts starts over), in one transaction; a worker then applies them through the same
 * handlers and the same one-apply-per-event claim as a delivery. Processed and ignored events are
 * left alone: applying them again is never needed.
 */
export async function replayEvents(
  client: ClientBase,
  events: StripeEventRepository,
  options: { eventIds?: string[]; limit?: number } = {},
): Promise<ReplayResult[]> {
  const named = options.eventIds?.length ? options.eventIds : undefined;
  const rows = await events.find(client, { eventIds: named, limit: options.limit });
  const results: ReplayResult[] = [];
  const replayable = rows.filter((r) => (r.status === 'failed' || r.status === 'received') && stripeObjectRefOfPayload(r.payload));
  for (const id of named ?? rows.map((r) => r.stripe_event_id)) {
    const row = rows.find((r) => r.stripe_event_id === id);
    if (!row) results.push({ eventId: id, type: '', outcome: 'not_found' });
    else results.push({ eventId: id, type: row.type, outcome: replayable.includes(row) ? 'enqueued' : 'not_replayable' });
  }
  if (replayable.length) await events.requeue(client, replayable, (e) => stripeObjectRefOfPayload(e.payload));
  return results;
}
