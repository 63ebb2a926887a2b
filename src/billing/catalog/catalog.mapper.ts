import type { PriceInterval, UsageType } from './catalog.type';
import { PriceType, ProductType } from './catalog.type';
import type { Price } from './price.entity';
import type { Product } from './product.entity';

export function toProductType(product: Product): ProductType {
  return Object.assign(new ProductType(), {
    id: product.id,
    code: product.code,
    name: product.name,
    description: product.description ?? null,
    active: product.active,
  });
}

/** `meterName` resolves the meter reference (loaded separately to keep one query per batch). */
export function toPriceType(price: Price, meterName: string | null): PriceType {
  return Object.assign(new PriceType(), {
    id: price.id,
    lookupKey: price.lookupKey ?? null,
    currency: price.currency,
    unitAmount: price.unitAmount ?? null,
    interval: (price.interval as PriceInterval | null) ?? null,
    intervalCount: price.intervalCount,
    usageType: price.usageType as UsageType,
    meter: meterName,
    active: price.active,
    productId: price.product.id,
  });
}
