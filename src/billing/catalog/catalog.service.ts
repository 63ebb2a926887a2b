import type { EntityManager } from '@mikro-orm/postgresql';
import { BillingError } from '../../common/errors';
import { assertId } from '../../common/ids';
import { Price } from './price.entity';
import { Product } from './product.entity';

export class CatalogService {
  constructor(private readonly em: EntityManager) {}

  listProducts(includeInactive = false): Promise<Product[]> {
    return this.em.find(Product, includeInactive ? {} : { active: true }, { orderBy: { createdAt: 'asc', code: 'asc' } });
  }

  async findProduct(by: { id?: string | null; code?: string | null }): Promise<Product | null> {
    if (!by.id && !by.code) throw BillingError.badInput('Give a product id or code', 'id');
    if (by.id) assertId(by.id, 'id');
    return this.em.findOne(Product, { ...(by.id ? { id: by.id } : {}), ...(by.code ? { code: by.code } : {}) });
  }

  async getProductOrThrow(by: { id?: string | null; code?: string | null }): Promise<Product> {
    const product = await this.findProduct(by);
    if (!product) throw BillingError.notFound('Product');
    return product;
  }

  /** Prices of many products in one query (DataLoader batch function). */
  async pricesByProductIds(productIds: readonly string[], includeInactive = false): Promise<Price[][]> {
    const prices = await this.em.find(
      Price,
      { product: { $in: [...productIds] }, ...(includeInactive ? {} : { active: true }) },
      { populate: ['meter'], orderBy: { createdAt: 'asc', lookupKey: 'asc' } },
    );
    return productIds.map((id) => prices.filter((p) => p.product.id === id));
  }

  async productsByIds(ids: readonly string[]): Promise<(Product | null)[]> {
    const rows = await this.em.find(Product, { id: { $in: [...ids] } });
    return ids.map((id) => rows.find((r) => r.id === id) ?? null);
  }

  async pricesByIds(ids: readonly string[]): Promise<(Price | null)[]> {
    const rows = await this.em.find(Price, { id: { $in: [...ids] } }, { populate: ['meter'] });
    return ids.map((id) => rows.find((r) => r.id === id) ?? null);
  }
}
