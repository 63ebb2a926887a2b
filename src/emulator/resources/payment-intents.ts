/**
 * PaymentIntents: the minimal lifecycle subscriptions and checkout need (create, retrieve,
 * confirm, cancel, list). A confirmed intent that succeeds pays the invoice it belongs to.
 */
import { ApiError, invalidRequest, noSuch } from '../errors';
import { newId, randomToken } from '../ids';
import { applyMetadata, bool, int, obj, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { attachPaymentMethod, chargeOutcome, declineError, resolvePaymentMethod } from './payment-methods';
import { settlements } from './settlements';

export function createPaymentIntent(
  store: Store,
  f: { amount: number; currency: string; customer: string | null; description?: string | null; metadata?: Obj; invoice?: string; setupFutureUsage?: string | null; captureMethod?: string },
): Obj {
  const id = newId('pi_');
  const pi: Obj = {
    id,
    object: 'payment_intent',
    allowed_payment_method_types: null,
    amount: f.amount,
    amount_capturable: 0,
    amount_details: { tip: {} },
    amount_received: 0,
    application: null,
    application_fee_amount: null,
    automatic_payment_methods: null,
    canceled_at: null,
    cancellation_reason: null,
    capture_method: f.captureMethod ?? 'automatic',
    client_secret: `${id}_secret_${randomToken(25)}`,
    confirmation_method: 'automatic',
    created: store.now(),
    currency: f.currency,
    customer: f.customer,
    customer_account: null,
    description: f.description ?? null,
    excluded_payment_method_types: null,
    last_payment_error: null,
    latest_charge: null,
    livemode: false,
    managed_payments: null,
    metadata: f.metadata ?? {},
    next_action: null,
    on_behalf_of: null,
    payment_method: null,
    payment_method_configuration_details: null,
    payment_method_options: { card: { installments: null, mandate_options: null, network: null, request_three_d_secure: 'automatic' } },
    payment_method_types: ['card'],
    payment_record: null,
    processing: null,
    receipt_email: null,
    review: null,
    setup_future_usage: f.setupFutureUsage ?? null,
    shipping: null,
    source: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: 'requires_payment_method',
    transfer_data: null,
    transfer_group: null,
    _invoice: f.invoice ?? null,
  };
  store.insert('payment_intent', pi);
  store.emit('payment_intent.created', pi);
  return pi;
}

export type ConfirmResult = 'succeeded' | 'requires_action' | 'declined';

/** The charge a successful (or authorized, for manual capture) payment leaves behind. */
function createCharge(store: Store, pi: Obj, captured: boolean): Obj {
  const pm = pi.payment_method ? store.get('payment_method', pi.payment_method) : undefined;
  const id = newId('ch_');
  const charge: Obj = {
    id,
    object: 'charge',
    amount: pi.amount,
    amount_captured: captured ? pi.amount : 0,
    amount_refunded: 0,
    application: null,
    application_fee: null,
    application_fee_amount: null,
    balance_transaction: null,
    billing_details: pm ? { ...pm.billing_details } : { address: null, email: null, name: null, phone: null, tax_id: null },
    calculated_statement_descriptor: 'TOLLGATE EMULATOR',
    captured,
    created: store.now(),
    currency: pi.currency,
    customer: pi.customer,
    description: pi.description,
    disputed: false,
    failure_balance_transaction: null,
    failure_code: null,
    failure_message: null,
    fraud_details: {},
    livemode: false,
    metadata: { ...pi.metadata },
    on_behalf_of: null,
    outcome: { advice_code: null, network_advice_code: null, network_decline_code: null, network_status: 'approved_by_network', reason: null, risk_level: 'normal', seller_message: 'Payment complete.', type: 'authorized' },
    paid: true,
    payment_intent: pi.id,
    payment_method: pm?.id ?? null,
    payment_method_details: pm ? { card: { brand: pm.card.brand, country: pm.card.country, exp_month: pm.card.exp_month, exp_year: pm.card.exp_year, funding: pm.card.funding, last4: pm.card.last4 }, type: 'card' } : null,
    receipt_email: null,
    receipt_number: null,
    receipt_url: `${store.baseUrl}/receipts/${id}`,
    refunded: false,
    review: null,
    shipping: null,
    source: null,
    source_transfer: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: 'succeeded',
    transfer_data: null,
    transfer_group: null,
  };
  store.insert('charge', charge);
  store.emit('charge.succeeded', charge);
  return charge;
}

export function succeedIntent(store: Store, pi: Obj): void {
  const prev = { status: pi.status };
  if (pi.capture_method === 'manual' && !pi._invoice) {
    // Authorized only: the amount waits for `capture`.
    pi.status = 'requires_capture';
    pi.amount_capturable = pi.amount;
    pi.latest_charge = createCharge(store, pi, false).id;
    pi.last_payment_error = null;
    pi.next_action = null;
    store.emit('payment_intent.amount_capturable_updated', pi, prev);
    return;
  }
  pi.status = 'succeeded';
  pi.amount_received = pi.amount;
  pi.latest_charge = createCharge(store, pi, true).id;
  pi.last_payment_error = null;
  pi.next_action = null;
  if (pi.customer && pi.setup_future_usage && pi.payment_method) {
    const pm = store.get('payment_method', pi.payment_method);
    if (pm && !pm.customer) attachPaymentMethod(store, pm, pi.customer);
  }
  store.emit('payment_intent.succeeded', pi, prev);
  if (pi._invoice) {
    const inv = store.get('invoice', pi._invoice);
    if (inv && inv.status === 'open') settlements.invoicePaid(store, inv, pi);
  }
}

/** Attempts the charge with a payment method; records the outcome and its events. */
export function confirmIntent(store: Store, pi: Obj, pm: Obj): ConfirmResult {
  pi.payment_method = pm.id;
  const outcome = chargeOutcome(pm);
  if (outcome === 'succeeded') {
    succeedIntent(store, pi);
    return 'succeeded';
  }
  const inv = pi._invoice ? store.get('invoice', pi._invoice) : undefined;
  if (outcome === 'requires_action') {
    pi.status = 'requires_action';
    pi.next_action = {
      type: 'use_stripe_sdk',
      use_stripe_sdk: { type: 'three_d_secure_redirect', stripe_js: `${store.baseUrl}/_emulator/payment_intents/${pi.id}/authenticate`, source: pm.id },
    };
    store.emit('payment_intent.requires_action', pi);
    if (inv) settlements.invoicePaymentActionRequired(store, inv);
    return 'requires_action';
  }
  const err = declineError(pm);
  pi.status = 'requires_payment_method';
  pi.last_payment_error = {
    charge: newId('ch_'),
    code: err.body.code,
    decline_code: err.body.decline_code,
    doc_url: 'https://stripe.com/docs/error-codes/card-declined',
    message: err.body.message,
    payment_method: store.render(pm),
    type: 'card_error',
  };
  store.emit('payment_intent.payment_failed', pi);
  if (inv) settlements.invoicePaymentFailed(store, inv);
  return 'declined';
}

export function getPaymentIntent(store: Store, id: string): Obj {
  const pi = store.get('payment_intent', id);
  if (!pi) throw noSuch('payment_intent', id, 'intent');
  return pi;
}

function confirmRoute(store: Store, pi: Obj, pmParam: string | undefined): Obj {
  if (!['requires_payment_method', 'requires_confirmation', 'requires_action'].includes(pi.status)) {
    throw invalidRequest(
      `You cannot confirm this PaymentIntent because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be confirmed: requires_confirmation, requires_action, requires_payment_method.`,
      undefined,
      'payment_intent_unexpected_state',
    );
  }
  const pmId = pmParam ?? pi.payment_method;
  if (!pmId) {
    throw invalidRequest(
      'You cannot confirm this PaymentIntent because it\u2019s missing a payment method. To confirm the PaymentIntent with cus, specify a payment method attached to this customer along with the customer ID.',
      'payment_method',
      'payment_intent_unexpected_state',
    );
  }
  const pm = resolvePaymentMethod(store, pmId, 'payment_method');
  const result = confirmIntent(store, pi, pm);
  if (result === 'declined') {
    const err = declineError(pm, { payment_intent: store.render(pi), payment_method: store.render(pm) });
    err.keepEffects = true;
    throw err;
  }
  return pi;
}

export function registerPaymentIntents(router: Router, store: Store): void {
  router.add('POST', '/v1/payment_intents', (ctx) => {
    const p = ctx.params;
    const amount = int(p, 'amount');
    if (amount === undefined) throw invalidRequest('Missing required param: amount.', 'amount', 'parameter_missing');
    const currency = str(p, 'currency');
    if (!currency) throw invalidRequest('Missing required param: currency.', 'currency', 'parameter_missing');
    const customer = str(p, 'customer') ?? null;
    if (customer && !store.get('customer', customer)) throw noSuch('customer', customer, 'customer');
    const pi = createPaymentIntent(store, {
      amount,
      currency: currency.toLowerCase(),
      customer,
      description: str(p, 'description'),
      metadata: applyMetadata({}, p),
      setupFutureUsage: str(p, 'setup_future_usage'),
      captureMethod: str(p, 'capture_method'),
    });
    const apm = obj(p, 'automatic_payment_methods');
    if (apm) {
      pi.automatic_payment_methods = { allow_redirects: str(apm, 'allow_redirects') ?? 'always', enabled: bool(apm, 'enabled') ?? false };
    }
    const pm = str(p, 'payment_method');
    if (pm) {
      pi.payment_method = resolvePaymentMethod(store, pm).id;
      pi.status = 'requires_confirmation';
    }
    if (bool(p, 'confirm')) confirmRoute(store, pi, pm);
    return out(ctx, pi);
  });

  router.add('GET', '/v1/payment_intents/:id', (ctx) => out(ctx, getPaymentIntent(store, ctx.pathParams.id)));

  router.add('POST', '/v1/payment_intents/:id/confirm', (ctx) => {
    const pi = getPaymentIntent(store, ctx.pathParams.id);
    return out(ctx, confirmRoute(store, pi, str(ctx.params, 'payment_method')));
  });

  router.add('POST', '/v1/payment_intents/:id/capture', (ctx) => {
    const pi = getPaymentIntent(store, ctx.pathParams.id);
    if (pi.status !== 'requires_capture') {
      throw invalidRequest(
        `This PaymentIntent could not be captured because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.`,
        undefined,
        'payment_intent_unexpected_state',
      );
    }
    const amount = int(ctx.params, 'amount_to_capture') ?? pi.amount_capturable;
    if (amount > pi.amount_capturable || amount <= 0) {
      throw invalidRequest(`The amount to capture must be at most the amount capturable (${pi.amount_capturable}).`, 'amount_to_capture', 'amount_too_large');
    }
    const prev = { status: pi.status, amount_capturable: pi.amount_capturable };
    pi.status = 'succeeded';
    pi.amount_received = amount;
    pi.amount_capturable = 0;
    pi.metadata = applyMetadata(pi.metadata, ctx.params);
    const charge = store.get('charge', pi.latest_charge);
    if (charge) {
      charge.captured = true;
      charge.amount_captured = amount;
      // What is not captured goes back to the card, as on Stripe.
      charge.amount_refunded = charge.amount - amount;
      store.emit('charge.captured', charge, { captured: false, amount_captured: 0 });
    }
    store.emit('payment_intent.succeeded', pi, prev);
    return out(ctx, pi);
  });

  router.add('POST', '/v1/payment_intents/:id/cancel', (ctx) => {
    const pi = getPaymentIntent(store, ctx.pathParams.id);
    if (pi.status === 'succeeded' || pi.status === 'canceled') {
      throw invalidRequest(`You cannot cancel this PaymentIntent because it has a status of ${pi.status}.`, undefined, 'payment_intent_unexpected_state');
    }
    if (pi._invoice) {
      throw invalidRequest('You cannot cancel this PaymentIntent because it was created by an invoice. Void the invoice instead.', undefined, 'payment_intent_unexpected_state');
    }
    pi.status = 'canceled';
    pi.canceled_at = store.now();
    pi.cancellation_reason = str(ctx.params, 'cancellation_reason') ?? null;
    store.emit('payment_intent.canceled', pi);
    return out(ctx, pi);
  });

  router.add('POST', '/v1/payment_intents/:id', (ctx) => {
    const pi = getPaymentIntent(store, ctx.pathParams.id);
    pi.metadata = applyMetadata(pi.metadata, ctx.params);
    if ('description' in ctx.params) pi.description = str(ctx.params, 'description') ?? null;
    return out(ctx, pi);
  });

  router.add('GET', '/v1/payment_intents', (ctx) => {
    let items = store.list('payment_intent');
    const customer = str(ctx.params, 'customer');
    if (customer) items = items.filter((x) => x.customer === customer);
    return listOut(ctx, items);
  });
}

/** Finishes (or fails) the 3-D Secure step of a `requires_action` intent; emulator-only. */
export function authenticateIntent(store: Store, id: string, succeed: boolean): Obj {
  const pi = store.get('payment_intent', id);
  if (!pi) throw noSuch('payment_intent', id);
  if (pi.status !== 'requires_action') throw invalidRequest(`PaymentIntent ${id} does not require action (status ${pi.status}).`);
  if (succeed) {
    succeedIntent(store, pi);
  } else {
    pi.status = 'requires_payment_method';
    pi.next_action = null;
    pi.last_payment_error = {
      code: 'payment_intent_authentication_failure',
      message: 'The provided PaymentMethod has failed authentication.',
      type: 'invalid_request_error',
    };
    store.emit('payment_intent.payment_failed', pi);
    const inv = pi._invoice ? store.get('invoice', pi._invoice) : undefined;
    if (inv) settlements.invoicePaymentFailed(store, inv);
  }
  return pi;
}

export { ApiError };
