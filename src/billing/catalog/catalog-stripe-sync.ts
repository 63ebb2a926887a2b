import type { StripeGateway } from '../../stripe/stripe.gateway';
import { idempotencyKey } from '../../stripe/idempotency';
import type { CatalogDefinition } from './catalog-file';
import type { CatalogStripeIds } from './catalog-seeder';

/** Metadata that marks Stripe objects created from the catalog file. */
export const OWNER_METADATA = { tollgate_managed: 'true' } as const;

/**
 * Makes sure every meter, product and price of the catalog exists in Stripe and returns their
 * ids. Matching is by meter event name, product `metadata.tollgate_code` and price lookup key,
 * so running it again creates nothing. (Changing amounts and archiving belong to catalog:sync.)
 */
export async function ensureCatalogInStripe(gateway: StripeGateway, catalog: CatalogDefinition): Promise<Required<CatalogStripeIds>> {
  const ids: Required<CatalogStripeIds> = { meters: {}, products: {}, prices: {} };

  const meters = await gateway.listMeters();
  for (const def of catalog.meters) {
    const found = meters.find((m) => m.eventName === def.eventName && m.status === 'active');
    const meter =
      found ??
      (await gateway.createMeter({
        eventName: def.eventName,
        displayName: def.displayName,
        aggregation: def.aggregation ?? 'sum',
        idempotencyKey: idempotencyKey('catalog.meter.create', def.eventName),
      }));
    ids.meters[def.eventName] = meter.id;
  }

  const products = await gateway.listProducts();
  const prices = await gateway.listPrices({ lookupKeys: catalog.products.flatMap((p) => p.prices.map((x) => x.lookupKey)) });
  for (const def of catalog.products) {
    const found = products.find((p) => p.metadata.tollgate_code === def.code && !p.deleted);
    const product =
      found ??
      (await gateway.createProduct({
        name: def.name,
        description: def.description,
        active: def.active ?? true,
        metadata: { ...OWNER_METADATA, tollgate_code: def.code },
        idempotencyKey: idempotencyKey('catalog.product.create', def.code),
      }));
    ids.products[def.code] = product.id;

    for (const p of def.prices) {
      const existing = prices.find((x) => x.lookupKey === p.lookupKey);
      const price =
        existing ??
        (await gateway.createPrice({
          productId: product.id,
          currency: p.currency,
          unitAmount: p.unitAmount,
          lookupKey: p.lookupKey,
          recurring: p.interval
            ? {
                interval: p.interval,
                intervalCount: p.intervalCount ?? 1,
                usageType: p.usageType ?? 'licensed',
                meterId: p.meter ? ids.meters[p.meter] : undefined,
              }
            : undefined,
          metadata: { ...OWNER_METADATA, tollgate_code: def.code },
          idempotencyKey: idempotencyKey('catalog.price.create', p.lookupKey, p.unitAmount, p.currency),
        }));
      ids.prices[p.lookupKey] = price.id;
    }
  }
  return ids;
}
