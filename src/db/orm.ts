import 'reflect-metadata';
import { MikroORM, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import path from 'node:path';
import { Client } from 'pg';
import { migrationsList } from '../../migrations';
import { RATE_LIMIT_SCHEMA } from './schemas';
import { entities } from './entities';

export interface OrmOptions {
  url: string;
  poolMax?: number;
  /** Called for every SQL statement (tests count queries with it). */
  onQuery?: (sql: string) => void;
  /**
   * Where the query builder's own warnings go (a dropped connection, say). Without it knex
   * prints them with console.log, outside the JSON logs and their secret scrubbing.
   */
  log?: { warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void; debug(obj: object, msg?: string): void };
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
    driverOptions: {
      log: {
        warn: (message: unknown) => options.log?.warn({ knex: String(message) }, 'database client warning'),
        error: (message: unknown) => options.log?.error({ knex: String(message) }, 'database client error'),
        deprecate: (message: unknown) => options.log?.debug({ knex: String(message) }, 'database client deprecation'),
        debug: (message: unknown) => options.log?.debug({ knex: String(message) }, 'database client debug'),
      },
    },
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
