/**
 * SetupIntents: save a card for later without charging it. Confirming with a card that sets up
 * attaches it to the intent's customer, so it can be made the default and pay renewals.
 */
import { invalidRequest, noSuch } from '../errors';
import { newId, randomToken } from '../ids';
import { applyMetadata, bool, obj, str, strList } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { attachPaymentMethod, chargeOutcome, declineError, resolvePaymentMethod } from './payment-methods';

const CONFIRMABLE = ['requires_payment_method', 'requires_confirmation', 'requires_action'];

function getSetupIntent(store: Store, id: string): Obj {
  const si = store.get('setup_intent', id);
  if (!si) throw noSuch('setup_intent', id, 'intent');
  return si;
}

function confirm(store: Store, si: Obj, pmParam: string | undefined): void {
  if (!CONFIRMABLE.includes(si.status)) {
    throw invalidRequest(
      `You cannot confirm this SetupIntent because it has a status of ${si.status}. Only a SetupIntent with one of the following statuses may be confirmed: requires_confirmation, requires_action, requires_payment_method.`,
      undefined,
      'setup_intent_unexpected_state',
    );
  }
  const pmId = pmParam ?? si.payment_method;
  if (!pmId) {
    throw invalidRequest('You cannot confirm this SetupIntent because it is missing a payment method.', 'payment_method', 'setup_intent_unexpected_state');
  }
  const pm = resolvePaymentMethod(store, pmId, 'payment_method');
  si.payment_method = pm.id;
  const attemptId = newId('setatt_');
  si.latest_attempt = attemptId;
  const outcome = chargeOutcome(pm);
  if (outcome === 'requires_action') {
    si.status = 'requires_action';
    si.next_action = {
      type: 'use_stripe_sdk',
      use_stripe_sdk: { type: 'three_d_secure_redirect', stripe_js: `${store.baseUrl}/_emulator/setup_intents/${si.id}/authenticate`, source: pm.id },
    };
    store.emit('setup_intent.requires_action', si);
    return;
  }
  // A card that cannot be set up (declined on verification) fails here, as on Stripe.
  if (outcome === 'declined' && (pm._behavior === 'decline' || pm._behavior === 'insufficient_funds')) {
    const err = declineError(pm);
    si.status = 'requires_payment_method';
    si.payment_method = null;
    si.last_setup_error = {
      code: err.body.code,
      decline_code: err.body.decline_code,
      doc_url: 'https://stripe.com/docs/error-codes/card-declined',
      message: err.body.message,
      payment_method: store.render(pm),
      type: 'card_error',
    };
    store.emit('setup_intent.setup_failed', si);
    const e = declineError(pm, { setup_intent: store.render(si) } as Obj);
    e.keepEffects = true;
    throw e;
  }
  if (si.customer) attachPaymentMethod(store, pm, si.customer);
  si.status = 'succeeded';
  si.next_action = null;
  si.last_setup_error = null;
  store.emit('setup_intent.succeeded', si);
}

/** Finishes (or fails) the 3-D Secure step of a `requires_action` SetupIntent; emulator-only. */
export function authenticateSetupIntent(store: Store, id: string, succeed: boolean): Obj {
  const si = store.get('setup_intent', id);
  if (!si) throw noSuch('setup_intent', id);
  if (si.status !== 'requires_action') throw invalidRequest(`SetupIntent ${id} does not require action (status ${si.status}).`);
  si.next_action = null;
  if (succeed) {
    const pm = store.get('payment_method', si.payment_method);
    if (pm && si.customer) attachPaymentMethod(store, pm, si.customer);
    si.status = 'succeeded';
    store.emit('setup_intent.succeeded', si);
  } else {
    si.status = 'requires_payment_method';
    si.last_setup_error = { code: 'setup_intent_authentication_failure', message: 'The latest attempt to set up the payment method has failed because authentication failed.', type: 'invalid_request_error' };
    store.emit('setup_intent.setup_failed', si);
  }
  return si;
}

export function registerSetupIntents(router: Router, store: Store): void {
  router.add('POST', '/v1/setup_intents', (ctx) => {
    const p = ctx.params;
    const customer = str(p, 'customer') ?? null;
    if (customer && !store.get('customer', customer)) throw noSuch('customer', customer, 'customer');
    const id = newId('seti_');
    const apm = obj(p, 'automatic_payment_methods');
    const si: Obj = {
      id,
      object: 'setup_intent',
      allowed_payment_method_types: strList(p, 'allowed_payment_method_types') ?? null,
      application: null,
      automatic_payment_methods: apm ? { allow_redirects: str(apm, 'allow_redirects') ?? 'always', enabled: bool(apm, 'enabled') ?? false } : null,
      cancellation_reason: null,
      client_secret: `${id}_secret_${randomToken(25)}`,
      created: store.now(),
      customer,
      customer_account: null,
      description: str(p, 'description') ?? null,
      excluded_payment_method_types: null,
      flow_directions: null,
      last_setup_error: null,
      latest_attempt: null,
      livemode: false,
      mandate: null,
      metadata: applyMetadata({}, p),
      next_action: null,
      on_behalf_of: null,
      payment_method: null,
      payment_method_configuration_details: null,
      payment_method_options: { card: { mandate_options: null, network: null, request_three_d_secure: 'automatic' } },
      payment_method_types: strList(p, 'allowed_payment_method_types') ?? ['card'],
      single_use_mandate: null,
      status: 'requires_payment_method',
      usage: str(p, 'usage') ?? 'off_session',
    };
    const pm = str(p, 'payment_method');
    if (pm) {
      si.payment_method = resolvePaymentMethod(store, pm, 'payment_method').id;
      si.status = 'requires_confirmation';
    }
    store.insert('setup_intent', si);
    store.emit('setup_intent.created', si);
    if (bool(p, 'confirm')) confirm(store, si, pm);
    return out(ctx, si);
  });

  router.add('GET', '/v1/setup_intents/:id', (ctx) => out(ctx, getSetupIntent(store, ctx.pathParams.id)));

  router.add('POST', '/v1/setup_intents/:id', (ctx) => {
    const si = getSetupIntent(store, ctx.pathParams.id);
    const p = ctx.params;
    if ('customer' in p) {
      const c = str(p, 'customer');
      if (c && !store.get('customer', c)) throw noSuch('customer', c, 'customer');
      si.customer = c ?? null;
    }
    if ('description' in p) si.description = str(p, 'description') ?? null;
    const pm = str(p, 'payment_method');
    if (pm) {
      si.payment_method = resolvePaymentMethod(store, pm, 'payment_method').id;
      if (si.status === 'requires_payment_method') si.status = 'requires_confirmation';
    }
    si.metadata = applyMetadata(si.metadata, p);
    return out(ctx, si);
  });

  router.add('POST', '/v1/setup_intents/:id/confirm', (ctx) => {
    const si = getSetupIntent(store, ctx.pathParams.id);
    confirm(store, si, str(ctx.params, 'payment_method'));
    return out(ctx, si);
  });

  router.add('POST', '/v1/setup_intents/:id/cancel', (ctx) => {
    const si = getSetupIntent(store, ctx.pathParams.id);
    if (!CONFIRMABLE.includes(si.status)) {
      throw invalidRequest(`You cannot cancel this SetupIntent because it has a status of ${si.status}.`, undefined, 'setup_intent_unexpected_state');
    }
    si.status = 'canceled';
    si.cancellation_reason = str(ctx.params, 'cancellation_reason') ?? null;
    store.emit('setup_intent.canceled', si);
    return out(ctx, si);
  });

  router.add('GET', '/v1/setup_intents', (ctx) => {
    let items = store.list('setup_intent');
    const customer = str(ctx.params, 'customer');
    if (customer) items = items.filter((x) => x.customer === customer);
    const pm = str(ctx.params, 'payment_method');
    if (pm) items = items.filter((x) => x.payment_method === pm);
    return listOut(ctx, items);
  });
}
