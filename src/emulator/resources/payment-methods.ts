/**
 * Payment methods: Stripe's test tokens (`pm_card_visa`, `pm_card_chargeDeclined`, ...) become
 * new `pm_...` objects when used, as on Stripe, each remembering how charges against it behave.
 */
import { cardError, invalidRequest, noSuch } from '../errors';
import { newId, randomToken } from '../ids';
import type { Obj, Store } from '../store';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Ctx } from '../router';
import { applyMetadata, obj, str } from '../params';

export const CHARGE_BEHAVIORS = ['succeed', 'decline', 'insufficient_funds', 'customer_fail', 'authenticate'] as const;
export type ChargeBehavior = (typeof CHARGE_BEHAVIORS)[number];

interface TestCard {
  brand: string;
  last4: string;
  behavior: ChargeBehavior;
}

const TEST_CARDS: Record<string, TestCard> = {
  pm_card_visa: { brand: 'visa', last4: '4242', behavior: 'succeed' },
  pm_card_visa_debit: { brand: 'visa', last4: '5556', behavior: 'succeed' },
  pm_card_mastercard: { brand: 'mastercard', last4: '4444', behavior: 'succeed' },
  pm_card_amex: { brand: 'amex', last4: '8431', behavior: 'succeed' },
  pm_card_chargeDeclined: { brand: 'visa', last4: '0002', behavior: 'decline' },
  pm_card_chargeDeclinedInsufficientFunds: { brand: 'visa', last4: '9995', behavior: 'insufficient_funds' },
  pm_card_chargeCustomerFail: { brand: 'visa', last4: '0341', behavior: 'customer_fail' },
  pm_card_authenticationRequired: { brand: 'visa', last4: '3184', behavior: 'authenticate' },
};

export function isTestToken(id: string): boolean {
  return id in TEST_CARDS;
}

export function testTokens(): string[] {
  return Object.keys(TEST_CARDS);
}

/** Stripe's test card numbers and card tokens, by the test payment method they behave like. */
const TEST_NUMBERS: Record<string, string> = {
  '4242424242424242': 'pm_card_visa',
  '4000056655665556': 'pm_card_visa_debit',
  '5555555555554444': 'pm_card_mastercard',
  '378282246310005': 'pm_card_amex',
  '4000000000000002': 'pm_card_chargeDeclined',
  '4000000000009995': 'pm_card_chargeDeclinedInsufficientFunds',
  '4000000000000341': 'pm_card_chargeCustomerFail',
  '4000002760003184': 'pm_card_authenticationRequired',
  '4000002500003155': 'pm_card_authenticationRequired',
};
const TEST_CARD_TOKENS: Record<string, string> = {
  tok_visa: 'pm_card_visa',
  tok_visa_debit: 'pm_card_visa_debit',
  tok_mastercard: 'pm_card_mastercard',
  tok_amex: 'pm_card_amex',
  tok_chargeDeclined: 'pm_card_chargeDeclined',
  tok_chargeDeclinedInsufficientFunds: 'pm_card_chargeDeclinedInsufficientFunds',
  tok_chargeCustomerFail: 'pm_card_chargeCustomerFail',
  tok_authenticationRequired: 'pm_card_authenticationRequired',
};

function createFromToken(store: Store, token: string): Obj {
  const card = TEST_CARDS[token];
  const pm: Obj = {
    id: newId('pm_'),
    object: 'payment_method',
    allow_redisplay: 'unspecified',
    billing_details: {
      address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null },
      email: null,
      name: null,
      phone: null,
      tax_id: null,
    },
    card: {
      brand: card.brand,
      checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'unchecked' },
      country: 'US',
      display_brand: card.brand,
      exp_month: 12,
      exp_year: new Date().getUTCFullYear() + 3,
      fingerprint: randomToken(16),
      funding: 'credit',
      generated_from: null,
      last4: card.last4,
      networks: { available: [card.brand], preferred: null },
      regulated_status: 'unregulated',
      three_d_secure_usage: { supported: true },
      wallet: null,
    },
    created: store.now(),
    customer: null,
    customer_account: null,
    livemode: false,
    metadata: {},
    type: 'card',
    _behavior: card.behavior,
    _token: token,
  };
  return store.insert('payment_method', pm);
}

/**
 * Resolves a payment method id or test token. Tokens already materialised in this request
 * (e.g. `payment_method` and `invoice_settings[default_payment_method]` both `pm_card_visa`)
 * resolve to the same object through `seen`.
 */
export function resolvePaymentMethod(store: Store, id: string, param = 'payment_method', seen?: Map<string, Obj>): Obj {
  if (isTestToken(id)) {
    const prior = seen?.get(id);
    if (prior) return prior;
    const pm = createFromToken(store, id);
    seen?.set(id, pm);
    return pm;
  }
  const pm = store.get('payment_method', id);
  if (!pm) throw noSuch('PaymentMethod', id, param);
  return pm;
}

export function declineError(pm: Obj, extra: Obj = {}) {
  const b: ChargeBehavior = pm._behavior;
  if (b === 'insufficient_funds') {
    return cardError('Your card has insufficient funds.', 'card_declined', 'insufficient_funds', extra);
  }
  return cardError('Your card was declined.', 'card_declined', 'generic_decline', extra);
}

export function attachPaymentMethod(store: Store, pm: Obj, customerId: string): Obj {
  if (pm.customer === customerId) return pm;
  if (pm.customer) {
    throw invalidRequest(
      'The payment method you provided has already been attached to a customer.',
      'payment_method',
      'payment_method_unexpected_state',
    );
  }
  // Stripe validates the card when attaching it: 4000000000000002 (pm_card_chargeDeclined) cannot be
  // attached, while 4000000000000341 (pm_card_chargeCustomerFail) attaches and fails later charges.
  if (pm._behavior === 'decline' || pm._behavior === 'insufficient_funds') {
    throw declineError(pm, { param: 'payment_method' });
  }
  pm.customer = customerId;
  store.emit('payment_method.attached', pm);
  return pm;
}

export type ChargeOutcome = 'succeeded' | 'requires_action' | 'declined';

export function chargeOutcome(pm: Obj): ChargeOutcome {
  switch (pm._behavior as ChargeBehavior) {
    case 'succeed':
      return 'succeeded';
    case 'authenticate':
      return 'requires_action';
    default:
      return 'declined';
  }
}

/** `POST /v1/payment_methods` with `type=card` and a test card number or card token. */
function createCardPaymentMethod(store: Store, p: Obj): Obj {
  const type = str(p, 'type');
  if (!type) throw invalidRequest('Missing required param: type.', 'type', 'parameter_missing');
  if (type !== 'card') {
    throw invalidRequest(`The emulator creates card payment methods only; type \`${type}\` is not available here.`, 'type', 'parameter_invalid_string');
  }
  const card = obj(p, 'card');
  if (!card) throw invalidRequest('Missing required param: card.', 'card', 'parameter_missing');
  let template: string | undefined;
  const token = str(card, 'token');
  if (token) {
    template = TEST_CARD_TOKENS[token];
    if (!template) throw noSuch('token', token, 'card[token]');
  } else {
    const number = str(card, 'number')?.replace(/\s+/g, '');
    if (!number) throw invalidRequest('Missing required param: card[number].', 'card[number]', 'parameter_missing');
    template = TEST_NUMBERS[number];
    if (!template) throw cardError('Your card number is incorrect.', 'incorrect_number', undefined, { param: 'card[number]' });
    const month = Number(card.exp_month);
    const year = Number(card.exp_year);
    if (!Number.isInteger(month) || month < 1 || month > 12) throw cardError("Your card's expiration month is invalid.", 'invalid_expiry_month', undefined, { param: 'card[exp_month]' });
    if (!Number.isInteger(year) || year < new Date().getUTCFullYear()) throw cardError("Your card's expiration year is invalid.", 'invalid_expiry_year', undefined, { param: 'card[exp_year]' });
  }
  const pm = createFromToken(store, template);
  if (card.exp_month) pm.card.exp_month = Number(card.exp_month);
  if (card.exp_year) pm.card.exp_year = Number(card.exp_year);
  const bd = obj(p, 'billing_details');
  if (bd) {
    for (const k of ['email', 'name', 'phone'] as const) if (k in bd) pm.billing_details[k] = str(bd, k) ?? null;
    const addr = obj(bd, 'address');
    if (addr) for (const k of Object.keys(pm.billing_details.address)) if (k in addr) pm.billing_details.address[k] = str(addr, k) ?? null;
  }
  pm.metadata = applyMetadata({}, p);
  const redisplay = str(p, 'allow_redisplay');
  if (redisplay) pm.allow_redisplay = redisplay;
  return pm;
}

export function registerPaymentMethods(router: Router, store: Store): void {
  router.add('POST', '/v1/payment_methods', (ctx) => out(ctx, createCardPaymentMethod(store, ctx.params)));

  router.add('POST', '/v1/payment_methods/:id/attach', (ctx) => {
    const customer = str(ctx.params, 'customer');
    if (!customer) throw invalidRequest('Missing required param: customer.', 'customer', 'parameter_missing');
    if (!store.get('customer', customer)) throw noSuch('customer', customer, 'customer');
    const pm = resolvePaymentMethod(store, ctx.pathParams.id, 'payment_method');
    attachPaymentMethod(store, pm, customer);
    return out(ctx, pm);
  });

  router.add('POST', '/v1/payment_methods/:id/detach', (ctx) => {
    const pm = store.get('payment_method', ctx.pathParams.id);
    if (!pm) throw noSuch('PaymentMethod', ctx.pathParams.id);
    if (!pm.customer) {
      throw invalidRequest('The payment method you provided is not attached to a customer so detachment is impossible.', undefined, 'payment_method_unexpected_state');
    }
    const prev = { customer: pm.customer };
    pm.customer = null;
    store.emit('payment_method.detached', pm, prev);
    return out(ctx, pm);
  });

  router.add('GET', '/v1/payment_methods/:id', (ctx) => {
    const id = ctx.pathParams.id;
    const pm = isTestToken(id) ? resolvePaymentMethod(store, id) : store.get('payment_method', id);
    if (!pm) throw noSuch('PaymentMethod', id);
    return out(ctx, pm);
  });

  router.add('POST', '/v1/payment_methods/:id', (ctx) => {
    const pm = store.get('payment_method', ctx.pathParams.id);
    if (!pm) throw noSuch('PaymentMethod', ctx.pathParams.id);
    pm.metadata = applyMetadata(pm.metadata, ctx.params);
    store.emit('payment_method.updated', pm);
    return out(ctx, pm);
  });

  const listFor = (ctx: Ctx, customer: string | undefined) => {
    let items = store.list('payment_method').filter((pm) => pm.customer);
    if (customer) items = items.filter((pm) => pm.customer === customer);
    const type = str(ctx.params, 'type');
    if (type) items = items.filter((pm) => pm.type === type);
    return listOut(ctx, items);
  };
  router.add('GET', '/v1/payment_methods', (ctx) => {
    const customer = str(ctx.params, 'customer');
    // As the nested route does, a customer that does not exist is a 404, not an empty list.
    if (customer && !store.get('customer', customer)) throw noSuch('customer', customer, 'customer');
    return listFor(ctx, customer);
  });
  router.add('GET', '/v1/customers/:id/payment_methods', (ctx) => {
    if (!store.get('customer', ctx.pathParams.id)) throw noSuch('customer', ctx.pathParams.id, 'customer');
    return listFor(ctx, ctx.pathParams.id);
  });
}
