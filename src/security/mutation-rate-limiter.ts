import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

/**
 * The limiter's own schema: the ORM's schema diff only looks at the schemas its entities use, so
 * a table here never shows up as something to drop, and no migration is needed for it.
 */
export const RATE_LIMIT_SCHEMA = 'tollgate_rate_limits';
export const RATE_LIMIT_TABLE = 'mutation_budget';

export type RateLimitDecision = { allowed: true; remaining: number } | { allowed: false; retryAfterSeconds: number };

export interface MutationRateLimiterOptions {
  /** Separates budgets kept in the same table. */
  keyPrefix: string;
  /** Points (mutation fields) per user per minute. */
  pointsPerMinute: number;
  store: 'postgres' | 'memory';
  /** The shared database for the postgres store. */
  orm?: MikroORM;
  log: Logger;
}

/**
 * A per-user budget of mutations over a fixed one-minute window. With the postgres store every
 * instance draws from the same row, so adding instances does not multiply anyone's budget.
 */
export class MutationRateLimiter {
  private constructor(
    private readonly limiter: RateLimiterAbstract,
    readonly store: 'postgres' | 'memory',
  ) {}

  static async create(options: MutationRateLimiterOptions): Promise<MutationRateLimiter> {
    const { pointsPerMinute: points, keyPrefix, log } = options;
    const duration = 60;
    if (options.store === 'memory') {
      return new MutationRateLimiter(new RateLimiterMemory({ keyPrefix, points, duration }), 'memory');
    }
    if (!options.orm) throw new Error('The postgres rate-limit store needs the database');
    const knex = options.orm.em.getConnection().getKnex();
    try {
      await knex.raw(`create schema if not exists "${RATE_LIMIT_SCHEMA}"`);
    } catch (error) {
      // Instances starting together race on the catalog: 23505/42P06 mean another one created it.
      const code = (error as { code?: string }).code;
      if (code !== '23505' && code !== '42P06') throw error;
    }
    const limiter = await new Promise<RateLimiterPostgres>((resolve, reject) => {
      const created: RateLimiterPostgres = new RateLimiterPostgres(
        {
          storeClient: knex,
          storeType: 'knex',
          schemaName: RATE_LIMIT_SCHEMA,
          tableName: RATE_LIMIT_TABLE,
          keyPrefix,
          points,
          duration,
          // While the database is unreachable the budget is kept per process rather than
          // failing every mutation on the limiter (they would fail on the database anyway).
          insuranceLimiter: new RateLimiterMemory({ keyPrefix, points, duration }),
        },
        (error?: Error) => (error ? reject(error) : resolve(created)),
      );
    });
    log.debug({ store: 'postgres', keyPrefix, points, duration }, 'mutation rate limit ready');
    return new MutationRateLimiter(limiter, 'postgres');
  }

  /** Takes `points` from `key`'s budget; refused when that would exceed it. */
  async consume(key: string, points: number): Promise<RateLimitDecision> {
    if (points <= 0) return { allowed: true, remaining: Number.POSITIVE_INFINITY };
    try {
      const res = await this.limiter.consume(key, points);
      return { allowed: true, remaining: res.remainingPoints };
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
      }
      throw rejection;
    }
  }
}
