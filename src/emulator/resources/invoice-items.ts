/**
 * Invoice items: amounts for a customer that land on an invoice, either the draft named by
 * `invoice` or, while pending, the customer's next invoice (the next subscription invoice, or a
 * manual invoice created with `pending_invoice_items_behavior=include`).
 */
import { invalidRequest, missingParam, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, bool, int, obj, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import { publicCopy, type Obj, type Store } from '../store';
import { invoiceItemLine, lineObject, recomputeInvoice } from './invoice-lines';

/** Creates an invoice item from Stripe's parameters; `prefix` names params inside `lines[i]`. */
export function createInvoiceItem(store: Store, p: Obj, prefix = ''): Obj {
  const param = (k: string) => (prefix ? `${prefix}[${k}]` : k);
  const customerId = str(p, 'customer');
  if (!customerId) throw missingParam(param('customer'));
  const customer = store.get('customer', customerId);
  if (!customer) throw noSuch('customer', customerId, param('customer'));
  const pricing = obj(p, 'pricing');
  const priceId = str(p, 'price') ?? (pricing ? str(pricing, 'price') : undefined);
  const price = priceId ? store.get('price', priceId) : undefined;
  if (priceId && !price) throw noSuch('price', priceId, param(pricing ? 'pricing[price]' : 'price'));
  const priceData = obj(p, 'price_data');
  const quantity = int(p, 'quantity', param('quantity')) ?? 1;
  let amount = int(p, 'amount', param('amount'));
  let unit: number | undefined;
  if (amount === undefined) {
    if (price) unit = price.unit_amount;
    else if (priceData) unit = int(priceData, 'unit_amount', param('price_data[unit_amount]')) ?? Math.round(Number(str(priceData, 'unit_amount_decimal') ?? NaN));
    else {
      const decimal = str(p, 'unit_amount_decimal');
      if (decimal !== undefined) unit = Math.round(Number(decimal));
    }
    if (unit === undefined || !Number.isFinite(unit)) throw missingParam(param('amount'));
    amount = unit * quantity;
  }
  const currency = (str(p, 'currency') ?? price?.currency ?? (priceData ? str(priceData, 'currency') : undefined) ?? customer.currency)?.toLowerCase();
  if (!currency) throw missingParam(param('currency'));
  if (price && price.currency !== currency) throw invalidRequest(`The price's currency (${price.currency}) must match the currency (${currency}).`, param('currency'), 'parameter_invalid_string');
  const invoiceId = str(p, 'invoice');
  const invoice = invoiceId ? store.get('invoice', invoiceId) : undefined;
  if (invoiceId && !invoice) throw noSuch('invoice', invoiceId, param('invoice'));
  if (invoice && invoice.status !== 'draft') throw invalidRequest('You can only add invoice items to a draft invoice.', param('invoice'), 'invoice_not_editable');
  if (invoice && invoice.currency !== currency) throw invalidRequest(`The currency of the invoice item (${currency}) must match the invoice's (${invoice.currency}).`, param('currency'), 'parameter_invalid_string');
  const subId = str(p, 'subscription');
  if (subId && !store.get('subscription', subId)) throw noSuch('subscription', subId, param('subscription'));
  const period = obj(p, 'period');
  const now = store.now();
  const productName = price ? store.get('product', price.product)?.name : undefined;
  const ii: Obj = {
    id: newId('ii_'),
    object: 'invoiceitem',
    amount,
    currency,
    customer: customer.id,
    customer_account: null,
    date: now,
    description: str(p, 'description') ?? productName ?? null,
    discountable: bool(p, 'discountable') ?? true,
    discounts: [],
    invoice: invoice?.id ?? null,
    livemode: false,
    metadata: applyMetadata({}, p),
    net_amount: amount,
    parent: subId ? { subscription_details: { subscription: subId, subscription_item: null }, type: 'subscription_details' } : null,
    period: period ? { start: int(period, 'start', param('period[start]')) ?? now, end: int(period, 'end', param('period[end]')) ?? now } : { start: now, end: now },
    pricing: price ? { price_details: { price: price.id, product: price.product }, type: 'price_details', unit_amount_decimal: price.unit_amount_decimal } : null,
    proration: false,
    quantity,
    quantity_decimal: String(quantity),
    tax_rates: [],
    test_clock: customer.test_clock ?? null,
  };
  store.insert('invoiceitem', ii);
  store.emit('invoiceitem.created', ii);
  return ii;
}

function getItem(store: Store, id: string): Obj {
  const ii = store.get('invoiceitem', id);
  if (!ii) throw noSuch('invoiceitem', id, 'id');
  return ii;
}

/** The line of a draft invoice that bills this item, kept in step with it. */
function syncLine(store: Store, ii: Obj): void {
  const inv = ii.invoice ? store.get('invoice', ii.invoice) : undefined;
  if (!inv || inv.status !== 'draft') return;
  const lines = inv.lines.data as Obj[];
  const at = lines.findIndex((l) => l.parent?.invoice_item_details?.invoice_item === ii.id);
  const line = lineObject(store, inv.id, inv.currency, inv.parent?.subscription_details?.subscription ?? null, invoiceItemLine(store, ii));
  if (at >= 0) lines[at] = { ...line, id: lines[at].id };
  else lines.push(line);
  recomputeInvoice(store, inv);
}

export function registerInvoiceItems(router: Router, store: Store): void {
  router.add('POST', '/v1/invoiceitems', (ctx) => {
    const ii = createInvoiceItem(store, ctx.params);
    syncLine(store, ii);
    return out(ctx, ii);
  });

  router.add('GET', '/v1/invoiceitems/:id', (ctx) => out(ctx, getItem(store, ctx.pathParams.id)));

  router.add('POST', '/v1/invoiceitems/:id', (ctx) => {
    const ii = getItem(store, ctx.pathParams.id);
    const inv = ii.invoice ? store.get('invoice', ii.invoice) : undefined;
    if (inv && inv.status !== 'draft') {
      throw invalidRequest('Updating an invoice item is only possible while it is pending or on a draft invoice.', undefined, 'invoice_not_editable');
    }
    const p = ctx.params;
    const before = publicCopy(ii);
    if ('description' in p) ii.description = str(p, 'description') ?? null;
    const quantity = int(p, 'quantity');
    const amount = int(p, 'amount');
    if (quantity !== undefined) {
      const unit = ii.quantity ? ii.amount / ii.quantity : ii.amount;
      ii.quantity = quantity;
      ii.quantity_decimal = String(quantity);
      if (amount === undefined) ii.amount = Math.round(unit * quantity);
    }
    if (amount !== undefined) ii.amount = amount;
    ii.net_amount = ii.amount;
    const d = bool(p, 'discountable');
    if (d !== undefined) ii.discountable = d;
    ii.metadata = applyMetadata(ii.metadata, p);
    syncLine(store, ii);
    const prev: Obj = {};
    for (const k of Object.keys(before)) if (JSON.stringify(before[k]) !== JSON.stringify(ii[k])) prev[k] = before[k];
    if (Object.keys(prev).length) store.emit('invoiceitem.updated', ii, prev);
    return out(ctx, ii);
  });

  router.add('DELETE', '/v1/invoiceitems/:id', (ctx) => {
    const ii = getItem(store, ctx.pathParams.id);
    const inv = ii.invoice ? store.get('invoice', ii.invoice) : undefined;
    if (inv && inv.status !== 'draft') {
      throw invalidRequest('Deleting an invoice item is only possible while it is pending or on a draft invoice.', undefined, 'invoice_not_editable');
    }
    if (inv) {
      inv.lines.data = (inv.lines.data as Obj[]).filter((l) => l.parent?.invoice_item_details?.invoice_item !== ii.id);
      recomputeInvoice(store, inv);
    }
    store.remove('invoiceitem', ii.id);
    store.emit('invoiceitem.deleted', ii);
    return { id: ii.id, object: 'invoiceitem', deleted: true };
  });

  router.add('GET', '/v1/invoiceitems', (ctx) => {
    const p = ctx.params;
    let items = store.list('invoiceitem');
    const customer = str(p, 'customer');
    if (customer) items = items.filter((x) => x.customer === customer);
    const invoice = str(p, 'invoice');
    if (invoice) items = items.filter((x) => x.invoice === invoice);
    const pending = bool(p, 'pending');
    if (pending !== undefined) items = items.filter((x) => (x.invoice === null) === pending);
    return listOut(ctx, items);
  });
}
