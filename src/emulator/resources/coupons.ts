/**
 * Coupons, promotion codes and the discounts they become on a subscription, a customer or an
 * invoice: `discounts` on subscription create/update, `DELETE /v1/subscriptions/:id/discount`,
 * `DELETE /v1/customers/:id/discount`. A discount changes the invoices it applies to (see
 * recomputeInvoice): `once` for the next invoice only, `repeating` for `duration_in_months`,
 * `forever` until removed.
 */
import { invalidRequest, missingParam, noSuch } from '../errors';
import { newId, randomToken } from '../ids';
import { applyMetadata, arr, bool, int, obj, str, strList } from '../params';
import type { Ctx, Handler, Router } from '../router';
import { listOut, out } from '../router';
import { publicCopy, type Obj, type Store } from '../store';
import { diff } from './customers';

export function getCoupon(store: Store, id: string, param = 'coupon'): Obj {
  const c = store.get('coupon', id);
  if (!c || c._deleted) throw noSuch('coupon', id, param);
  return c;
}

function couponUsable(store: Store, coupon: Obj, param: string): void {
  if (!coupon.valid) throw invalidRequest(`Coupon ${coupon.id} is no longer valid.`, param, 'coupon_expired');
}

function promotionCode(store: Store, id: string, customer: string | null, param: string): Obj {
  const pc = store.get('promotion_code', id);
  if (!pc) throw noSuch('promotion_code', id, param);
  if (!pc.active || (pc.expires_at && pc.expires_at <= store.now())) {
    throw invalidRequest(`This promotion code cannot be redeemed because it is inactive or expired.`, param, 'promotion_code_inactive' as string);
  }
  if (pc.max_redemptions !== null && pc.times_redeemed >= pc.max_redemptions) {
    throw invalidRequest('This promotion code cannot be redeemed because it has reached its maximum number of redemptions.', param, 'promotion_code_inactive' as string);
  }
  if (pc.customer && customer && pc.customer !== customer) {
    throw invalidRequest('This promotion code cannot be redeemed by this customer.', param, 'promotion_code_customer_not_eligible' as string);
  }
  return pc;
}

/** Finds a promotion code by its customer-facing code (case-insensitive), as Checkout does. */
export function findPromotionCode(store: Store, code: string): Obj | undefined {
  const want = code.trim().toUpperCase();
  return store.list('promotion_code').find((pc) => pc.code.toUpperCase() === want);
}

/** A discount object for a coupon (and the promotion code it came from), counted as a redemption. */
export function createDiscount(store: Store, f: { coupon: Obj; promotionCode?: Obj | null; customer: string | null; subscription?: string | null; invoice?: string | null; checkoutSession?: string | null }): Obj {
  const now = store.now();
  const c = f.coupon;
  const d: Obj = {
    id: newId('di_'),
    object: 'discount',
    checkout_session: f.checkoutSession ?? null,
    customer: f.customer,
    customer_account: null,
    end: c.duration === 'repeating' && c.duration_in_months ? now + c.duration_in_months * 30 * 86400 : null,
    invoice: f.invoice ?? null,
    invoice_item: null,
    promotion_code: f.promotionCode?.id ?? null,
    source: { coupon: c.id, type: 'coupon' },
    start: now,
    subscription: f.subscription ?? null,
    subscription_item: null,
  };
  store.insert('discount', d);
  c.times_redeemed += 1;
  if (c.max_redemptions !== null && c.times_redeemed >= c.max_redemptions) c.valid = false;
  if (f.promotionCode) f.promotionCode.times_redeemed += 1;
  return d;
}

/** Resolves `discounts[]` (`coupon`, `promotion_code` or an existing `discount`) into discount ids. */
export function discountIds(store: Store, raw: unknown[], customer: string | null, param: string, owner: { subscription?: string | null; invoice?: string | null } = {}): string[] {
  return raw.map((entry, i) => {
    const e = (entry ?? {}) as Obj;
    const at = `${param}[${i}]`;
    const existing = str(e, 'discount');
    if (existing) {
      if (!store.get('discount', existing)) throw noSuch('discount', existing, `${at}[discount]`);
      return existing;
    }
    const pcId = str(e, 'promotion_code');
    const couponId = str(e, 'coupon');
    if (pcId && couponId) throw invalidRequest('You may only specify one of these parameters: coupon, promotion_code.', `${at}[coupon]`, 'parameters_exclusive' as string);
    if (pcId) {
      const pc = promotionCode(store, pcId, customer, `${at}[promotion_code]`);
      const coupon = getCoupon(store, pc.promotion.coupon, `${at}[promotion_code]`);
      couponUsable(store, coupon, `${at}[promotion_code]`);
      return createDiscount(store, { coupon, promotionCode: pc, customer, ...owner }).id;
    }
    if (!couponId) throw missingParam(`${at}[coupon]`);
    const coupon = getCoupon(store, couponId, `${at}[coupon]`);
    couponUsable(store, coupon, `${at}[coupon]`);
    return createDiscount(store, { coupon, customer, ...owner }).id;
  });
}

/** Ends `once` discounts that an invoice has just used, and discounts past their end. */
export function afterInvoiced(store: Store, inv: Obj): void {
  const sub = inv.parent?.subscription_details?.subscription ? store.get('subscription', inv.parent.subscription_details.subscription) : undefined;
  for (const entry of inv.total_discount_amounts as Obj[]) {
    const d = store.get('discount', entry.discount);
    const coupon = d ? store.get('coupon', d.source.coupon) : undefined;
    if (!d || !coupon || coupon.duration !== 'once') continue;
    if (sub && (sub.discounts as string[]).includes(d.id)) sub.discounts = (sub.discounts as string[]).filter((x) => x !== d.id);
    const customer = store.get('customer', inv.customer);
    if (customer && customer.discount?.id === d.id) customer.discount = null;
  }
}

function renderCoupon(c: Obj): Obj {
  return publicCopy(c);
}

/**
 * Wraps a route so that `discounts` is applied before the original handler runs (the original
 * knows nothing of discounts): for a new subscription, the discounts are handed to the invoice the
 * subscription creates; for an update, they replace the subscription's discounts.
 */
function withDiscounts(store: Store, original: Handler, mode: 'create' | 'update'): Handler {
  return (ctx: Ctx) => {
    const p = ctx.params;
    if (!('discounts' in p)) return original(ctx);
    const { discounts, ...rest } = p;
    const raw = arr(p, 'discounts');
    if (mode === 'create') {
      const customer = str(p, 'customer') ?? null;
      const ids = raw ? discountIds(store, raw, customer, 'discounts') : [];
      store.pendingSubscriptionDiscounts = ids;
      try {
        const result = original({ ...ctx, params: rest });
        const subId = (result as Obj).id as string | undefined;
        const sub = subId ? store.get('subscription', subId) : undefined;
        if (sub) {
          for (const id of ids) {
            const d = store.get('discount', id);
            if (d) d.subscription = sub.id;
          }
        }
        return sub ? { ...(result as Obj), discounts: [...sub.discounts] } : result;
      } finally {
        store.pendingSubscriptionDiscounts = null;
      }
    }
    const sub = store.get('subscription', ctx.pathParams.id);
    if (sub) {
      const before = store.render(sub);
      sub.discounts = raw ? discountIds(store, raw, sub.customer, 'discounts', { subscription: sub.id }) : [];
      const prev = diff(before, store.render(sub));
      if (Object.keys(prev).length) store.emit('customer.subscription.updated', sub, prev);
    }
    void discounts;
    return original({ ...ctx, params: rest });
  };
}

export function registerCoupons(router: Router, store: Store): void {
  store.renderers.set('coupon', renderCoupon);
  router.wrap('POST', '/v1/subscriptions', (h) => withDiscounts(store, h, 'create'));
  router.wrap('POST', '/v1/subscriptions/:id', (h) => withDiscounts(store, h, 'update'));

  router.add('POST', '/v1/coupons', (ctx) => {
    const p = ctx.params;
    const amountOff = int(p, 'amount_off');
    const percentOff = p.percent_off !== undefined && p.percent_off !== '' ? Number(p.percent_off) : undefined;
    if (amountOff === undefined && percentOff === undefined) throw invalidRequest('Must pass either `amount_off` or `percent_off`.', 'amount_off', 'parameter_missing');
    if (amountOff !== undefined && percentOff !== undefined) throw invalidRequest('You may only specify one of these parameters: amount_off, percent_off.', 'percent_off', 'parameters_exclusive');
    if (percentOff !== undefined && !(percentOff > 0 && percentOff <= 100)) throw invalidRequest('Invalid percent_off: must be greater than 0 and at most 100.', 'percent_off', 'parameter_invalid_integer');
    if (amountOff !== undefined && amountOff <= 0) throw invalidRequest('Invalid amount_off: must be greater than 0.', 'amount_off', 'parameter_invalid_integer');
    const currency = str(p, 'currency')?.toLowerCase() ?? null;
    if (amountOff !== undefined && !currency) throw missingParam('currency');
    const duration = str(p, 'duration') ?? 'once';
    const months = int(p, 'duration_in_months') ?? null;
    if (duration === 'repeating' && months === null) throw missingParam('duration_in_months');
    if (duration !== 'repeating' && months !== null) throw invalidRequest('You may only set duration_in_months when duration is repeating.', 'duration_in_months', 'parameter_invalid_integer');
    const id = str(p, 'id') ?? randomToken(8);
    if (store.get('coupon', id)) throw invalidRequest('Coupon already exists.', 'id', 'resource_already_exists');
    const at = obj(p, 'applies_to');
    const coupon: Obj = {
      id,
      object: 'coupon',
      amount_off: amountOff ?? null,
      ...(at ? { applies_to: { products: strList(at, 'products') ?? [] } } : {}),
      created: store.now(),
      currency: amountOff !== undefined ? currency : null,
      duration,
      duration_in_months: months,
      livemode: false,
      max_redemptions: int(p, 'max_redemptions') ?? null,
      metadata: applyMetadata({}, p),
      name: str(p, 'name') ?? null,
      percent_off: percentOff ?? null,
      redeem_by: int(p, 'redeem_by') ?? null,
      times_redeemed: 0,
      valid: true,
    };
    store.insert('coupon', coupon);
    store.emit('coupon.created', coupon);
    return out(ctx, coupon);
  });

  router.add('GET', '/v1/coupons/:id', (ctx) => out(ctx, getCoupon(store, ctx.pathParams.id, 'id')));

  router.add('POST', '/v1/coupons/:id', (ctx) => {
    const c = getCoupon(store, ctx.pathParams.id, 'id');
    const before = publicCopy(c);
    if ('name' in ctx.params) c.name = str(ctx.params, 'name') ?? null;
    c.metadata = applyMetadata(c.metadata, ctx.params);
    const prev = diff(before, c);
    if (Object.keys(prev).length) store.emit('coupon.updated', c, prev);
    return out(ctx, c);
  });

  router.add('DELETE', '/v1/coupons/:id', (ctx) => {
    const c = getCoupon(store, ctx.pathParams.id, 'id');
    // Discounts made from a deleted coupon keep working, as on Stripe: the row stays, hidden.
    c.valid = false;
    c._deleted = true;
    store.emit('coupon.deleted', c);
    return { id: c.id, object: 'coupon', deleted: true };
  });

  router.add('GET', '/v1/coupons', (ctx) => listOut(ctx, store.list('coupon').filter((c) => !c._deleted)));

  router.add('POST', '/v1/promotion_codes', (ctx) => {
    const p = ctx.params;
    const promo = obj(p, 'promotion') as Obj;
    const couponId = str(promo, 'coupon');
    if (!couponId) throw missingParam('promotion[coupon]');
    const coupon = getCoupon(store, couponId, 'promotion[coupon]');
    const code = str(p, 'code') ?? randomToken(8).toUpperCase();
    if (store.list('promotion_code').some((pc) => pc.active && pc.code.toUpperCase() === code.toUpperCase())) {
      throw invalidRequest(`An active promotion code with \`code: ${code}\` already exists.`, 'code', 'resource_already_exists');
    }
    const customer = str(p, 'customer') ?? null;
    if (customer && !store.get('customer', customer)) throw noSuch('customer', customer, 'customer');
    const r = obj(p, 'restrictions') ?? {};
    const pc: Obj = {
      id: newId('promo_'),
      object: 'promotion_code',
      active: bool(p, 'active') ?? true,
      code,
      created: store.now(),
      customer,
      customer_account: null,
      expires_at: int(p, 'expires_at') ?? null,
      livemode: false,
      max_redemptions: int(p, 'max_redemptions') ?? null,
      metadata: applyMetadata({}, p),
      promotion: { coupon: coupon.id, type: 'coupon' },
      restrictions: {
        currency_options: {},
        first_time_transaction: bool(r, 'first_time_transaction') ?? false,
        minimum_amount: int(r, 'minimum_amount') ?? null,
        minimum_amount_currency: str(r, 'minimum_amount_currency') ?? null,
      },
      times_redeemed: 0,
    };
    store.insert('promotion_code', pc);
    store.emit('promotion_code.created', pc);
    return out(ctx, pc);
  });

  router.add('GET', '/v1/promotion_codes/:id', (ctx) => {
    const pc = store.get('promotion_code', ctx.pathParams.id);
    if (!pc) throw noSuch('promotion_code', ctx.pathParams.id, 'id');
    return out(ctx, pc);
  });

  router.add('POST', '/v1/promotion_codes/:id', (ctx) => {
    const pc = store.get('promotion_code', ctx.pathParams.id);
    if (!pc) throw noSuch('promotion_code', ctx.pathParams.id, 'id');
    const before = publicCopy(pc);
    const active = bool(ctx.params, 'active');
    if (active !== undefined) pc.active = active;
    pc.metadata = applyMetadata(pc.metadata, ctx.params);
    const prev = diff(before, pc);
    if (Object.keys(prev).length) store.emit('promotion_code.updated', pc, prev);
    return out(ctx, pc);
  });

  router.add('GET', '/v1/promotion_codes', (ctx) => {
    const p = ctx.params;
    let items = store.list('promotion_code');
    const active = bool(p, 'active');
    if (active !== undefined) items = items.filter((x) => x.active === active);
    const code = str(p, 'code');
    if (code) items = items.filter((x) => x.code === code);
    const coupon = str(p, 'coupon');
    if (coupon) items = items.filter((x) => x.promotion.coupon === coupon);
    const customer = str(p, 'customer');
    if (customer) items = items.filter((x) => x.customer === customer);
    return listOut(ctx, items);
  });

  router.add('DELETE', '/v1/subscriptions/:id/discount', (ctx) => {
    const sub = store.get('subscription', ctx.pathParams.id);
    if (!sub) throw noSuch('subscription', ctx.pathParams.id, 'id');
    const ids = sub.discounts as string[];
    if (!ids.length) throw invalidRequest(`No active discount for subscription: ${sub.id}`, undefined, 'resource_missing');
    const before = store.render(sub);
    const d = store.get('discount', ids[0]) as Obj;
    sub.discounts = [];
    store.emit('customer.discount.deleted', d);
    store.emit('customer.subscription.updated', sub, diff(before, store.render(sub)));
    const { end: _end, ...rest } = publicCopy(d);
    return { ...rest, deleted: true };
  });

  router.add('DELETE', '/v1/customers/:id/discount', (ctx) => {
    const c = store.get('customer', ctx.pathParams.id);
    if (!c) throw noSuch('customer', ctx.pathParams.id, 'id');
    if (!c.discount) throw invalidRequest(`No active discount for customer: ${c.id}`, undefined, 'resource_missing');
    const d = c.discount;
    const before = store.render(c);
    c.discount = null;
    store.emit('customer.discount.deleted', d);
    store.emit('customer.updated', c, diff(before, store.render(c)));
    const { end: _end, ...rest } = publicCopy(d) as Obj;
    return { ...rest, deleted: true };
  });
}
