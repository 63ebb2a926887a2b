import 'reflect-metadata';
import { MikroORM, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import path from 'node:path';
import { Client } from 'pg';
import { migrationsList } from '../../migrations';
import { RATE_LIMIT_SCHEMA } from '../security/mutation-rate-limiter';
import { entities } from './entities';

export interface OrmOptions {
  url: string;
  poolMax?: number;
  /** Called for every SQL statement (tests count queries with it). */
  onQuery?: (sql: string) => void;
}

export function ormConfig(options: OrmOptions): Options {
  return {
    clientUrl: options.url,
    entities,
    extensions: [Migrator],
    // Services get a forked EntityManager; a stray use of the global one throws.
    allowGlobalContext: false,
    pool: { min: 0, max: options.poolMax ?? 10 },
    forceUtcTimezone: true,
    debug: options.onQuery ? ['query'] : false,
    logger: options.onQuery ? (message: string) => options.onQuery?.(message) : undefined,
    migrations: {
      tableName: 'mikro_orm_migrations',
      migrationsList,
      path: path.join(__dirname, '../../migrations'),
      pathTs: path.join(__dirname, '../../migrations'),
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
    },
    discovery: { warnWhenNoEntities: true },
    // The mutation rate limiter keeps its own table in its own schema (created at start-up, no
    // entity); without this the schema diff would offer to drop it.
    schemaGenerator: { ignoreSchema: [RATE_LIMIT_SCHEMA] },
  };
}

/** Connects and returns an ORM instance. Call `orm.close()` when done. */
export async function initORM(options: OrmOptions): Promise<MikroORM> {
  return MikroORM.init(ormConfig(options));
}

const MIGRATION_LOCK = 7_406_111; // any constant shared by every instance

/**
 * Applies every pending migration; returns the names applied. Instances starting together take
 * turns through a PostgreSQL advisory lock, so a migration never runs twice at once.
 */
export async function migrate(orm: MikroORM): Promise<string[]> {
  const client = new Client({ connectionString: orm.config.get('clientUrl') });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const applied = await orm.getMigrator().up();
    return applied.map((m) => m.name);
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await client.end();
  }
}
