import { isOwned } from '../../billing/catalog/catalog-sync.service';
import { Meter } from '../../billing/catalog/meter.entity';
import { Price } from '../../billing/catalog/price.entity';
import { Product } from '../../billing/catalog/product.entity';
import type { PriceSnapshot, ProductSnapshot } from '../../stripe/stripe.gateway';
import { toObjectSnapshot } from '../../stripe/stripe.mappers';
import { refetchOrEventCopy, type EventHandler } from './types';

/**
 * `product.created|updated|deleted`: name, description and active of the product row with that
 * Stripe id (deleted: inactive). A product created in Stripe by the catalog sync
 * (`metadata.tollgate_code`) is linked to the catalog row of that code when the row has no Stripe
 * id yet. Products Stripe has that our catalog does not are ignored.
 */
export const productHandler: EventHandler<ProductSnapshot> = {
  types: ['product.created', 'product.updated', 'product.deleted'],

  async refetch(event, { gateway, em }) {
    const mapped = toObjectSnapshot(event.object);
    if (mapped.kind !== 'product') return null;
    const product = mapped.product;
    const ours = (await em.count(Product, { stripeProductId: product.id })) > 0 || (isOwned(product) && !!product.metadata.tollgate_code);
    if (!ours) return null;
    if (event.type === 'product.deleted' || product.deleted) return { snapshot: { ...product, deleted: true }, syncedAt: event.createdAt, current: false };
    // The gateway reads products only as pages; the catalog is small, and Stripe counts one request.
    return refetchOrEventCopy(event, product, async () => {
      const found = (await gateway.listProducts()).find((p) => p.id === product.id);
      return found ?? { ...product, deleted: true };
    });
  },

  async apply(_event, fetched, { em }) {
    if (!fetched) return 'ignored';
    const snapshot = fetched.snapshot;
    let row = await em.findOne(Product, { stripeProductId: snapshot.id });
    if (!row && isOwned(snapshot) && snapshot.metadata.tollgate_code) {
      row = await em.findOne(Product, { code: snapshot.metadata.tollgate_code, stripeProductId: null });
      if (row) row.stripeProductId = snapshot.id;
    }
    if (!row) return 'ignored';
    if (snapshot.deleted) {
      row.active = false;
    } else {
      row.name = snapshot.name;
      row.description = snapshot.description;
      row.active = snapshot.active;
    }
    await em.flush();
    return 'processed';
  },
};

/**
 * `price.created|updated|deleted`: active and lookup key of the price row with that Stripe id.
 * A price created in Stripe for a product of ours becomes a row of that product (metered prices
 * only when their meter is known). The price is refetched, so events applied out of order still
 * end at Stripe's state.
 */
export const priceHandler: EventHandler<PriceSnapshot> = {
  types: ['price.created', 'price.updated', 'price.deleted'],

  async refetch(event, { gateway, em }) {
    const mapped = toObjectSnapshot(event.object);
    if (mapped.kind !== 'price') return null;
    const price = mapped.price;
    const known =
      (await em.count(Price, { stripePriceId: price.id })) > 0 || (await em.count(Product, { stripeProductId: price.productId })) > 0;
    if (!known) return null;
    if (event.type === 'price.deleted' || price.deleted) return { snapshot: { ...price, deleted: true }, syncedAt: event.createdAt, current: false };
    return refetchOrEventCopy(event, price, () => gateway.retrievePrice(price.id));
  },

  async apply(_event, fetched, { em }) {
    if (!fetched) return 'ignored';
    const snapshot = fetched.snapshot;
    const row = await em.findOne(Price, { stripePriceId: snapshot.id });
    if (row) {
      row.active = snapshot.deleted ? false : snapshot.active;
      if (!snapshot.deleted) row.lookupKey = snapshot.lookupKey;
      await em.flush();
      return 'processed';
    }
    if (snapshot.deleted) return 'ignored';
    const product = await em.findOne(Product, { stripeProductId: snapshot.productId });
    if (!product) return 'ignored';
    const interval = snapshot.recurring?.interval;
    if (interval && interval !== 'month' && interval !== 'year') return 'ignored';
    let meter: Meter | null = null;
    if (snapshot.recurring?.usageType === 'metered') {
      meter = snapshot.recurring.meterId ? await em.findOne(Meter, { stripeMeterId: snapshot.recurring.meterId }) : null;
      if (!meter) return 'ignored';
    }
    // A lookup key already held by another row stays with it: the catalog sync decides who owns it.
    const lookupKeyFree = !snapshot.lookupKey || !(await em.count(Price, { lookupKey: snapshot.lookupKey }));
    em.create(Price, {
      product,
      stripePriceId: snapshot.id,
      lookupKey: lookupKeyFree ? snapshot.lookupKey : null,
      currency: snapshot.currency,
      unitAmount: snapshot.unitAmount,
      interval: interval ?? null,
      intervalCount: snapshot.recurring?.intervalCount ?? 1,
      usageType: snapshot.recurring?.usageType ?? 'licensed',
      meter,
      active: snapshot.active,
    });
    await em.flush();
    return 'processed';
  },
};
