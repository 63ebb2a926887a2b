import { LRUCache } from 'lru-cache';
import type { FeatureState } from './entitlement.repository';

/** Bytes of definitions kept per process (about 20,000 customers with a handful of features and limits each). */
export const DEFINITIONS_CACHE_MAX_BYTES = 8 * 2 ** 20;
/**
 * How long an entry is served at most. Writes drop entries at once, in every instance (see
 * definitions-invalidation.ts); this bounds how long a missed invalidation lasts: a listener
 * connection that dropped, or one behind PgBouncer in transaction mode, where LISTEN never hears
 * anything.
 */
export const DEFINITIONS_CACHE_TTL_MS = 5_000;

/** A limit of one of the customer's billing subscriptions' plans, with the period it counts (null: none known, the calendar month applies). */
export interface LimitDefinition {
  subscriptionId: string;
  meter: string;
  limit: number;
  kind: 'hard' | 'soft';
  periodStart: Date | null;
  periodEnd: Date | null;
}

/** A user's customer row, as far as the API shows it. */
export interface KnownCustomer {
  id: string;
  email: string | null;
}

type Entry = FeatureState[] | LimitDefinition[] | KnownCustomer | string;

/**
 * What gated requests ask about a customer on every call (its features, its plans' limits, and
 * which customer a user is) and what changes only when the customer's subscriptions, its Stripe
 * entitlements or the catalog change. Usage counts are never kept here: they move with every
 * event. Entries are shared by concurrent requests: read them, never change them.
 *
 * A load that started before an invalidation is answered to its caller but not kept, so a write
 * that commits while a read is under way is never hidden behind the read's older result.
 */
export class DefinitionsCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly loading = new Map<string, Promise<Entry>>();
  /** Bumped by every invalidation. */
  private generation = 0;

  constructor(options: { maxBytes?: number; ttlMs?: number; now?: () => number } = {}) {
    this.entries = new LRUCache<string, Entry>({
      maxSize: options.maxBytes ?? DEFINITIONS_CACHE_MAX_BYTES,
      sizeCalculation: (value, key) => 2 * key.length + 2 * JSON.stringify(value).length + 64,
      ttl: options.ttlMs ?? DEFINITIONS_CACHE_TTL_MS,
      ttlAutopurge: false,
      ...(options.now ? { perf: { now: options.now }, ttlResolution: 0 } : {}),
    });
  }

  features(customerId: string, load: () => Promise<FeatureState[]>): Promise<FeatureState[]> {
    return this.through(`features:${customerId}`, load);
  }

  limits(customerId: string, load: () => Promise<LimitDefinition[]>): Promise<LimitDefinition[]> {
    return this.through(`limits:${customerId}`, load);
  }

  /** User `userId`'s customer; `load` answering null (no customer yet) is not kept. */
  async customerOfUser(userId: string, load: () => Promise<KnownCustomer | null>): Promise<KnownCustomer | null> {
    const hit = this.entries.get(`user:${userId}`) as KnownCustomer | undefined;
    if (hit) return hit;
    const generation = this.generation;
    const customer = await load();
    if (customer && generation === this.generation) {
      this.entries.set(`user:${userId}`, customer);
      this.entries.set(`user-of:${customer.id}`, userId);
    }
    return customer;
  }

  /**
   * The limits held for user `userId`'s customer, without loading anything or waiting: undefined
   * unless both the user's customer and its limits are held. For callers that only need a hint
   * on the hot path, and load (`customerOfUser`, `limits`) when there is none.
   */
  peekLimitsOfUser(userId: string): LimitDefinition[] | undefined {
    const customer = this.entries.get(`user:${userId}`) as KnownCustomer | undefined;
    return customer ? (this.entries.get(`limits:${customer.id}`) as LimitDefinition[] | undefined) : undefined;
  }

  /** Drops what is known of one customer (its row included), or of every customer's plans (null: the catalog changed). */
  invalidate(customerId: string | null): void {
    this.generation++;
    this.loading.clear();
    if (customerId === null) {
      // Customer rows do not depend on the catalog.
      for (const key of [...this.entries.keys()]) if (key.startsWith('features:') || key.startsWith('limits:')) this.entries.delete(key);
      return;
    }
    this.entries.delete(`features:${customerId}`);
    this.entries.delete(`limits:${customerId}`);
    const userId = this.entries.get(`user-of:${customerId}`);
    if (typeof userId === 'string') this.entries.delete(`user:${userId}`);
    this.entries.delete(`user-of:${customerId}`);
  }

  /** Drops everything (the invalidation channel was down: some changes may have gone unheard). */
  clear(): void {
    this.generation++;
    this.loading.clear();
    this.entries.clear();
  }

  /** Entries held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  private through<T extends Entry>(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit !== undefined) return Promise.resolve(hit as T);
    const pending = this.loading.get(key);
    if (pending) return pending as Promise<T>;
    const generation = this.generation;
    const loading = load().then(
      (value) => {
        if (this.loading.get(key) === loading) this.loading.delete(key);
        if (generation === this.generation) this.entries.set(key, value);
        return value;
      },
      (error: unknown) => {
        if (this.loading.get(key) === loading) this.loading.delete(key);
        throw error;
      },
    );
    this.loading.set(key, loading);
    return loading;
  }
}
