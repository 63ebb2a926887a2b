import type { EntityManager } from '@mikro-orm/postgresql';
import type { MeterSnapshot, PriceSnapshot, StripeGateway } from '../../stripe/stripe.gateway';
import { inTransactionOrDryRun, type CatalogChange, type CatalogSyncOptions } from './catalog-change';
import { Meter } from './meter.entity';
import { Price, type PriceIntervalValue } from './price.entity';
import { Product } from './product.entity';

/**
 * Reads the prices of `STRIPE_PRODUCT_PRICE_MAP` (and their products and meters) from Stripe
 * into the database, for teams whose catalog already lives in Stripe. Nothing is written to Stripe.
 */
export class PriceMapImporter {
  constructor(
    private readonly gateway: StripeGateway,
    private readonly em: EntityManager,
  ) {}

  /**
   * Reads the prices of `STRIPE_PRODUCT_PRICE_MAP` (and their products) from Stripe into the
   * database, for teams whose catalog already lives in Stripe. Nothing is written to Stripe.
   */
  async import(priceMap: Record<string, string>, options: CatalogSyncOptions = {}): Promise<CatalogChange[]> {
    const em = this.em;
    const dryRun = !!options.dryRun;
    const snapshots: Array<[string, PriceSnapshot]> = [];
    for (const [plan, priceId] of Object.entries(priceMap)) snapshots.push([plan, await this.gateway.retrievePrice(priceId)]);
    let stripeMeters: MeterSnapshot[] | null = null;

    const run = async (tx: EntityManager): Promise<CatalogChange[]> => {
      const changes: CatalogChange[] = [];
      for (const [plan, snapshot] of snapshots) {
        const recurring = snapshot.recurring;
        if (snapshot.unitAmount === null || (recurring && recurring.interval !== 'month' && recurring.interval !== 'year')) {
          changes.push({ where: 'database', action: 'conflict', object: 'price', key: plan, detail: `${snapshot.id}: only flat monthly, yearly or one-time prices are supported` });
          continue;
        }
        const stripeProduct = snapshot.product ?? null;
        let product = (await tx.findOne(Product, { stripeProductId: snapshot.productId })) ?? (await tx.findOne(Product, { code: plan }));
        if (product && product.stripeProductId && product.stripeProductId !== snapshot.productId) {
          changes.push({ where: 'database', action: 'conflict', object: 'product', key: plan, detail: `plan "${plan}" is already ${product.stripeProductId}, not ${snapshot.productId}` });
          continue;
        }
        const productValues = {
          name: stripeProduct?.name || plan,
          description: stripeProduct?.description ?? null,
          active: stripeProduct?.active ?? true,
          stripeProductId: snapshot.productId,
        };
        if (!product) {
          changes.push({ where: 'database', action: 'import', object: 'product', key: plan, detail: `${snapshot.productId} "${productValues.name}"` });
          product = tx.create(Product, { code: plan, ...productValues });
        } else {
          const diffs = Object.entries(productValues).filter(([k, v]) => (product as unknown as Record<string, unknown>)[k] !== v);
          if (diffs.length) {
            tx.assign(product, productValues);
            changes.push({ where: 'database', action: 'update', object: 'product', key: product.code, detail: diffs.map(([k]) => k).join(', ') });
          }
        }

        let meter: Meter | null = null;
        if (recurring?.meterId) {
          meter = await tx.findOne(Meter, { stripeMeterId: recurring.meterId });
          if (!meter) {
            stripeMeters ??= await this.gateway.listMeters();
            const m = stripeMeters.find((x) => x.id === recurring.meterId);
            if (m) {
              meter = (await tx.findOne(Meter, { eventName: m.eventName })) ?? tx.create(Meter, { eventName: m.eventName, displayName: m.displayName, aggregation: m.aggregation });
              meter.stripeMeterId = m.id;
              changes.push({ where: 'database', action: 'import', object: 'meter', key: m.eventName, detail: m.id });
            }
          }
        }
        const values = {
          lookupKey: snapshot.lookupKey,
          currency: snapshot.currency,
          unitAmount: snapshot.unitAmount,
          interval: (recurring?.interval ?? null) as PriceIntervalValue | null,
          intervalCount: recurring?.intervalCount ?? 1,
          usageType: recurring?.usageType ?? ('licensed' as const),
          active: snapshot.active,
          stripePriceId: snapshot.id,
        };
        let price = await tx.findOne(Price, { stripePriceId: snapshot.id });
        if (!price && snapshot.lookupKey) {
          const byKey = await tx.findOne(Price, { lookupKey: snapshot.lookupKey });
          if (byKey && !byKey.stripePriceId) price = byKey;
          else if (byKey) {
            changes.push({ where: 'database', action: 'conflict', object: 'price', key: plan, detail: `lookup key ${snapshot.lookupKey} belongs to ${byKey.stripePriceId}` });
            continue;
          }
        }
        if (!price) {
          changes.push({ where: 'database', action: 'import', object: 'price', key: plan, detail: `${snapshot.id} ${snapshot.unitAmount} ${snapshot.currency}${recurring ? `/${recurring.interval}` : ' once'}` });
          tx.create(Price, { ...values, product, meter });
        } else {
          const diffs = Object.entries(values).filter(([k, v]) => (price as unknown as Record<string, unknown>)[k] !== v);
          if (diffs.length) {
            tx.assign(price, { ...values, product, meter });
            changes.push({ where: 'database', action: 'update', object: 'price', key: plan, detail: diffs.map(([k]) => k).join(', ') });
          }
        }
      }
      if (!dryRun) await tx.flush();
      return changes;
    };
    return inTransactionOrDryRun(em, dryRun, run);
  }
}
