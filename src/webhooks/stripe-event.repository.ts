import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { ClientBase } from 'pg';
import type { StripeEventSnapshot } from '../stripe/stripe.gateway';
import type { JobQueueRepository, StripeObjectJob, StripeObjectRef } from '../jobs/job-queue.repository';
import type { StripeEventStatus } from './stripe-event.entity';

/** A ledger row as the job engine reads it. */
export interface PendingEvent {
  id: string;
  stripe_event_id: string;
  type: string;
  payload: Record<string, unknown>;
}

/** A ledger row with what re-enqueueing needs. */
export interface StoredEvent extends PendingEvent {
  status: StripeEventStatus;
  object_type: string | null;
  object_id: string | null;
}

const NUL = '\u0000';

/** `\u0000` as the six characters `\`, `u`, `0`, `0`, `0`, `0`: PostgreSQL `text` and `jsonb` refuse the character itself. */
export function withoutNul(text: string): string {
  return text.includes(NUL) ? text.split(NUL).join('\\u0000') : text;
}

function escapeNul(value: unknown): unknown {
  if (typeof value === 'string') return withoutNul(value);
  if (Array.isArray(value)) return value.map(escapeNul);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [withoutNul(k), escapeNul(v)]));
  }
  return value;
}

/**
 * The payload as JSON PostgreSQL `jsonb` accepts. A signed event holding `\u0000` (which jsonb
 * refuses) is stored with it escaped rather than refused with a 500 that Stripe would retry for
 * days; the object itself is refetched from Stripe when the event is applied.
 */
export function storableJson(payload: Record<string, unknown>): string {
  const json = JSON.stringify(payload);
  return json.includes('\\u0000') ? JSON.stringify(escapeNul(payload)) : json;
}

/**
 * SQL of the `stripe_events` ledger. The webhook route records on a plain `pg` connection of
 * the API's pool (no unit of work); the job engine claims and marks events inside the
 * EntityManager transaction that applies them, so the marks commit with the rows they describe.
 */
export class StripeEventRepository {
  constructor(private readonly jobs: JobQueueRepository) {}

  /**
   * Inserts the event unless its id is known and, when it is to be applied, enqueues the job of
   * its object, in ONE statement (a data-modifying CTE): one round trip, atomic like any
   * statement, so either both exist or neither, and the job is enqueued only by the delivery that
   * inserted the row. A delivery racing another of the same event waits for the first insert to
   * commit and then does nothing.
   */
  async recordAndEnqueue(
    client: ClientBase,
    event: StripeEventSnapshot,
    ref: StripeObjectRef | null,
    apply: boolean,
  ): Promise<'recorded' | 'ignored' | 'duplicate'> {
    const status: StripeEventStatus = apply && ref ? 'received' : 'ignored';
    const values: unknown[] = [
      randomUUID(),
      withoutNul(event.id),
      withoutNul(event.type),
      event.livemode,
      event.apiVersion === null ? null : withoutNul(event.apiVersion),
      storableJson(event.payload),
      event.createdAt,
      status,
      ref?.objectType ?? null,
      ref?.objectId ?? null,
    ];
    const job = status === 'received' && ref ? this.jobs.stripeObjectJobCall(ref, values.length + 1) : null;
    const { rows } = await client.query<{ inserted: number }>(
      `with inserted as (
         insert into stripe_events (id, stripe_event_id, type, livemode, api_version, payload, stripe_created_at, received_at,
                                    processed_at, status, attempts, object_type, object_id)
         values ($1, $2, $3, $4, $5, $6::jsonb, $7, now(), case when $8 = 'ignored' then now() end, $8, 0, $9, $10)
         on conflict (stripe_event_id) do nothing
         returning id
       )${job ? `, queued as (select ${job.sql} from inserted)` : ''}
       select (select count(*)::int from inserted) as inserted${job ? ', (select count(*)::int from queued) as queued' : ''}`,
      job ? [...values, ...job.values] : values,
    );
    if (!rows[0].inserted) return 'duplicate';
    return status === 'received' ? 'recorded' : 'ignored';
  }

  /** The events of one object still to apply (received, or failed and being retried), oldest first. */
  pendingForObject(em: EntityManager, job: StripeObjectJob): Promise<PendingEvent[]> {
    return em.execute(
      `select id, stripe_event_id, type, payload from stripe_events
        where object_type = ? and object_id = ? and status in ('received', 'failed')
        order by stripe_created_at, received_at`,
      [job.objectType, job.objectId],
    );
  }

  /**
   * Locks the given events for the applying transaction and returns those still pending: an
   * event another worker applied meanwhile is left out, so each event is applied once.
   */
  async claim(tx: EntityManager, ids: string[]): Promise<string[]> {
    if (!ids.length) return [];
    const rows: { id: string }[] = await tx.execute(
      `select id from stripe_events where id in (?) and status in ('received', 'failed') for update`,
      [ids],
    );
    return rows.map((r) => r.id);
  }

  async markApplied(tx: EntityManager, ids: string[], outcome: 'processed' | 'ignored'): Promise<void> {
    if (!ids.length) return;
    await tx.execute(
      `update stripe_events set status = ?, processed_at = now(), attempts = attempts + 1, error = null where id in (?)`,
      [outcome, ids],
    );
  }

  async markFailed(em: EntityManager, ids: string[], error: string): Promise<void> {
    if (!ids.length) return;
    await em.execute(
      `update stripe_events set status = 'failed', attempts = attempts + 1, error = ?
        where id in (?) and status in ('received', 'failed')`,
      [error, ids],
    );
  }

  /** The `created` of the newest event recorded (the catch-up lists Stripe's events after it). */
  async newestCreatedAt(client: ClientBase): Promise<Date | null> {
    const { rows } = await client.query<{ newest: Date | null }>(`select max(stripe_created_at) as newest from stripe_events`);
    return rows[0].newest;
  }

  /** Which of these event ids are recorded. */
  async knownIds(client: ClientBase, ids: string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    const { rows } = await client.query<{ stripe_event_id: string }>(
      `select stripe_event_id from stripe_events where stripe_event_id = any($1::text[])`,
      [ids],
    );
    return new Set(rows.map((r) => r.stripe_event_id));
  }

  /**
   * Events recorded more than `olderThanSeconds` ago and never applied nor failed: their job was
   * lost with a worker killed mid-way (graphile-worker frees a dead worker's jobs only after
   * hours), so the catch-up enqueues them again.
   */
  staleReceived(client: ClientBase, olderThanSeconds: number, limit = 1000): Promise<StoredEvent[]> {
    return this.select(
      client,
      `status = 'received' and received_at < now() - make_interval(secs => $1) order by received_at limit $2`,
      [olderThanSeconds, limit],
    );
  }

  /** Failed events, oldest first, or the ones named (any status). */
  find(client: ClientBase, options: { eventIds?: string[]; limit?: number }): Promise<StoredEvent[]> {
    return options.eventIds?.length
      ? this.select(client, `stripe_event_id = any($1::text[])`, [options.eventIds])
      : this.select(client, `status = 'failed' order by stripe_created_at, received_at limit $1`, [options.limit ?? 1000]);
  }

  /** Marks these failed events as received again and enqueues their objects, in one transaction. */
  async requeue(client: ClientBase, events: StoredEvent[], refOf: (event: StoredEvent) => StripeObjectRef | null): Promise<void> {
    await client.query('begin');
    try {
      await client.query(`update stripe_events set status = 'received' where id = any($1::uuid[]) and status = 'failed'`, [
        events.map((e) => e.id),
      ]);
      const seen = new Set<string>();
      for (const event of events) {
        const ref = refOf(event);
        if (!ref || seen.has(`${ref.objectType}:${ref.objectId}`)) continue;
        seen.add(`${ref.objectType}:${ref.objectId}`);
        await this.jobs.addStripeObjectJob(client, ref);
      }
      await client.query('commit');
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    }
  }

  private async select(client: ClientBase, where: string, values: unknown[]): Promise<StoredEvent[]> {
    const { rows } = await client.query<StoredEvent>(
      `select id, stripe_event_id, type, status, payload, object_type, object_id from stripe_events where ${where}`,
      values,
    );
    return rows;
  }
}
