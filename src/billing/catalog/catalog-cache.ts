import type { EventArgs, EventSubscriber, FlushEventArgs, TransactionEventArgs } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Meter } from './meter.entity';
import { Price } from './price.entity';
import { Product } from './product.entity';

/**
 * How long a loaded catalog is served before it is read again. Writes through the ORM in this
 * process (product and price webhooks, catalog sync, the seeder) drop it at once; this bounds
 * how long another instance, or a write in raw SQL, goes unnoticed.
 */
export const CATALOG_CACHE_TTL_MS = 5_000;

export interface CatalogSnapshot {
  /** Every product, in catalog order (created, then code). */
  products: Product[];
  productsById: Map<string, Product>;
  /** Every price of each product (meters populated), in catalog order (created, then lookup key). */
  pricesByProduct: Map<string, Price[]>;
  pricesById: Map<string, Price>;
}

/**
 * The catalog (a few products and prices, read on every `products` query and every
 * subscription's `product`/`price`) held in memory, so those reads cost no database round trip.
 * Entities in a snapshot are shared by concurrent requests: read them, never change or flush them.
 */
export class CatalogCache {
  private snapshot: Promise<CatalogSnapshot> | null = null;
  /** The snapshot `snapshot` resolved to, once it has. */
  private loaded: CatalogSnapshot | null = null;
  private loadedAt = 0;
  /** Bumped by every invalidation, so a load that started before a write is not kept. */
  private generation = 0;

  constructor(
    private readonly load: () => Promise<CatalogSnapshot>,
    private readonly ttlMs = CATALOG_CACHE_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<CatalogSnapshot> {
    if (this.snapshot && this.now() - this.loadedAt < this.ttlMs) return this.snapshot;
    const generation = this.generation;
    const started = this.now();
    const loading = this.load();
    this.snapshot = loading;
    this.loaded = null;
    this.loadedAt = started;
    loading.then(
      (snapshot) => {
        if (this.snapshot !== loading) return;
        if (this.generation !== generation) this.snapshot = null;
        else this.loaded = snapshot;
      },
      () => {
        // A failed load is not cached: the next read tries again.
        if (this.snapshot === loading) this.snapshot = null;
      },
    );
    return loading;
  }

  invalidate(): void {
    this.generation++;
    this.snapshot = null;
    this.loaded = null;
  }

  /**
   * The current snapshot when it is loaded and still fresh, else null (then `get()` loads it).
   * Lets a resolver that runs once per row answer without a promise.
   */
  current(): CatalogSnapshot | null {
    return this.loaded && this.snapshot && this.now() - this.loadedAt < this.ttlMs ? this.loaded : null;
  }

  async products(includeInactive: boolean): Promise<Product[]> {
    const { products } = await this.get();
    return includeInactive ? products : products.filter((p) => p.active);
  }

  async pricesByProductIds(productIds: readonly string[], includeInactive: boolean): Promise<Price[][]> {
    const { pricesByProduct } = await this.get();
    return productIds.map((id) => {
      const prices = pricesByProduct.get(id) ?? [];
      return includeInactive ? prices : prices.filter((p) => p.active);
    });
  }
}

async function loadSnapshot(em: EntityManager): Promise<CatalogSnapshot> {
  // A fork of its own: the snapshot outlives the request that happened to load it.
  const fork = em.fork();
  const [products, prices] = await Promise.all([
    fork.find(Product, {}, { orderBy: { createdAt: 'asc', code: 'asc' } }),
    fork.find(Price, {}, { populate: ['meter'], orderBy: { createdAt: 'asc', lookupKey: 'asc' } }),
  ]);
  const pricesByProduct = new Map<string, Price[]>();
  for (const price of prices) {
    const list = pricesByProduct.get(price.product.id);
    if (list) list.push(price);
    else pricesByProduct.set(price.product.id, [price]);
  }
  return {
    products,
    productsById: new Map(products.map((p) => [p.id, p])),
    pricesByProduct,
    pricesById: new Map(prices.map((p) => [p.id, p])),
  };
}

/**
 * Drops the cache when the ORM writes a product, price or meter. Inside a transaction the
 * cache is dropped again when it commits (a read in between would still see the old rows).
 */
class CatalogWriteSubscriber implements EventSubscriber {
  private readonly pending = new WeakSet<object>();

  constructor(private readonly cache: CatalogCache) {}

  // Entity events of other entities (usage rows, events...) are not dispatched here at all.
  getSubscribedEntities() {
    return [Product, Price, Meter];
  }

  private changed(args: EventArgs<unknown>): void {
    this.cache.invalidate();
    this.pending.add(args.em);
  }

  afterCreate = (args: EventArgs<unknown>) => this.changed(args);
  afterUpdate = (args: EventArgs<unknown>) => this.changed(args);
  afterUpsert = (args: EventArgs<unknown>) => this.changed(args);
  afterDelete = (args: EventArgs<unknown>) => this.changed(args);

  afterFlush(args: FlushEventArgs): void {
    if (this.pending.has(args.em) && !args.em.isInTransaction()) {
      this.pending.delete(args.em);
      this.cache.invalidate();
    }
  }

  afterTransactionCommit(args: TransactionEventArgs): void {
    if (this.pending.delete(args.em)) this.cache.invalidate();
  }

  afterTransactionRollback(args: TransactionEventArgs): void {
    this.pending.delete(args.em);
  }
}

// One cache per ORM instance: every fork of an ORM shares its Configuration and EventManager.
const caches = new WeakMap<object, CatalogCache>();

/** The catalog cache of the ORM `em` belongs to, created (and hooked to the ORM's writes) on first use. */
export function catalogCacheFor(em: EntityManager): CatalogCache {
  let cache = caches.get(em.config);
  if (!cache) {
    const created = new CatalogCache(() => loadSnapshot(em));
    em.getEventManager().registerSubscriber(new CatalogWriteSubscriber(created));
    caches.set(em.config, created);
    cache = created;
  }
  return cache;
}
