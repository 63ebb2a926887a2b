import type Stripe from 'stripe';
import { chunk } from '../common/chunk';
import { BillingError } from '../common/errors';
import { PAGINATION_LIMIT } from './stripe-call-policy';
import type { CallPolicy } from './stripe-call-policy';
import type { CreateMeterInput, CreatePriceInput, CreateProductInput, ListPricesInput, MeterSnapshot, PriceSnapshot, ProductSnapshot, UpdatePriceInput, UpdateProductInput } from './stripe.gateway';
import { toMeterSnapshot, toPriceSnapshot, toProductSnapshot } from './stripe.mappers';

/**
 * The Stripe calls of the catalog: products, prices and billing meters.
 */
export class CatalogCalls {
  constructor(
    private readonly stripe: Stripe,
    private readonly call: CallPolicy,
  ) {}

  async createProduct(input: CreateProductInput): Promise<ProductSnapshot> {
    const product = await this.call('products.create', () =>
      this.stripe.products.create(
        {
          name: input.name,
          ...(input.description ? { description: input.description } : {}),
          ...(input.active !== undefined ? { active: input.active } : {}),
          ...(input.metadata ? { metadata: input.metadata } : {}),
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toProductSnapshot(product);
  }

  async updateProduct(input: UpdateProductInput): Promise<ProductSnapshot> {
    const product = await this.call(
      'products.update',
      () =>
        this.stripe.products.update(
          input.id,
          {
            ...(input.name !== undefined ? { name: input.name } : {}),
            ...(input.description !== undefined ? { description: input.description } : {}),
            ...(input.active !== undefined ? { active: input.active } : {}),
            ...(input.metadata ? { metadata: input.metadata } : {}),
          },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Product' },
    );
    return toProductSnapshot(product);
  }

  async listProducts(filter: { active?: boolean } = {}): Promise<ProductSnapshot[]> {
    const products = await this.call('products.list', () =>
      this.stripe.products
        .list({ limit: 100, ...(filter.active !== undefined ? { active: filter.active } : {}) })
        .autoPagingToArray({ limit: PAGINATION_LIMIT }),
    );
    return products.map(toProductSnapshot);
  }

  async createPrice(input: CreatePriceInput): Promise<PriceSnapshot> {
    if (!Number.isInteger(input.unitAmount) || input.unitAmount < 0) {
      throw BillingError.badInput('unitAmount must be a non-negative integer number of minor units', 'unitAmount');
    }
    const recurring = input.recurring;
    if (recurring?.usageType === 'metered' && !recurring.meterId) {
      throw BillingError.badInput('A metered price needs a meter', 'meterId');
    }
    const price = await this.call('prices.create', () =>
      this.stripe.prices.create(
        {
          product: input.productId,
          currency: input.currency.toLowerCase(),
          unit_amount: input.unitAmount,
          ...(input.lookupKey ? { lookup_key: input.lookupKey } : {}),
          ...(input.transferLookupKey ? { transfer_lookup_key: true } : {}),
          ...(input.nickname ? { nickname: input.nickname } : {}),
          ...(input.metadata ? { metadata: input.metadata } : {}),
          ...(recurring
            ? {
                recurring: {
                  interval: recurring.interval,
                  ...(recurring.intervalCount ? { interval_count: recurring.intervalCount } : {}),
                  ...(recurring.usageType ? { usage_type: recurring.usageType } : {}),
                  ...(recurring.usageType === 'metered' ? { meter: recurring.meterId } : {}),
                },
              }
            : {}),
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toPriceSnapshot(price);
  }

  async updatePrice(input: UpdatePriceInput): Promise<PriceSnapshot> {
    const price = await this.call(
      'prices.update',
      () =>
        this.stripe.prices.update(
          input.id,
          {
            ...(input.active !== undefined ? { active: input.active } : {}),
            ...(input.lookupKey !== undefined ? { lookup_key: input.lookupKey } : {}),
            ...(input.transferLookupKey ? { transfer_lookup_key: true } : {}),
            ...(input.nickname !== undefined ? { nickname: input.nickname } : {}),
            ...(input.metadata ? { metadata: input.metadata } : {}),
          },
          { idempotencyKey: input.idempotencyKey },
        ),
      { resource: 'Price' },
    );
    return toPriceSnapshot(price);
  }

  async listPrices(filter: ListPricesInput = {}): Promise<PriceSnapshot[]> {
    const base: Stripe.PriceListParams = {
      limit: 100,
      ...(filter.productId ? { product: filter.productId } : {}),
      ...(filter.active !== undefined ? { active: filter.active } : {}),
    };
    const fetch = (params: Stripe.PriceListParams) =>
      this.call('prices.list', () => this.stripe.prices.list(params).autoPagingToArray({ limit: PAGINATION_LIMIT }));
    if (filter.lookupKeys !== undefined) {
      if (filter.lookupKeys.length === 0) return [];
      // Stripe accepts at most 10 lookup keys per request.
      const pages = await Promise.all(chunk(filter.lookupKeys, 10).map((keys) => fetch({ ...base, lookup_keys: keys })));
      return pages.flat().map(toPriceSnapshot);
    }
    return (await fetch(base)).map(toPriceSnapshot);
  }

  async retrievePrice(id: string): Promise<PriceSnapshot> {
    const price = await this.call('prices.retrieve', () => this.stripe.prices.retrieve(id, { expand: ['product'] }), {
      resource: 'Price',
    });
    return toPriceSnapshot(price);
  }

  async createMeter(input: CreateMeterInput): Promise<MeterSnapshot> {
    const meter = await this.call('billing.meters.create', () =>
      this.stripe.billing.meters.create(
        {
          event_name: input.eventName,
          display_name: input.displayName,
          default_aggregation: { formula: input.aggregation },
          customer_mapping: { type: 'by_id', event_payload_key: input.customerPayloadKey ?? 'stripe_customer_id' },
          value_settings: { event_payload_key: input.valuePayloadKey ?? 'value' },
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return toMeterSnapshot(meter);
  }

  async listMeters(filter: { status?: 'active' | 'inactive' } = {}): Promise<MeterSnapshot[]> {
    const meters = await this.call('billing.meters.list', () =>
      this.stripe.billing.meters
        .list({ limit: 100, ...(filter.status ? { status: filter.status } : {}) })
        .autoPagingToArray({ limit: PAGINATION_LIMIT }),
    );
    return meters.map(toMeterSnapshot);
  }
}
