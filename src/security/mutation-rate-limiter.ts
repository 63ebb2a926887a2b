import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

import { RATE_LIMIT_SCHEMA } from '../db/schemas';

// The limiter's own schema: the ORM's schema diff only looks at the schemas its entities use, so
// a table there never shows up as something to drop, and no migration is needed for it.
export { RATE_LIMIT_SCHEMA };
export const RATE_LIMIT_TABLE = 'mutation_budget';

/** A budget is taken in at most this many slices a window ... */
const LEASES_PER_WINDOW = 50;
/** ... of at most this many points. */
const MAX_LEASE = 1000;
/** Leases kept before expired ones are first swept out. */
const MIN_SWEEP = 10_000;
/** Slices one request may wait for before it goes to the store alone. */
const MAX_LEASE_ROUNDS = 10;

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
  /** Lease count at which expired leases are first swept out (default 10,000). */
  minLeaseSweep?: number;
}

/**
 * A per-user budget of mutations over a fixed one-minute window. With the postgres store every
 * instance draws from the same row, so adding instances does not multiply anyone's budget.
 */
export class MutationRateLimiter {
  /** Points this process holds per key, taken from the shared budget ahead of use. */
  private readonly leases = new Map<string, { remaining: number; expiresAt: number }>();
  private readonly leasing = new Map<string, Promise<boolean>>();
  /** Lease count at which expired leases are swept out (each user that spent leaves one behind). */
  private sweepAt: number;

  private constructor(
    private readonly limiter: RateLimiterAbstract,
    readonly store: 'postgres' | 'memory',
    /**
     * Points taken from the shared store at a time (1: every consume goes to the store). With a
     * large budget (recordUsage's, by default 6,000 a minute) the process takes a slice of it at
     * once and spends that in memory, so the store is asked once per slice rather than once per
     * request. The budget still holds across instances: a slice is taken from the shared row
     * before any of it is spent. The price is that an instance may end a window holding an
     * unspent slice, so a user can be refused up to one slice per instance early.
     */
    readonly leaseSize = 1,
    private readonly minSweep = MIN_SWEEP,
  ) {
    this.sweepAt = minSweep;
  }

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
    const leaseSize = Math.max(1, Math.min(MAX_LEASE, Math.floor(points / LEASES_PER_WINDOW)));
    log.debug({ store: 'postgres', keyPrefix, points, duration, leaseSize }, 'mutation rate limit ready');
    return new MutationRateLimiter(limiter, 'postgres', leaseSize, options.minLeaseSweep);
  }

  /** Takes `points` from `key`'s budget; refused when that would exceed it. */
  async consume(key: string, points: number): Promise<RateLimitDecision> {
    if (points <= 0) return { allowed: true, remaining: Number.POSITIVE_INFINITY };
    if (points >= this.leaseSize) return this.consumeShared(key, points);
    // A slice at a time per key: concurrent requests wait for the one being taken, spend from it,
    // and whoever finds it spent takes the next.
    for (let round = 0; round < MAX_LEASE_ROUNDS; round++) {
      const fromLease = this.spendLease(key, points);
      if (fromLease) return fromLease;
      let leasing = this.leasing.get(key);
      if (!leasing) {
        leasing = this.takeLease(key).finally(() => this.leasing.delete(key));
        this.leasing.set(key, leasing);
      }
      // No whole slice left in the budget: the last points go one request at a time.
      if (!(await leasing)) break;
    }
    return this.consumeShared(key, points);
  }

  private spendLease(key: string, points: number): RateLimitDecision | null {
    const lease = this.leases.get(key);
    if (!lease) return null;
    if (lease.expiresAt <= Date.now()) {
      this.leases.delete(key);
      return null;
    }
    if (lease.remaining < points) return null;
    lease.remaining -= points;
    return { allowed: true, remaining: lease.remaining };
  }

  /** Takes a slice of `key`'s budget into this process; false when the budget has no whole slice left. */
  private async takeLease(key: string): Promise<boolean> {
    try {
      const res = await this.limiter.consume(key, this.leaseSize);
      this.leases.set(key, { remaining: this.leaseSize, expiresAt: Date.now() + res.msBeforeNext });
      if (this.leases.size >= this.sweepAt) this.sweepExpiredLeases();
      return true;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      // The store counts a refused take too; give the slice back so what is left stays usable.
      await this.limiter.reward(key, this.leaseSize).catch(() => undefined);
      return false;
    }
  }

  /** Drops leases past their window; the next sweep comes when the live ones have doubled. */
  private sweepExpiredLeases(): void {
    const now = Date.now();
    for (const [key, lease] of this.leases) if (lease.expiresAt <= now) this.leases.delete(key);
    this.sweepAt = Math.max(this.minSweep, 2 * this.leases.size);
  }

  /** Leases held for the postgres store's current window, by key. */
  get leaseCount(): number {
    return this.leases.size;
  }

  private async consumeShared(key: string, points: number): Promise<RateLimitDecision> {
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
