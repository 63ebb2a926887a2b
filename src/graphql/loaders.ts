import DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Price } from '../billing/catalog/price.entity';
import type { Product } from '../billing/catalog/product.entity';
import { CatalogService } from '../billing/catalog/catalog.service';
import { catalogCacheFor, type CatalogCache } from '../billing/catalog/catalog-cache';

/** Per-request batch loaders: nested fields cost one query per level, not one per row. */
export interface Loaders {
  /** The catalog in memory (shared by requests): products and prices without a query. */
  catalog: CatalogCache;
  activePricesByProduct: DataLoader<string, Price[]>;
  allPricesByProduct: DataLoader<string, Price[]>;
  product: DataLoader<string, Product | null>;
  price: DataLoader<string, Price | null>;
  /**
   * Stripe reads of this request by what they read (`checkout:<session>`):
   * however many fields or aliases ask for the same one, Stripe is asked once.
   */
  stripeReads: StripeReads;
}

/** A per-request memo of Stripe reads: the first call of a key runs `read`, later ones share its promise. */
export class StripeReads {
  private readonly reads = new Map<string, Promise<unknown>>();

  once<T>(key: string, read: () => Promise<T>): Promise<T> {
    let pending = this.reads.get(key) as Promise<T> | undefined;
    if (!pending) {
      pending = read();
      this.reads.set(key, pending);
    }
    return pending;
  }
}

/**
 * `root` is the ORM's shared EntityManager (the catalog cache belongs to the ORM); `requestEm`
 * gives the request's own fork, made only if a row must be read that the catalog cache does not
 * hold: most requests never need one.
 */
export function createLoaders(root: EntityManager, requestEm: () => EntityManager): Loaders {
  const cache = catalogCacheFor(root);
  let service: CatalogService | undefined;
  const db = () => (service ??= new CatalogService(requestEm()));
  return {
    catalog: cache,
    activePricesByProduct: new DataLoader((ids) => cache.pricesByProductIds(ids, false)),
    allPricesByProduct: new DataLoader((ids) => cache.pricesByProductIds(ids, true)),
    // By id: from the cache, and from the database for an id it does not hold yet (a row
    // written moments ago by another instance or in raw SQL).
    product: new DataLoader((ids) => byIdCachedFirst(ids, async (missing) => db().productsByIds(missing), (s) => s.productsById, cache)),
    price: new DataLoader((ids) => byIdCachedFirst(ids, async (missing) => db().pricesByIds(missing), (s) => s.pricesById, cache)),
    stripeReads: new StripeReads(),
  };
}

async function byIdCachedFirst<T>(
  ids: readonly string[],
  fromDb: (ids: string[]) => Promise<(T | null)[]>,
  index: (snapshot: Awaited<ReturnType<CatalogCache['get']>>) => Map<string, T>,
  cache: CatalogCache,
): Promise<(T | null)[]> {
  const cached = index(await cache.get());
  const missing = ids.filter((id) => !cached.has(id));
  const loaded = missing.length ? await fromDb(missing) : [];
  return ids.map((id) => cached.get(id) ?? loaded[missing.indexOf(id)] ?? null);
}
