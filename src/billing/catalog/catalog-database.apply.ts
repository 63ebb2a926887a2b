import type { EntityManager } from '@mikro-orm/postgresql';
import type { CatalogRows, DatabasePlan, MeterRef, ProductRef } from './catalog-database.plan';
import { Meter } from './meter.entity';
import { Price } from './price.entity';
import { Product } from './product.entity';

/** The catalog's rows as entities, by id, for applying a plan made from them. */
export interface CatalogEntities {
  meters: Map<string, Meter>;
  products: Map<string, Product>;
  prices: Map<string, Price>;
}

/** Reads every meter, product and price row, as plain rows for planDatabase and as entities for applyDatabasePlan. */
export async function readCatalogRows(em: EntityManager): Promise<{ rows: CatalogRows; entities: CatalogEntities }> {
  // One after the other: inside a transaction they share one connection.
  const meters = await em.find(Meter, {});
  const products = await em.find(Product, {});
  const prices = await em.find(Price, {});
  return {
    rows: {
      meters: meters.map((m) => ({ id: m.id, eventName: m.eventName, displayName: m.displayName, aggregation: m.aggregation, stripeMeterId: m.stripeMeterId ?? null })),
      products: products.map((p) => ({
        id: p.id,
        code: p.code,
        name: p.name,
        description: p.description ?? null,
        active: p.active,
        stripeProductId: p.stripeProductId ?? null,
      })),
      prices: prices.map((p) => ({
        id: p.id,
        stripePriceId: p.stripePriceId ?? null,
        lookupKey: p.lookupKey ?? null,
        currency: p.currency,
        unitAmount: p.unitAmount ?? null,
        interval: p.interval ?? null,
        intervalCount: p.intervalCount,
        usageType: p.usageType,
        active: p.active,
        productId: p.product.id,
        meterId: p.meter?.id ?? null,
      })),
    },
    entities: {
      meters: new Map(meters.map((m) => [m.id, m])),
      products: new Map(products.map((p) => [p.id, p])),
      prices: new Map(prices.map((p) => [p.id, p])),
    },
  };
}

/**
 * Writes a plan in `tx` (inside its transaction): new meters and products, every field change,
 * a flush (an archived price gives its lookup key up), then the new prices.
 */
export async function applyDatabasePlan(tx: EntityManager, plan: DatabasePlan, entities: CatalogEntities): Promise<void> {
  const createdMeters = new Map(plan.createMeters.map((values) => [values.eventName, tx.create(Meter, values)]));
  const createdProducts = new Map(plan.createProducts.map((values) => [values.code, tx.create(Product, values)]));
  const productOf = (ref: ProductRef) => ('id' in ref ? entities.products.get(ref.id)! : createdProducts.get(ref.code)!);
  const meterOf = (ref: MeterRef) => ('id' in ref ? entities.meters.get(ref.id)! : createdMeters.get(ref.eventName)!);

  for (const [id, values] of plan.updateMeters) Object.assign(entities.meters.get(id)!, values);
  for (const [id, values] of plan.updateProducts) Object.assign(entities.products.get(id)!, values);
  for (const [id, { product, meter, ...values }] of plan.updatePrices) {
    const row = entities.prices.get(id)!;
    Object.assign(row, values);
    if (product) row.product = tx.getReference(Product, productOf(product).id, { wrapped: true });
    if (meter !== undefined) row.meter = meter ? tx.getReference(Meter, meterOf(meter).id, { wrapped: true }) : null;
  }
  await tx.flush();
  for (const { product, meter, ...values } of plan.createPrices) {
    tx.create(Price, { ...values, product: productOf(product), meter: meter ? meterOf(meter) : null });
  }
  await tx.flush();
}
