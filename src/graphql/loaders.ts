import DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Price } from '../billing/catalog/price.entity';
import type { Product } from '../billing/catalog/product.entity';
import { CatalogService } from '../billing/catalog/catalog.service';

/** Per-request batch loaders: nested fields cost one query per level, not one per row. */
export interface Loaders {
  activePricesByProduct: DataLoader<string, Price[]>;
  allPricesByProduct: DataLoader<string, Price[]>;
  product: DataLoader<string, Product | null>;
  price: DataLoader<string, Price | null>;
}

export function createLoaders(em: EntityManager): Loaders {
  const catalog = new CatalogService(em);
  return {
    activePricesByProduct: new DataLoader((ids) => catalog.pricesByProductIds(ids, false)),
    allPricesByProduct: new DataLoader((ids) => catalog.pricesByProductIds(ids, true)),
    product: new DataLoader((ids) => catalog.productsByIds(ids)),
    price: new DataLoader((ids) => catalog.pricesByIds(ids)),
  };
}
