import { BillingError, ErrorCode } from '../../common/errors';
import { Price } from '../../billing/catalog/price.entity';
import { Product } from '../../billing/catalog/product.entity';
import type { PriceSnapshot } from '../../stripe/stripe.gateway';
import { toObjectSnapshot } from '../../stripe/stripe.mappers';
import type { EventHandler } from './types';

/**
 * `product.updated|deleted`: name, description and active of the product row with that Stripe id
 * (deleted: inactive). Products Stripe has that our catalog does not are ignored.
 */
export const handleProductEvent: EventHandler = async (event, { em }) => {
  const mapped = toObjectSnapshot(event.object);
  if (mapped.kind !== 'product') return 'ignored';
  const snapshot = mapped.product;
  const row = await em.findOne(Product, { stripeProductId: snapshot.id });
  if (!row) return 'ignored';
  if (event.type === 'product.deleted' || snapshot.deleted) {
    row.active = false;
  } else {
    row.name = snapshot.name;
    row.description = snapshot.description;
    row.active = snapshot.active;
  }
  await em.flush();
  return 'processed';
};

/**
 * `price.updated|deleted`: active and lookup key of the price row with that Stripe id. The price
 * is refetched from Stripe so that events applied out of order still end at Stripe's state.
 */
export const handlePriceEvent: EventHandler = async (event, { em, gateway }) => {
  const mapped = toObjectSnapshot(event.object);
  if (mapped.kind !== 'price') return 'ignored';
  const row = await em.findOne(Price, { stripePriceId: mapped.price.id });
  if (!row) return 'ignored';
  if (event.type === 'price.deleted' || mapped.price.deleted) {
    row.active = false;
  } else {
    let snapshot: PriceSnapshot = mapped.price;
    try {
      snapshot = await gateway.retrievePrice(mapped.price.id);
    } catch (error) {
      if (!(error instanceof BillingError && error.code === ErrorCode.NOT_FOUND)) throw error;
    }
    row.active = snapshot.active;
    row.lookupKey = snapshot.lookupKey;
  }
  await em.flush();
  return 'processed';
};
