/**
 * Prices: create (product or product_data), retrieve, update (active, lookup_key,
 * transfer_lookup_key, nickname, metadata), list (lookup_keys, product, active, type).
 * The amount and recurring terms of a price never change, as on Stripe.
 */
import { invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, bool, int, obj, str, strList } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { createProduct } from './product-records';
import { diff } from './customers';

export function getPrice(store: Store, id: string, param = 'price'): Obj {
  const p = store.get('price', id);
  if (!p) throw noSuch('price', id, param);
  return p;
}

function takeLookupKey(store: Store, key: string, transfer: boolean, selfId?: string): void {
  const holder = store.list('price').find((pr) => pr.lookup_key === key && pr.id !== selfId);
  if (!holder) return;
  if (!transfer) {
    throw invalidRequest(
      `A price (\`${holder.id}\`) already uses that lookup key. Specify \`transfer_lookup_key=true\` to transfer it to this price.`,
      'lookup_key',
      'lookup_key_already_in_use',
    );
  }
  holder.lookup_key = null;
  store.emit('price.updated', holder, { lookup_key: key });
}

export function createPrice(store: Store, p: Obj, paramPrefix = ''): Obj {
  const param = (k: string) => (paramPrefix ? `${paramPrefix}[${k}]` : k);
  const currency = str(p, 'currency')?.toLowerCase();
  if (!currency) throw invalidRequest(`Missing required param: ${param('currency')}.`, param('currency'), 'parameter_missing');
  let productId = str(p, 'product');
  const productData = obj(p, 'product_data');
  if (!productId && !productData) {
    throw invalidRequest('Missing required param: product.', param('product'), 'parameter_missing');
  }
  if (productId && !store.get('product', productId)) throw noSuch('product', productId, param('product'));
  const billingScheme = str(p, 'billing_scheme') ?? 'per_unit';
  if (billingScheme !== 'per_unit') throw invalidRequest('Only billing_scheme=per_unit is supported by the emulator.', param('billing_scheme'));
  let unitAmount = int(p, 'unit_amount', param('unit_amount'));
  const decimal = str(p, 'unit_amount_decimal');
  if (unitAmount === undefined && decimal !== undefined) unitAmount = Math.round(Number(decimal));
  if (unitAmount === undefined) {
    throw invalidRequest('Missing required param: unit_amount.', param('unit_amount'), 'parameter_missing');
  }
  if (unitAmount < 0) throw invalidRequest('This value must be greater than or equal to 0.', param('unit_amount'));
  const rec = obj(p, 'recurring');
  let recurring: Obj | null = null;
  if (rec) {
    const interval = str(rec, 'interval');
    if (!interval || !['day', 'week', 'month', 'year'].includes(interval)) {
      throw invalidRequest('Invalid recurring[interval]: must be one of day, week, month, or year', param('recurring[interval]'));
    }
    const usageType = str(rec, 'usage_type') ?? 'licensed';
    const meter = str(rec, 'meter') ?? null;
    if (usageType === 'metered' && !meter) {
      // Since 2025-03-31.basil metered prices must be backed by a billing meter.
      throw invalidRequest('Metered prices must be backed by a meter. Specify `recurring[meter]`.', param('recurring[meter]'));
    }
    if (meter && !store.get('billing.meter', meter)) throw noSuch('billing meter', meter, param('recurring[meter]'));
    recurring = {
      interval,
      interval_count: int(rec, 'interval_count', param('recurring[interval_count]')) ?? 1,
      meter,
      trial_period_days: null,
      usage_type: usageType,
    };
  }
  const lookupKey = str(p, 'lookup_key') ?? null;
  if (lookupKey) takeLookupKey(store, lookupKey, bool(p, 'transfer_lookup_key') ?? false);
  if (!productId && productData) productId = createProduct(store, productData).id;
  const price: Obj = {
    id: newId('price_'),
    object: 'price',
    active: bool(p, 'active') ?? true,
    billing_scheme: billingScheme,
    created: store.now(),
    currency,
    custom_unit_amount: null,
    livemode: false,
    lookup_key: lookupKey,
    metadata: applyMetadata({}, p),
    nickname: str(p, 'nickname') ?? null,
    product: productId,
    recurring,
    tax_behavior: str(p, 'tax_behavior') ?? 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    type: recurring ? 'recurring' : 'one_time',
    unit_amount: unitAmount,
    unit_amount_decimal: String(unitAmount),
  };
  store.insert('price', price);
  store.emit('price.created', price);
  return price;
}

/** The legacy `plan` view of a recurring price, still embedded in subscription items. */
export function planOf(price: Obj): Obj | null {
  if (!price.recurring) return null;
  return {
    id: price.id,
    object: 'plan',
    active: price.active,
    amount: price.unit_amount,
    amount_decimal: price.unit_amount_decimal,
    billing_scheme: price.billing_scheme,
    created: price.created,
    currency: price.currency,
    interval: price.recurring.interval,
    interval_count: price.recurring.interval_count,
    livemode: false,
    metadata: { ...price.metadata },
    meter: price.recurring.meter,
    nickname: price.nickname,
    product: price.product,
    tiers_mode: null,
    transform_usage: null,
    trial_period_days: null,
    usage_type: price.recurring.usage_type,
  };
}

export function registerPrices(router: Router, store: Store): void {
  router.add('POST', '/v1/prices', (ctx) => out(ctx, createPrice(store, ctx.params)));

  router.add('GET', '/v1/prices/:id', (ctx) => out(ctx, getPrice(store, ctx.pathParams.id, 'id')));

  router.add('POST', '/v1/prices/:id', (ctx) => {
    const price = getPrice(store, ctx.pathParams.id, 'id');
    const p = ctx.params;
    for (const fixed of ['unit_amount', 'currency', 'recurring', 'product', 'billing_scheme']) {
      if (fixed in p) throw invalidRequest(`Received unknown parameter: ${fixed}`, fixed, 'parameter_unknown');
    }
    const before = store.render(price);
    const active = bool(p, 'active');
    if (active !== undefined) price.active = active;
    if ('nickname' in p) price.nickname = str(p, 'nickname') ?? null;
    if ('lookup_key' in p) {
      const key = str(p, 'lookup_key') ?? null;
      if (key && key !== price.lookup_key) takeLookupKey(store, key, bool(p, 'transfer_lookup_key') ?? false, price.id);
      price.lookup_key = key;
    }
    price.metadata = applyMetadata(price.metadata, p);
    const prev = diff(before, store.render(price));
    if (Object.keys(prev).length) store.emit('price.updated', price, prev);
    return out(ctx, price);
  });

  router.add('GET', '/v1/prices', (ctx) => {
    const p = ctx.params;
    let items = store.list('price');
    const active = bool(p, 'active');
    if (active !== undefined) items = items.filter((x) => x.active === active);
    const product = str(p, 'product');
    if (product) items = items.filter((x) => x.product === product);
    const type = str(p, 'type');
    if (type) items = items.filter((x) => x.type === type);
    const currency = str(p, 'currency');
    if (currency) items = items.filter((x) => x.currency === currency.toLowerCase());
    const keys = strList(p, 'lookup_keys');
    if (keys) items = items.filter((x) => x.lookup_key !== null && keys.includes(x.lookup_key));
    const rec = obj(p, 'recurring');
    if (rec?.interval) items = items.filter((x) => x.recurring?.interval === rec.interval);
    if (rec?.usage_type) items = items.filter((x) => x.recurring?.usage_type === rec.usage_type);
    return listOut(ctx, items);
  });
}
