import type { EntityManager } from '@mikro-orm/postgresql';
import type { CatalogDefinition } from './catalog-file';
import { Meter } from './meter.entity';
import { Price } from './price.entity';
import { Product } from './product.entity';

/** Stripe ids for catalog entries, when they exist in Stripe (keyed by event name, code, lookup key). */
export interface CatalogStripeIds {
  meters?: Record<string, string>;
  products?: Record<string, string>;
  prices?: Record<string, string>;
}

export interface SeedResult {
  created: number;
  updated: number;
  unchanged: number;
}

/**
 * Writes the catalog file into the database in one transaction: rows are matched by meter event
 * name, product code and price lookup key, created when missing and updated when different.
 * Rows that are not in the file are left alone (they may come from Stripe through webhooks).
 */
export async function seedCatalog(em: EntityManager, catalog: CatalogDefinition, ids: CatalogStripeIds = {}): Promise<SeedResult> {
  const result: SeedResult = { created: 0, updated: 0, unchanged: 0 };
  await em.transactional(async (tx) => {
    const apply = <T extends object>(row: T, values: Partial<T>): void => {
      const changed = Object.entries(values).some(([k, v]) => v !== undefined && (row as Record<string, unknown>)[k] !== v);
      if (!changed) {
        result.unchanged++;
        return;
      }
      for (const [k, v] of Object.entries(values)) if (v !== undefined) (row as Record<string, unknown>)[k] = v;
      result.updated++;
    };

    const meters = new Map<string, Meter>();
    for (const def of catalog.meters) {
      let meter = await tx.findOne(Meter, { eventName: def.eventName });
      const values = { displayName: def.displayName, aggregation: def.aggregation ?? 'sum', stripeMeterId: ids.meters?.[def.eventName] };
      if (!meter) {
        meter = tx.create(Meter, { eventName: def.eventName, ...values });
        result.created++;
      } else apply(meter, values);
      meters.set(def.eventName, meter);
    }

    for (const def of catalog.products) {
      let product = await tx.findOne(Product, { code: def.code });
      const values = {
        name: def.name,
        description: def.description ?? null,
        active: def.active ?? true,
        stripeProductId: ids.products?.[def.code],
      };
      if (!product) {
        product = tx.create(Product, { code: def.code, ...values });
        result.created++;
      } else apply(product, values);

      for (const p of def.prices) {
        const price = await tx.findOne(Price, { lookupKey: p.lookupKey });
        const meter = p.meter ? meters.get(p.meter) ?? (await tx.findOne(Meter, { eventName: p.meter })) : null;
        const values = {
          currency: p.currency,
          unitAmount: p.unitAmount,
          interval: p.interval ?? null,
          intervalCount: p.intervalCount ?? 1,
          usageType: p.usageType ?? ('licensed' as const),
          active: true,
          stripePriceId: ids.prices?.[p.lookupKey],
        };
        if (!price) {
          tx.create(Price, { lookupKey: p.lookupKey, product, meter: meter ?? null, ...values });
          result.created++;
        } else {
          if (price.product.id !== product.id || (price.meter?.id ?? null) !== (meter?.id ?? null)) {
            price.product = tx.getReference(Product, product.id, { wrapped: true });
            price.meter = meter ? tx.getReference(Meter, meter.id, { wrapped: true }) : null;
            result.updated++;
          }
          apply(price, values);
        }
      }
    }
  });
  return result;
}
