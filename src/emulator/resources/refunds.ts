/**
 * Refunds and the charges they refund: `POST /v1/refunds` by `payment_intent` or `charge`
 * (all that is left by default, or part of it), retrieve, update, cancel, list; charges
 * retrieve and list. A refund moves the charge's `amount_refunded` and `refunded`.
 */
import { invalidRequest, missingParam, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, int, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';

function money(amount: number, currency: string): string {
  return `${currency === 'usd' ? '$' : ''}${(amount / 100).toFixed(2)}${currency === 'usd' ? '' : ` ${currency.toUpperCase()}`}`;
}

function getRefund(store: Store, id: string): Obj {
  const r = store.get('refund', id);
  if (!r) throw noSuch('refund', id, 'id');
  return r;
}

export function registerRefunds(router: Router, store: Store): void {
  router.add('POST', '/v1/refunds', (ctx) => {
    const p = ctx.params;
    const piId = str(p, 'payment_intent');
    const chargeId = str(p, 'charge');
    if (!piId && !chargeId) throw missingParam('charge');
    let charge: Obj | undefined;
    if (chargeId) {
      charge = store.get('charge', chargeId);
      if (!charge) throw noSuch('charge', chargeId, 'charge');
      if (piId && charge.payment_intent !== piId) throw invalidRequest('The charge does not belong to this PaymentIntent.', 'payment_intent', 'parameter_invalid_string');
    } else {
      const pi = store.get('payment_intent', piId as string);
      if (!pi) throw noSuch('payment_intent', piId as string, 'payment_intent');
      if (pi.status !== 'succeeded' || !pi.latest_charge) {
        throw invalidRequest(
          `This PaymentIntent (${pi.id}) does not have a successful charge to refund.`,
          'payment_intent',
          'charge_not_refundable' as string,
        );
      }
      charge = store.get('charge', pi.latest_charge);
      if (!charge) throw noSuch('charge', pi.latest_charge, 'payment_intent');
    }
    // amount_refunded also holds what a partial capture released, so this is captured minus refunds.
    const left = charge.amount - charge.amount_refunded;
    if (!charge.captured) throw invalidRequest('This charge has not been captured; cancel its PaymentIntent instead.', 'charge', 'charge_not_refundable' as string);
    if (left <= 0) throw invalidRequest(`Charge ${charge.id} has already been refunded.`, 'charge', 'charge_already_refunded');
    const amount = int(p, 'amount') ?? left;
    if (amount <= 0) throw invalidRequest('Invalid positive integer', 'amount', 'parameter_invalid_integer');
    if (amount > left) {
      throw invalidRequest(
        `Refund amount (${money(amount, charge.currency)}) is greater than unrefunded amount on charge (${money(left, charge.currency)})`,
        'amount',
        'amount_too_large',
      );
    }
    const refund: Obj = {
      id: newId('re_'),
      object: 'refund',
      amount,
      balance_transaction: null,
      charge: charge.id,
      created: store.now(),
      currency: charge.currency,
      customer: charge.customer,
      customer_account: null,
      description: null,
      destination_details: { card: { reference: null, reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' }, type: 'card' },
      metadata: applyMetadata({}, p),
      payment_intent: charge.payment_intent,
      payment_method: charge.payment_method,
      reason: str(p, 'reason') ?? null,
      receipt_number: null,
      source_transfer_reversal: null,
      status: 'succeeded',
      transfer_reversal: null,
    };
    store.insert('refund', refund);
    const prev = { amount_refunded: charge.amount_refunded, refunded: charge.refunded };
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded >= charge.amount;
    store.emit('refund.created', refund);
    store.emit('charge.refunded', charge, prev);
    return out(ctx, refund);
  });

  router.add('GET', '/v1/refunds/:id', (ctx) => out(ctx, getRefund(store, ctx.pathParams.id)));

  router.add('POST', '/v1/refunds/:id', (ctx) => {
    const r = getRefund(store, ctx.pathParams.id);
    const before = { metadata: { ...r.metadata } };
    r.metadata = applyMetadata(r.metadata, ctx.params);
    store.emit('refund.updated', r, before);
    return out(ctx, r);
  });

  router.add('POST', '/v1/refunds/:id/cancel', (ctx) => {
    const r = getRefund(store, ctx.pathParams.id);
    // Card refunds succeed at once and cannot be canceled, as on Stripe.
    throw invalidRequest(`Can't cancel a refund with a status of ${r.status}. Only refunds with a status of requires_action can be canceled.`, undefined, 'refund_unexpected_state' as string);
  });

  router.add('GET', '/v1/refunds', (ctx) => {
    let items = store.list('refund');
    const charge = str(ctx.params, 'charge');
    if (charge) items = items.filter((x) => x.charge === charge);
    const pi = str(ctx.params, 'payment_intent');
    if (pi) items = items.filter((x) => x.payment_intent === pi);
    return listOut(ctx, items);
  });

  router.add('GET', '/v1/charges/:id', (ctx) => {
    const c = store.get('charge', ctx.pathParams.id);
    if (!c) throw noSuch('charge', ctx.pathParams.id, 'id');
    return out(ctx, c);
  });

  router.add('GET', '/v1/charges', (ctx) => {
    let items = store.list('charge');
    const customer = str(ctx.params, 'customer');
    if (customer) items = items.filter((x) => x.customer === customer);
    const pi = str(ctx.params, 'payment_intent');
    if (pi) items = items.filter((x) => x.payment_intent === pi);
    return listOut(ctx, items);
  });
}
