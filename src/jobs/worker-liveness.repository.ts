import type { Pool } from 'pg';
import { JOBS_SCHEMA } from '../db/schemas';

/**
 * Which workers of the job engine are alive, so that the jobs and queues a killed worker had
 * locked are freed within a minute rather than after graphile-worker's own four hours. Each
 * worker process heartbeats the ids of its graphile workers; locks held by an id with no recent
 * heartbeat, for longer than the same limit, are released with graphile-worker's
 * `force_unlock_workers`, and the job runs again (applying is idempotent: see StripeObjectApplier).
 */
export class WorkerLivenessRepository {
  constructor(private readonly pool: Pool) {}

  async ensureSchema(): Promise<void> {
    await this.pool.query(`create schema if not exists ${JOBS_SCHEMA}`);
    await this.pool.query(
      `create table if not exists ${JOBS_SCHEMA}.workers (worker_id text primary key, heartbeat_at timestamptz not null default now())`,
    );
  }

  async heartbeat(workerIds: string[]): Promise<void> {
    if (!workerIds.length) return;
    await this.pool.query(
      `insert into ${JOBS_SCHEMA}.workers (worker_id, heartbeat_at) select unnest($1::text[]), now()
       on conflict (worker_id) do update set heartbeat_at = now()`,
      [workerIds],
    );
  }

  async forget(workerIds: string[]): Promise<void> {
    if (!workerIds.length) return;
    await this.pool.query(`delete from ${JOBS_SCHEMA}.workers where worker_id = any($1::text[])`, [workerIds]);
  }

  /** Frees what workers silent for `deadAfterSeconds` still hold; returns their ids. */
  async unlockDead(deadAfterSeconds: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ worker_id: string }>(
      `with locks as (
         select locked_by, locked_at from graphile_worker._private_jobs where locked_by is not null
         union all
         select locked_by, locked_at from graphile_worker._private_job_queues where locked_by is not null
       )
       select distinct locked_by as worker_id from locks
        where locked_at < now() - make_interval(secs => $1)
          and not exists (
            select 1 from ${JOBS_SCHEMA}.workers w
             where w.worker_id = locks.locked_by and w.heartbeat_at > now() - make_interval(secs => $1)
          )`,
      [deadAfterSeconds],
    );
    const dead = rows.map((r) => r.worker_id);
    if (dead.length) {
      await this.pool.query(`select graphile_worker.force_unlock_workers($1::text[])`, [dead]);
      await this.forget(dead);
    }
    return dead;
  }
}
