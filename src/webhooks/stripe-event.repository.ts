import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { ClientBase } from 'pg';
import type { StripeEventSnapshot } from '../stripe/stripe.gateway';
import { TASKS, type JobQueueRepository, type StripeObjectJob, type StripeObjectRef } from '../jobs/job-queue.repository';
import type { StripeEventStatus } from './stripe-event.entity';

/** How far past its arrival an event's `created` may be and still count as Stripe's real time (clock skew). */
const FUTURE_SKEW_SECONDS = 300;

export type ReceiveOutcome = 'recorded' | 'ignored' | 'duplicate';

/** A verified event to record, what it is about, and whether it is to be applied. */
export interface IngestItem {
  event: StripeEventSnapshot;
  ref: StripeObjectRef | null;
  apply: boolean;
  /** The event's JSON as received (the signed body), stored as is instead of serialising `event.payload` again. */
  payloadJson?: string;
}

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

  /** See recordAndEnqueueMany: one event. */
  async recordAndEnqueue(
    client: ClientBase,
    event: StripeEventSnapshot,
    ref: StripeObjectRef | null,
    apply: boolean,
  ): Promise<ReceiveOutcome> {
    const [outcome] = await this.recordAndEnqueueMany(client, [{ event, ref, apply }]);
    return outcome;
  }

  /**
   * Inserts each event unless its id is known and, for those to be applied, enqueues the jobs of
   * their objects (one per object however many of its events come), in ONE statement (data-
   * modifying CTEs): one round trip and one commit for all, atomic like any statement, so either
   * rows and jobs all exist or none does, and a job is enqueued only for events this statement
   * inserted. A delivery racing another of the same event (in this statement or another) waits
   * for the first insert to commit and then does nothing: it is a duplicate.
   *
   * One commit for many deliveries matters: graphile-worker's add_job sends a NOTIFY, and
   * PostgreSQL serialises the commits of notifying transactions (a global lock held through the
   * WAL flush), which held one event per statement to about a quarter of a plain insert's rate.
   */
  async recordAndEnqueueMany(client: ClientBase, items: readonly IngestItem[]): Promise<ReceiveOutcome[]> {
    if (!items.length) return [];
    const cols = { id: [] as string[], eventId: [] as string[], type: [] as string[], livemode: [] as boolean[], apiVersion: [] as (string | null)[] };
    const more = { payload: [] as string[], created: [] as Date[], status: [] as StripeEventStatus[], objectType: [] as (string | null)[], objectId: [] as (string | null)[] };
    const job = { payload: [] as (string | null)[], queue: [] as (string | null)[], key: [] as (string | null)[] };
    for (const { event, ref, apply, payloadJson } of items) {
      const status: StripeEventStatus = apply && ref ? 'received' : 'ignored';
      cols.id.push(randomUUID());
      cols.eventId.push(withoutNul(event.id));
      cols.type.push(withoutNul(event.type));
      cols.livemode.push(event.livemode);
      cols.apiVersion.push(event.apiVersion === null ? null : withoutNul(event.apiVersion));
      // The body as received is the event's JSON already, unless it holds an escaped NUL.
      more.payload.push(payloadJson !== undefined && !payloadJson.includes('\\u0000') ? payloadJson : storableJson(event.payload));
      more.created.push(event.createdAt);
      more.status.push(status);
      more.objectType.push(ref?.objectType ?? null);
      more.objectId.push(ref?.objectId ?? null);
      const spec = status === 'received' && ref ? this.jobs.stripeObjectJobSpec(ref) : null;
      job.payload.push(spec?.payload ?? null);
      job.queue.push(spec?.queue ?? null);
      job.key.push(spec?.key ?? null);
    }
    const jobs = this.jobs.stripeObjectJobsCtes('specs');
    const { rows } = await client.query<{ id: string }>(
      `with input as (
         select * from unnest($1::uuid[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::text[], $10::text[],
                              $11::text[], $12::text[], $13::text[])
           as t(id, stripe_event_id, type, livemode, api_version, payload, stripe_created_at, status, object_type, object_id, job_payload, job_queue, job_key)
       ),
       inserted as (
         insert into stripe_events (id, stripe_event_id, type, livemode, api_version, payload, stripe_created_at, received_at,
                                    processed_at, status, attempts, object_type, object_id)
         select id, stripe_event_id, type, livemode, api_version, payload::jsonb, stripe_created_at, now(),
                case when status = 'ignored' then now() end, status, 0, object_type, object_id
           from input
         on conflict (stripe_event_id) do nothing
         returning id
       ),
       specs as (
         select array_agg(row($14::text, job_payload::json, job_queue, null, $15::int, job_key, null, null)::graphile_worker.job_spec) as a
           from (select distinct on (i.job_key) i.job_key, i.job_payload, i.job_queue
                   from input i join inserted x on x.id = i.id
                  where i.job_key is not null
                  order by i.job_key) k
       ),
       ${jobs.sql}
       select id from inserted where (select count(*) from ${jobs.added}) >= 0`,
      [
        cols.id, cols.eventId, cols.type, cols.livemode, cols.apiVersion,
        more.payload, more.created, more.status, more.objectType, more.objectId,
        job.payload, job.queue, job.key, TASKS.stripeObject, this.jobs.stripeObjectMaxAttempts,
      ],
    );
    const inserted = new Set(rows.map((r) => r.id));
    return items.map((_, i) => (!inserted.has(cols.id[i]) ? 'duplicate' : more.status[i] === 'received' ? 'recorded' : 'ignored'));
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
    // Events of a test clock's customers are dated in the clock's time, which may be months
    // ahead: such an event would put the catch-up's start past every real event to come. Only
    // events dated no later than a little after their arrival count.
    const { rows } = await client.query<{ newest: Date | null }>(
      `select max(stripe_created_at) as newest from stripe_events where stripe_created_at <= received_at + interval '${FUTURE_SKEW_SECONDS} seconds'`,
    );
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
