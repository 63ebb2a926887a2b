/**
 * Schemas the app creates outside MikroORM's entities. The schema generator is told to leave
 * them alone, so a schema diff never offers to drop them.
 */
export const RATE_LIMIT_SCHEMA = 'tollgate_rate_limits';

/** The job engine's schema (graphile-worker's own migrations) and ours beside it (worker liveness). */
export const JOB_QUEUE_SCHEMA = 'graphile_worker';
export const JOBS_SCHEMA = 'tollgate_jobs';
