/**
 * Checkout sessions: create, retrieve, list, line_items, expire; completion happens on the
 * hosted page (hosted-pages.ts) through completeCheckoutSession.
 */
import { invalidRequest, noSuch } from '../errors';
import { newId, randomToken } from '../ids';
import { applyMetadata, arr, bool, int, obj, str } from '../params';
import { discountIds, findPromotionCode } from './coupons';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { createCustomer } from './customers';
import { attachPaymentMethod, chargeOutcome, declineError, resolvePaymentMethod } from './payment-methods';
import { createPaymentIntent, confirmIntent } from './payment-intents';
import { createSubscription } from './subscriptions';

function lineItemsList(store: Store, s: Obj): Obj {
  const data = (s._lines as Obj[]).map((l) => {
    const price = store.get('price', l.price) as Obj;
    const product = store.get('product', price.product);
    const amount = price.unit_amount * l.quantity;
    return {
      id: l.id,
      object: 'item',
      adjustable_quantity: null,
      amount_discount: 0,
      amount_subtotal: amount,
      amount_tax: 0,
      amount_total: amount,
      currency: price.currency,
      description: product?.name ?? null,
      metadata: {},
      price: store.render(price),
      quantity: l.quantity,
    };
  });
  return { object: 'list', data, has_more: false, url: `/v1/checkout/sessions/${s.id}/line_items` };
}

export function getSession(store: Store, id: string): Obj {
  const s = store.get('checkout.session', id);
  if (!s) throw noSuch('checkout.session', id, 'session');
  return s;
}

export function expireSession(store: Store, s: Obj): void {
  s.status = 'expired';
  s.url = null;
  store.emit('checkout.session.expired', s, { status: 'open' });
}

/** Expires the open sessions past their `expires_at` among those `which` selects (default: all). */
export function expireDueSessions(store: Store, which: (s: Obj) => boolean = () => true): void {
  const now = store.now();
  for (const s of store.table('checkout.session').values()) if (s.status === 'open' && s.expires_at <= now && which(s)) expireSession(store, s);
}

/**
 * Completes an open session as the hosted page's Pay button does: creates the customer if needed,
 * charges the card, creates the subscription (mode=subscription) or a paid PaymentIntent
 * (mode=payment), then emits checkout.session.completed. Returns an error message on decline.
 */
export function completeCheckoutSession(store: Store, s: Obj, form: { email?: string; card?: string; name?: string; promotionCode?: string }): string | null {
  if (s.status !== 'open') return `This Checkout Session is ${s.status}.`;
  try {
    store.transaction(() => {
      let discounts: Obj[] = s._discounts ?? [];
      if (form.promotionCode && form.promotionCode.trim()) {
        if (!s.allow_promotion_codes) throw invalidRequest('This Checkout Session does not accept promotion codes.');
        const pc = findPromotionCode(store, form.promotionCode);
        if (!pc || !pc.active) throw invalidRequest(`The promotion code ${form.promotionCode.trim()} is not valid.`, 'promotion_code');
        discounts = [{ promotion_code: pc.id }];
      }
      const card = form.card && form.card.startsWith('pm_card_') ? form.card : 'pm_card_visa';
      const pm = resolvePaymentMethod(store, card);
      if (chargeOutcome(pm) !== 'succeeded') throw declineError(pm);
      let customer = s.customer ? store.get('customer', s.customer) : undefined;
      const email = s.customer_email ?? form.email ?? customer?.email ?? null;
      if (!customer && (s.mode === 'subscription' || s.customer_creation === 'always')) {
        customer = createCustomer(store, { email, name: form.name || null });
        store.emit('customer.created', customer);
      }
      if (s.mode === 'subscription' && customer) {
        attachPaymentMethod(store, pm, customer.id);
        const sd = s._subscription_data as Obj;
        const days = sd.trial_period_days ? Number(sd.trial_period_days) : 0;
        const trialEnd = sd.trial_end ? Number(sd.trial_end) : days > 0 ? store.now() + days * 86400 : null;
        const ids = discountIds(store, discounts, customer.id, 'discounts');
        store.pendingSubscriptionDiscounts = ids;
        let sub: Obj;
        try {
          sub = createSubscription(store, {
          customer: customer.id,
          items: (s._lines as Obj[]).map((l) => ({ price: store.get('price', l.price) as Obj, quantity: l.quantity, metadata: {} })),
          trialEnd,
          paymentBehavior: 'error_if_incomplete',
          defaultPaymentMethod: pm.id,
          metadata: { ...(sd.metadata ?? {}) },
          description: sd.description ?? null,
          });
        } finally {
          store.pendingSubscriptionDiscounts = null;
        }
        const first = store.get('invoice', sub.latest_invoice);
        s.discounts = ids.map((id) => ({ coupon: null, discount: id, promotion_code: null }));
        if (first) {
          s.amount_total = first.total;
          s.total_details = { ...s.total_details, amount_discount: first.subtotal - first.total };
        }
        s.subscription = sub.id;
        s.invoice = sub.latest_invoice;
        s.payment_status = sub.status === 'trialing' ? 'no_payment_required' : 'paid';
      } else {
        if (customer) attachPaymentMethod(store, pm, customer.id);
        const ids = discountIds(store, discounts, customer?.id ?? null, 'discounts', { checkoutSession: s.id } as Obj);
        const off = ids.reduce((sum, id) => {
          const coupon = store.get('coupon', store.get('discount', id)?.source.coupon);
          if (!coupon) return sum;
          return sum + (coupon.percent_off != null ? Math.round(((s.amount_subtotal - sum) * coupon.percent_off) / 100) : Math.min(s.amount_subtotal - sum, coupon.amount_off ?? 0));
        }, 0);
        s.discounts = ids.map((id) => ({ coupon: null, discount: id, promotion_code: null }));
        s.amount_total = s.amount_subtotal - off;
        s.total_details = { ...s.total_details, amount_discount: off };
        const pi = createPaymentIntent(store, {
          amount: s.amount_total,
          currency: s.currency,
          customer: customer?.id ?? null,
          metadata: { ...(s._payment_intent_data?.metadata ?? {}) },
          description: s._payment_intent_data?.description ?? null,
        });
        confirmIntent(store, pi, pm);
        s.payment_intent = pi.id;
        s.payment_status = 'paid';
      }
      s.customer = customer?.id ?? null;
      s.customer_details = {
        address: null,
        business_name: null,
        email,
        individual_name: null,
        name: form.name || customer?.name || null,
        phone: null,
        tax_exempt: 'none',
        tax_ids: [],
      };
      s.status = 'complete';
      s.url = null;
      store.emit('checkout.session.completed', s, { status: 'open' });
    });
  } catch (e) {
    if (e instanceof Error && 'body' in e) return e.message;
    throw e;
  }
  return null;
}

export function registerCheckout(router: Router, store: Store): void {
  store.includables.set('checkout.session', { line_items: (s) => lineItemsList(store, s) });

  router.add('POST', '/v1/checkout/sessions', (ctx) => {
    const p = ctx.params;
    const mode = str(p, 'mode');
    if (!mode) throw invalidRequest('Missing required param: mode.', 'mode', 'parameter_missing');
    if (mode !== 'subscription' && mode !== 'payment') throw invalidRequest('The emulator supports mode=subscription and mode=payment.', 'mode');
    const items = arr(p, 'line_items');
    if (!items || items.length === 0) throw invalidRequest('Missing required param: line_items.', 'line_items', 'parameter_missing');
    const lines = items.map((it: Obj, i) => {
      const priceId = str(it, 'price');
      if (!priceId) throw invalidRequest(`Missing required param: line_items[${i}][price].`, `line_items[${i}][price]`, 'parameter_missing');
      const price = store.get('price', priceId);
      if (!price) throw noSuch('price', priceId, `line_items[${i}][price]`);
      if (!price.active) throw invalidRequest(`The price \`${priceId}\` is not active.`, `line_items[${i}][price]`);
      if (mode === 'payment' && price.recurring) {
        throw invalidRequest('You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.', `line_items[${i}][price]`);
      }
      if (mode === 'subscription' && !price.recurring) {
        throw invalidRequest('You must specify at least one recurring price in `subscription` mode when using prices.', `line_items[${i}][price]`);
      }
      const metered = price.recurring?.usage_type === 'metered';
      const quantity = int(it, 'quantity', `line_items[${i}][quantity]`) ?? (metered ? undefined : undefined);
      if (!metered && quantity === undefined) throw invalidRequest(`Missing required param: line_items[${i}][quantity].`, `line_items[${i}][quantity]`, 'parameter_missing');
      return { id: newId('li_'), price: price.id, quantity: metered ? 1 : (quantity as number), _metered: metered, _amount: metered ? 0 : price.unit_amount * (quantity as number), _currency: price.currency };
    });
    const currency = lines[0]._currency;
    const customer = str(p, 'customer') ?? null;
    if (customer && !store.get('customer', customer)) throw noSuch('customer', customer, 'customer');
    const customerEmail = str(p, 'customer_email') ?? null;
    if (customer && customerEmail) throw invalidRequest('You may only specify one of these parameters: customer, customer_email.', 'customer_email');
    const now = store.now();
    const expiresAt = int(p, 'expires_at') ?? now + 24 * 3600;
    if (expiresAt < now + 30 * 60 || expiresAt > now + 24 * 3600) {
      throw invalidRequest('The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.', 'expires_at');
    }
    const sd = obj(p, 'subscription_data') ?? {};
    const allowPromotionCodes = bool(p, 'allow_promotion_codes');
    const discountsParam = arr(p, 'discounts');
    if (allowPromotionCodes && discountsParam) {
      throw invalidRequest('You may only specify one of these parameters: allow_promotion_codes, discounts.', 'discounts', 'parameters_exclusive');
    }
    // Checked now so a missing coupon or code fails the session creation, as on Stripe.
    for (const [i, d] of (discountsParam ?? []).entries()) {
      const coupon = str(d as Obj, 'coupon');
      const pc = str(d as Obj, 'promotion_code');
      if (coupon && !store.get('coupon', coupon)) throw noSuch('coupon', coupon, `discounts[${i}][coupon]`);
      if (pc && !store.get('promotion_code', pc)) throw noSuch('promotion_code', pc, `discounts[${i}][promotion_code]`);
    }
    const total = lines.reduce((s, l) => s + l._amount, 0);
    const id = `cs_test_${randomToken(58)}`;
    const session: Obj = {
      id,
      object: 'checkout.session',
      adaptive_pricing: { enabled: false },
      after_expiration: null,
      allowed_payment_method_types: null,
      allow_promotion_codes: allowPromotionCodes ?? null,
      amount_subtotal: total,
      amount_total: total,
      automatic_tax: { enabled: false, liability: null, provider: null, status: null },
      billing_address_collection: null,
      cancel_url: str(p, 'cancel_url') ?? null,
      client_reference_id: str(p, 'client_reference_id') ?? null,
      client_secret: null,
      collected_information: null,
      consent: null,
      consent_collection: null,
      created: now,
      currency,
      currency_conversion: null,
      custom_fields: [],
      custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
      customer,
      customer_account: null,
      customer_creation: mode === 'payment' && !customer ? (str(p, 'customer_creation') ?? 'if_required') : null,
      customer_details: customer || customerEmail ? { address: null, email: customerEmail ?? store.get('customer', customer as string)?.email ?? null, name: null, phone: null, tax_exempt: 'none', tax_ids: null } : null,
      customer_email: customerEmail,
      discounts: [],
      expires_at: expiresAt,
      integration_identifier: null,
      invoice: null,
      invoice_creation: mode === 'payment' ? { enabled: false, invoice_data: { account_tax_ids: null, custom_fields: null, description: null, footer: null, issuer: null, metadata: {}, rendering_options: null } } : null,
      livemode: false,
      locale: str(p, 'locale') ?? null,
      managed_payments: null,
      metadata: applyMetadata({}, p),
      mode,
      origin_context: null,
      payment_intent: null,
      payment_link: null,
      payment_method_collection: mode === 'subscription' ? 'always' : null,
      payment_method_configuration_details: null,
      payment_method_options: { card: { request_three_d_secure: 'automatic' } },
      payment_method_types: ['card'],
      payment_status: 'unpaid',
      permissions: null,
      phone_number_collection: { enabled: false },
      recovered_from: null,
      saved_payment_method_options: null,
      setup_intent: null,
      shipping_address_collection: null,
      shipping_cost: null,
      shipping_options: [],
      status: 'open',
      submit_type: null,
      subscription: null,
      success_url: str(p, 'success_url') ?? null,
      total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
      ui_mode: 'hosted',
      url: `${store.baseUrl}/checkout/${id}`,
      wallet_options: null,
      _lines: lines.map((l) => ({ id: l.id, price: l.price, quantity: l.quantity })),
      _subscription_data: { trial_period_days: int(sd, 'trial_period_days'), trial_end: int(sd, 'trial_end'), metadata: applyMetadata({}, sd), description: str(sd, 'description') },
      _payment_intent_data: obj(p, 'payment_intent_data') ?? null,
      _discounts: discountsParam ?? [],
    };
    store.insert('checkout.session', session);
    return out(ctx, session);
  });

  router.add('GET', '/v1/checkout/sessions/:id', (ctx) => out(ctx, getSession(store, ctx.pathParams.id)));

  router.add('GET', '/v1/checkout/sessions/:id/line_items', (ctx) => {
    const s = getSession(store, ctx.pathParams.id);
    return listOut(ctx, lineItemsList(store, s).data);
  });

  router.add('POST', '/v1/checkout/sessions/:id/expire', (ctx) => {
    const s = getSession(store, ctx.pathParams.id);
    if (s.status !== 'open') {
      throw invalidRequest(`Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${s.status}".`, undefined, 'checkout_session_unexpected_state' as string);
    }
    expireSession(store, s);
    return out(ctx, s);
  });

  router.add('POST', '/v1/checkout/sessions/:id', (ctx) => {
    const s = getSession(store, ctx.pathParams.id);
    s.metadata = applyMetadata(s.metadata, ctx.params);
    return out(ctx, s);
  });

  router.add('GET', '/v1/checkout/sessions', (ctx) => {
    const p = ctx.params;
    let items = store.list('checkout.session');
    for (const f of ['customer', 'status', 'subscription', 'payment_intent'] as const) {
      const v = str(p, f);
      if (v) items = items.filter((s) => s[f] === v);
    }
    return listOut(ctx, items);
  });
}
