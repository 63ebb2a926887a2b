/**
 * Invoice routes: retrieve, list, lines and payments; draft invoices (create, add lines, update,
 * delete, finalize, send); pay, void, mark uncollectible. The object is built in
 * invoice-model.ts, finalized and paid in invoice-payments.ts.
 */
import { cardError, invalidRequest, missingParam, noSuch } from '../errors';
import { applyMetadata, arr, bool, int, rangeFilter, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import { publicCopy, type Obj, type Store } from '../store';
import { discountIds } from './coupons';
import { createInvoiceItem } from './invoice-items';
import { invoiceItemLine, lineObject, recomputeInvoice, type LineSpec } from './invoice-lines';
import { createInvoice, getInvoice, invoicePaymentsList } from './invoice-model';
import { attemptInvoicePayment, finalizeInvoice, markInvoicePaid } from './invoice-payments';
import { resolvePaymentMethod } from './payment-methods';

function requireDraft(inv: Obj): void {
  if (inv.status !== 'draft') {
    throw invalidRequest(`You can only add lines to a draft invoice. This invoice is ${inv.status}.`, undefined, 'invoice_not_editable');
  }
}

export function registerInvoices(router: Router, store: Store): void {
  store.includables.set('invoice', {
    confirmation_secret: (inv) => {
      const pi = inv._payment_intent ? store.get('payment_intent', inv._payment_intent) : undefined;
      return pi && inv.status === 'open' ? { client_secret: pi.client_secret, type: 'payment_intent' } : null;
    },
    payments: (inv) => invoicePaymentsList(store, inv),
  });
  store.includables.set('invoice_payment', {});

  // Removed in API version 2025-03-31.basil (this emulator speaks a later one), as on Stripe.
  const upcomingRemoved = () => {
    throw invalidRequest(
      `The upcoming invoice endpoint was removed in API version 2025-03-31.basil; use POST /v1/invoices/create_preview instead.`,
      undefined,
      'parameter_unknown',
    );
  };
  router.add('GET', '/v1/invoices/upcoming', upcomingRemoved);
  router.add('GET', '/v1/invoices/upcoming/lines', upcomingRemoved);

  router.add('GET', '/v1/invoices/:id', (ctx) => out(ctx, getInvoice(store, ctx.pathParams.id)));

  router.add('POST', '/v1/invoices', (ctx) => {
    const p = ctx.params;
    const customerId = str(p, 'customer');
    if (!customerId) throw missingParam('customer');
    const customer = store.get('customer', customerId);
    if (!customer) throw noSuch('customer', customerId, 'customer');
    const subId = str(p, 'subscription');
    const subscription = subId ? store.get('subscription', subId) : null;
    if (subId && !subscription) throw noSuch('subscription', subId, 'subscription');
    const collectionMethod = str(p, 'collection_method') ?? 'charge_automatically';
    const daysUntilDue = int(p, 'days_until_due');
    if (collectionMethod === 'send_invoice' && daysUntilDue === undefined && int(p, 'due_date') === undefined) {
      throw invalidRequest('Missing required param: days_until_due.', 'days_until_due', 'parameter_missing');
    }
    if (collectionMethod === 'charge_automatically' && daysUntilDue !== undefined) {
      throw invalidRequest('You can only set `days_until_due` if `collection_method` is `send_invoice`.', 'days_until_due', 'parameter_invalid_integer');
    }
    const behavior = str(p, 'pending_invoice_items_behavior') ?? 'exclude';
    const currency = str(p, 'currency')?.toLowerCase() ?? subscription?.currency ?? customer.currency ?? 'usd';
    const discounts = arr(p, 'discounts');
    const inv = createInvoice(store, {
      customer,
      subscription: subscription ?? null,
      currency,
      lines: [],
      billingReason: 'manual',
      periodStart: store.now(),
      periodEnd: store.now(),
      description: str(p, 'description') ?? null,
      includePending: behavior === 'include',
      collectionMethod,
      daysUntilDue: daysUntilDue ?? null,
      // A manual invoice stays a draft until finalized unless told to advance by itself.
      autoAdvance: bool(p, 'auto_advance') ?? false,
      metadata: applyMetadata({}, p),
      discounts: discounts ? discountIds(store, discounts, customer.id, 'discounts') : [],
    });
    const due = int(p, 'due_date');
    if (due !== undefined) inv.due_date = due;
    recomputeInvoice(store, inv);
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/add_lines', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    requireDraft(inv);
    const lines = arr(ctx.params, 'lines') ?? [];
    if (lines.length === 0) throw missingParam('lines');
    const before = { lines: publicCopy(inv.lines), total: inv.total };
    lines.forEach((raw: Obj, i) => {
      const param = (k: string) => `lines[${i}][${k}]`;
      const iiId = str(raw, 'invoice_item');
      let spec: LineSpec;
      if (iiId) {
        const ii = store.get('invoiceitem', iiId);
        if (!ii) throw noSuch('invoiceitem', iiId, param('invoice_item'));
        if (ii.invoice && ii.invoice !== inv.id) throw invalidRequest(`The invoice item ${iiId} is already on another invoice.`, param('invoice_item'), 'invoice_not_editable');
        ii.invoice = inv.id;
        spec = invoiceItemLine(store, ii);
      } else {
        const item = createInvoiceItem(store, { ...raw, customer: inv.customer, currency: inv.currency, invoice: inv.id }, `lines[${i}]`);
        spec = invoiceItemLine(store, item);
      }
      inv.lines.data.push(lineObject(store, inv.id, inv.currency, inv.parent?.subscription_details?.subscription ?? null, spec));
    });
    recomputeInvoice(store, inv);
    store.emit('invoice.updated', inv, before);
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/send', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.collection_method !== 'send_invoice') {
      throw invalidRequest("You can only manually send an invoice if its collection method is 'send_invoice'.", undefined, 'invoice_not_editable');
    }
    if (inv.status === 'draft') finalizeInvoice(store, inv);
    if (inv.status !== 'open') throw invalidRequest(`You can only send an open invoice. This invoice is ${inv.status}.`, undefined, 'invoice_not_editable');
    store.emit('invoice.sent', inv);
    return out(ctx, inv);
  });

  router.add('DELETE', '/v1/invoices/:id', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.status !== 'draft') {
      throw invalidRequest('You can only delete draft invoices. Try voiding it instead.', undefined, 'invoice_not_editable');
    }
    // The invoice items it held are deleted with it, as on Stripe.
    for (const line of inv.lines.data as Obj[]) {
      const iiId = line.parent?.invoice_item_details?.invoice_item;
      const ii = iiId ? store.get('invoiceitem', iiId) : undefined;
      if (ii) {
        store.remove('invoiceitem', ii.id);
        store.emit('invoiceitem.deleted', ii);
      }
    }
    store.remove('invoice', inv.id);
    store.emit('invoice.deleted', inv);
    return { id: inv.id, object: 'invoice', deleted: true };
  });

  router.add('GET', '/v1/invoices/:id/lines', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    return listOut(ctx, inv.lines.data);
  });

  router.add('POST', '/v1/invoices/:id', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    const p = ctx.params;
    const before = publicCopy({ metadata: inv.metadata, description: inv.description, auto_advance: inv.auto_advance, collection_method: inv.collection_method, discounts: inv.discounts });
    const draftOnly = ['collection_method', 'days_until_due', 'discounts', 'due_date'].filter((k) => k in p);
    if (draftOnly.length && inv.status !== 'draft') {
      throw invalidRequest(`You can only update ${draftOnly[0]} on a draft invoice.`, draftOnly[0], 'invoice_not_editable');
    }
    inv.metadata = applyMetadata(inv.metadata, p);
    if ('description' in p) inv.description = str(p, 'description') ?? null;
    const aa = bool(p, 'auto_advance');
    if (aa !== undefined) inv.auto_advance = aa;
    if ('collection_method' in p) inv.collection_method = str(p, 'collection_method');
    const dud = int(p, 'days_until_due');
    if (dud !== undefined) inv._days_until_due = dud;
    if ('discounts' in p) {
      const d = arr(p, 'discounts');
      inv.discounts = d ? discountIds(store, d, inv.customer, 'discounts') : [];
      recomputeInvoice(store, inv);
    }
    store.emit('invoice.updated', inv, before);
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/finalize', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.status !== 'draft') throw invalidRequest('This invoice is already finalized, you can\'t re-finalize a non-draft invoice.', undefined, 'invoice_not_editable');
    const aa = bool(ctx.params, 'auto_advance');
    if (aa !== undefined) inv.auto_advance = aa;
    finalizeInvoice(store, inv);
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/pay', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.status === 'paid') throw invalidRequest('Invoice is already paid', undefined, 'invoice_already_paid' as string);
    if (inv.status !== 'open') throw invalidRequest(`You can only pay an open invoice. This invoice is ${inv.status}.`, undefined, 'invoice_not_editable');
    if (bool(ctx.params, 'paid_out_of_band')) {
      markInvoicePaid(store, inv, null);
      return out(ctx, inv);
    }
    const pmId = str(ctx.params, 'payment_method');
    const sub = inv.parent?.subscription_details ? store.get('subscription', inv.parent.subscription_details.subscription) : undefined;
    const cust = store.get('customer', inv.customer);
    const defaultPm = sub?.default_payment_method ?? cust?.invoice_settings.default_payment_method ?? null;
    const pm = pmId ? resolvePaymentMethod(store, pmId) : defaultPm ? store.get('payment_method', defaultPm) ?? null : null;
    if (!pm) {
      throw invalidRequest('This customer has no attached payment source or default payment method. Please consider adding a default payment method.', undefined, 'invoice_no_customer_line_items');
    }
    const result = attemptInvoicePayment(store, inv, pm, true);
    if (result === 'declined') {
      const pi = store.get('payment_intent', inv._payment_intent);
      const e = cardError(pi?.last_payment_error?.message ?? 'Your card was declined.', 'card_declined', pi?.last_payment_error?.decline_code);
      e.keepEffects = true;
      throw e;
    }
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/void', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.status !== 'open') throw invalidRequest(`You can only void an open invoice. This invoice is ${inv.status}.`, undefined, 'invoice_not_editable');
    inv.status = 'void';
    inv.status_transitions.voided_at = store.now();
    inv.next_payment_attempt = null;
    inv.amount_remaining = 0;
    const pi = inv._payment_intent ? store.get('payment_intent', inv._payment_intent) : undefined;
    if (pi && pi.status !== 'succeeded') {
      pi.status = 'canceled';
      pi.canceled_at = store.now();
      store.emit('payment_intent.canceled', pi);
    }
    store.emit('invoice.voided', inv, { status: 'open' });
    return out(ctx, inv);
  });

  router.add('POST', '/v1/invoices/:id/mark_uncollectible', (ctx) => {
    const inv = getInvoice(store, ctx.pathParams.id);
    if (inv.status !== 'open') throw invalidRequest(`You can only mark an open invoice uncollectible. This invoice is ${inv.status}.`, undefined, 'invoice_not_editable');
    inv.status = 'uncollectible';
    inv.status_transitions.marked_uncollectible_at = store.now();
    inv.next_payment_attempt = null;
    store.emit('invoice.marked_uncollectible', inv, { status: 'open' });
    return out(ctx, inv);
  });

  router.add('GET', '/v1/invoices', (ctx) => {
    let items = store.list('invoice');
    const customer = str(ctx.params, 'customer');
    if (customer) items = items.filter((x) => x.customer === customer);
    const subscription = str(ctx.params, 'subscription');
    if (subscription) items = items.filter((x) => x.parent?.subscription_details?.subscription === subscription);
    const status = str(ctx.params, 'status');
    if (status) items = items.filter((x) => x.status === status);
    const method = str(ctx.params, 'collection_method');
    if (method) items = items.filter((x) => x.collection_method === method);
    const due = rangeFilter(ctx.params, 'due_date');
    if (due) items = items.filter((x) => x.due_date !== null && due(x.due_date));
    return listOut(ctx, items);
  });

  router.add('GET', '/v1/invoice_payments', (ctx) => {
    const invoice = str(ctx.params, 'invoice');
    const invoices = invoice ? [getInvoice(store, invoice)] : store.list('invoice');
    const all = invoices.flatMap((inv) => invoicePaymentsList(store, inv).data as Obj[]);
    return listOut(ctx, all);
  });
}
