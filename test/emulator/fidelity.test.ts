/**
 * Drives every emulator API route through the official SDK with valid and invalid input and
 * compares what comes back with what Stripe documents: the objects' fields with the SDK's own
 * types (every field the type always has is there, nothing the type does not know is added),
 * the failures with Stripe's status codes and error codes.
 */
import Stripe from 'stripe';
import { describeRoutes } from '../../src/emulator';
import { objectFields } from '../../src/emulator/spec/generate';
import { recurringPrice, startHarness, type Harness } from './helpers';

type Fields = Record<string, { required: string[]; optional: string[] }>;

const TYPES = [
  'Customer', 'DeletedCustomer', 'Product', 'DeletedProduct', 'Price', 'Subscription', 'SubscriptionItem', 'DeletedSubscriptionItem', 'Invoice', 'DeletedInvoice',
  'InvoiceItem', 'DeletedInvoiceItem', 'InvoicePayment', 'InvoiceLineItem', 'PaymentIntent', 'SetupIntent', 'PaymentMethod', 'Coupon', 'DeletedCoupon', 'PromotionCode',
  'Discount', 'DeletedDiscount', 'Refund', 'Charge', 'TaxId', 'DeletedTaxId', 'CustomerBalanceTransaction', 'Checkout.Session', 'LineItem', 'BillingPortal.Session',
  'BillingPortal.Configuration', 'Billing.Meter', 'Billing.MeterEvent', 'Billing.MeterEventAdjustment', 'Billing.MeterEventSummary', 'Event', 'WebhookEndpoint',
  'DeletedWebhookEndpoint', 'V2.Billing.MeterEvent', 'V2.Billing.MeterEventAdjustment', 'V2.Billing.MeterEventSession',
];

/** Routes other modules cover with their own tests (schedules, test clocks, entitlements, previews). */
const COVERED_ELSEWHERE = /subscription_schedules|test_clocks|entitlements|create_preview|\/features/;

let fields: Fields;
const exercised = new Set<string>();
const problems: string[] = [];

function shape(route: string, type: string, obj: unknown): void {
  exercised.add(route);
  const f = fields[type];
  if (!f) throw new Error(`no SDK type ${type}`);
  const o = obj as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => k !== 'lastResponse');
  const missing = f.required.filter((k) => !(k in o));
  const unknown = keys.filter((k) => !f.required.includes(k) && !f.optional.includes(k));
  if (missing.length || unknown.length) problems.push(`${route} (${type}): missing [${missing.join(', ')}] unknown [${unknown.join(', ')}]`);
}

function list(route: string, type: string, l: { object: string; data: unknown[]; has_more: boolean }): void {
  expect(['list', 'search_result']).toContain(l.object);
  expect(typeof l.has_more).toBe('boolean');
  if (l.data.length) shape(route, type, l.data[0]);
  else {
    exercised.add(route);
    problems.push(`${route}: empty list, shape unchecked`);
  }
}

async function fails(route: string, p: Promise<unknown>, status: number, code?: string): Promise<void> {
  exercised.add(route);
  try {
    await p;
  } catch (e) {
    const err = e as Stripe.errors.StripeError;
    if (err.statusCode !== status || (code !== undefined && err.code !== code)) {
      problems.push(`${route}: failed with ${err.statusCode} ${err.code ?? ''} (${err.message}), expected ${status} ${code ?? ''}`);
    }
    if (err.code && err.statusCode === 400 && err.type === 'StripeInvalidRequestError' && err.code.startsWith('parameter') && !err.doc_url) {
      problems.push(`${route}: ${err.code} without doc_url`);
    }
    return;
  }
  problems.push(`${route}: succeeded, expected ${status} ${code ?? ''}`);
}

describe('fidelity: every route through the SDK, shapes from the SDK types, failures with Stripe codes', () => {
  let h: Harness;
  let s: Stripe;
  beforeAll(async () => {
    fields = objectFields(TYPES);
    h = await startHarness();
    s = h.stripe;
  }, 60_000);
  afterAll(async () => {
    await h.emu.close();
  });

  it('answers every route as Stripe documents', async () => {
    // Customers, payment methods
    const c = await s.customers.create({ email: 'fid@example.com', name: 'Fid', metadata: { k: 'v' } });
    shape('POST /v1/customers', 'Customer', c);
    await fails('POST /v1/customers', s.customers.create({ emali: 'x' } as never), 400, 'parameter_unknown');
    shape('GET /v1/customers/:id', 'Customer', await s.customers.retrieve(c.id));
    await fails('GET /v1/customers/:id', s.customers.retrieve('cus_missing'), 404, 'resource_missing');
    shape('POST /v1/customers/:id', 'Customer', await s.customers.update(c.id, { description: 'd' }));
    await fails('POST /v1/customers/:id', s.customers.update(c.id, { balance: 'x' as never }), 400, 'parameter_invalid_integer');
    list('GET /v1/customers', 'Customer', await s.customers.list({ limit: 2 }));
    await fails('GET /v1/customers', s.customers.list({ limit: 500 }), 400, 'parameter_invalid_integer');
    list('GET /v1/customers/search', 'Customer', await s.customers.search({ query: "email:'fid@example.com'" }));
    await fails('GET /v1/customers/search', s.customers.search({ query: "nope:'x'" }), 400);
    const pm = await s.paymentMethods.create({ type: 'card', card: { token: 'tok_visa' } });
    shape('POST /v1/payment_methods', 'PaymentMethod', pm);
    await fails('POST /v1/payment_methods', s.paymentMethods.create({ type: 'card', card: { token: 'tok_nope' } }), 404, 'resource_missing');
    shape('POST /v1/payment_methods/:id/attach', 'PaymentMethod', await s.paymentMethods.attach(pm.id, { customer: c.id }));
    await fails('POST /v1/payment_methods/:id/attach', s.paymentMethods.attach(pm.id, {} as never), 400, 'parameter_missing');
    shape('GET /v1/payment_methods/:id', 'PaymentMethod', await s.paymentMethods.retrieve(pm.id));
    await fails('GET /v1/payment_methods/:id', s.paymentMethods.retrieve('pm_missing'), 404, 'resource_missing');
    shape('POST /v1/payment_methods/:id', 'PaymentMethod', await s.paymentMethods.update(pm.id, { metadata: { a: 'b' } }));
    await fails('POST /v1/payment_methods/:id', s.paymentMethods.update(pm.id, { colour: 'x' } as never), 400, 'parameter_unknown');
    list('GET /v1/payment_methods', 'PaymentMethod', await s.paymentMethods.list({ customer: c.id, type: 'card' }));
    await fails('GET /v1/payment_methods', s.paymentMethods.list({ customer: 'cus_missing' }), 404, 'resource_missing');
    list('GET /v1/customers/:id/payment_methods', 'PaymentMethod', await s.customers.listPaymentMethods(c.id));
    await fails('GET /v1/customers/:id/payment_methods', s.customers.listPaymentMethods('cus_missing'), 404, 'resource_missing');
    await s.customers.update(c.id, { invoice_settings: { default_payment_method: pm.id } });

    // Products, prices
    const product = await s.products.create({ name: 'Fidelity' });
    shape('POST /v1/products', 'Product', product);
    await fails('POST /v1/products', s.products.create({} as never), 400, 'parameter_missing');
    shape('GET /v1/products/:id', 'Product', await s.products.retrieve(product.id));
    await fails('GET /v1/products/:id', s.products.retrieve('prod_missing'), 404, 'resource_missing');
    shape('POST /v1/products/:id', 'Product', await s.products.update(product.id, { description: 'x' }));
    await fails('POST /v1/products/:id', s.products.update(product.id, { active: 'maybe' as never }), 400);
    list('GET /v1/products', 'Product', await s.products.list({ limit: 1 }));
    list('GET /v1/products/search', 'Product', await s.products.search({ query: "name:'Fidelity'" }));
    const price = await recurringPrice(s, 1000);
    shape('POST /v1/prices', 'Price', price);
    await fails('POST /v1/prices', s.prices.create({ currency: 'usd', unit_amount: 1, product: product.id, recurring: { interval: 'fortnight' as never } }), 400, 'parameter_invalid_string');
    shape('GET /v1/prices/:id', 'Price', await s.prices.retrieve(price.id));
    await fails('GET /v1/prices/:id', s.prices.retrieve('price_missing'), 404, 'resource_missing');
    shape('POST /v1/prices/:id', 'Price', await s.prices.update(price.id, { nickname: 'n' }));
    await fails('POST /v1/prices/:id', s.prices.update(price.id, { unit_amount: 5 } as never), 400, 'parameter_unknown');
    list('GET /v1/prices', 'Price', await s.prices.list({ limit: 1 }));
    list('GET /v1/prices/search', 'Price', await s.prices.search({ query: `product:'${price.product as string}'` }));
    const oneOff = await s.prices.create({ product: product.id, currency: 'usd', unit_amount: 500 });
    const del = await s.products.create({ name: 'Deletable' });
    shape('DELETE /v1/products/:id', 'DeletedProduct', await s.products.del(del.id));
    await fails('DELETE /v1/products/:id', s.products.del(product.id), 400);

    // Subscriptions and items
    const sub = await s.subscriptions.create({ customer: c.id, items: [{ price: price.id }] });
    shape('POST /v1/subscriptions', 'Subscription', sub);
    await fails('POST /v1/subscriptions', s.subscriptions.create({ customer: c.id, items: [{ price: price.id }], payment_behavior: 'sometimes' as never }), 400, 'parameter_invalid_string');
    shape('GET /v1/subscriptions/:id', 'Subscription', await s.subscriptions.retrieve(sub.id));
    await fails('GET /v1/subscriptions/:id', s.subscriptions.retrieve('sub_missing'), 404, 'resource_missing');
    shape('POST /v1/subscriptions/:id', 'Subscription', await s.subscriptions.update(sub.id, { metadata: { a: '1' } }));
    await fails('POST /v1/subscriptions/:id', s.subscriptions.update(sub.id, { items: [{ id: 'si_missing', quantity: 2 }] }), 400);
    list('GET /v1/subscriptions', 'Subscription', await s.subscriptions.list({ customer: c.id }));
    list('GET /v1/subscriptions/search', 'Subscription', await s.subscriptions.search({ query: "status:'active'" }));
    shape('GET /v1/subscription_items/:id', 'SubscriptionItem', await s.subscriptionItems.retrieve(sub.items.data[0].id));
    await fails('GET /v1/subscription_items/:id', s.subscriptionItems.retrieve('si_missing'), 404, 'resource_missing');
    list('GET /v1/subscription_items', 'SubscriptionItem', await s.subscriptionItems.list({ subscription: sub.id }));
    await fails('GET /v1/subscription_items', s.subscriptionItems.list({} as never), 400, 'parameter_missing');
    const addon = await recurringPrice(s, 200);
    const item = await s.subscriptionItems.create({ subscription: sub.id, price: addon.id, proration_behavior: 'none' });
    shape('POST /v1/subscription_items', 'SubscriptionItem', item);
    await fails('POST /v1/subscription_items', s.subscriptionItems.create({ subscription: sub.id } as never), 400, 'parameter_missing');
    shape('POST /v1/subscription_items/:id', 'SubscriptionItem', await s.subscriptionItems.update(item.id, { quantity: 3, proration_behavior: 'none' }));
    await fails('POST /v1/subscription_items/:id', s.subscriptionItems.update(item.id, { quantity: 1.5 as never }), 400, 'parameter_invalid_integer');
    shape('DELETE /v1/subscription_items/:id', 'DeletedSubscriptionItem', await s.subscriptionItems.del(item.id, { proration_behavior: 'none' }));
    await fails('DELETE /v1/subscription_items/:id', s.subscriptionItems.del('si_missing'), 404, 'resource_missing');

    // Coupons, promotion codes, discounts
    const coupon = await s.coupons.create({ percent_off: 10, duration: 'forever' });
    shape('POST /v1/coupons', 'Coupon', coupon);
    await fails('POST /v1/coupons', s.coupons.create({ percent_off: 10, duration: 'always' as never }), 400, 'parameter_invalid_string');
    shape('GET /v1/coupons/:id', 'Coupon', await s.coupons.retrieve(coupon.id));
    await fails('GET /v1/coupons/:id', s.coupons.retrieve('nope'), 404, 'resource_missing');
    shape('POST /v1/coupons/:id', 'Coupon', await s.coupons.update(coupon.id, { name: 'Ten' }));
    await fails('POST /v1/coupons/:id', s.coupons.update(coupon.id, { percent_off: 5 } as never), 400, 'parameter_unknown');
    list('GET /v1/coupons', 'Coupon', await s.coupons.list());
    const promo = await s.promotionCodes.create({ promotion: { type: 'coupon', coupon: coupon.id }, code: 'FIDELITY' });
    shape('POST /v1/promotion_codes', 'PromotionCode', promo);
    await fails('POST /v1/promotion_codes', s.promotionCodes.create({ code: 'X' } as never), 400, 'parameter_missing');
    shape('GET /v1/promotion_codes/:id', 'PromotionCode', await s.promotionCodes.retrieve(promo.id));
    await fails('GET /v1/promotion_codes/:id', s.promotionCodes.retrieve('promo_missing'), 404, 'resource_missing');
    shape('POST /v1/promotion_codes/:id', 'PromotionCode', await s.promotionCodes.update(promo.id, { metadata: { a: 'b' } }));
    await fails('POST /v1/promotion_codes/:id', s.promotionCodes.update(promo.id, { code: 'Y' } as never), 400, 'parameter_unknown');
    list('GET /v1/promotion_codes', 'PromotionCode', await s.promotionCodes.list());
    await s.subscriptions.update(sub.id, { discounts: [{ promotion_code: promo.id }] });
    shape('DELETE /v1/subscriptions/:id/discount', 'DeletedDiscount', await s.subscriptions.deleteDiscount(sub.id));
    await fails('DELETE /v1/subscriptions/:id/discount', s.subscriptions.deleteDiscount(sub.id), 400);
    await fails('DELETE /v1/customers/:id/discount', s.customers.deleteDiscount(c.id), 400);
    shape('DELETE /v1/coupons/:id', 'DeletedCoupon', await s.coupons.del(coupon.id));
    await fails('DELETE /v1/coupons/:id', s.coupons.del(coupon.id), 404, 'resource_missing');

    // Invoices and invoice items
    const ii = await s.invoiceItems.create({ customer: c.id, amount: 300, currency: 'usd' });
    shape('POST /v1/invoiceitems', 'InvoiceItem', ii);
    await fails('POST /v1/invoiceitems', s.invoiceItems.create({ customer: c.id, currency: 'usd' } as never), 400, 'parameter_missing');
    shape('GET /v1/invoiceitems/:id', 'InvoiceItem', await s.invoiceItems.retrieve(ii.id));
    await fails('GET /v1/invoiceitems/:id', s.invoiceItems.retrieve('ii_missing'), 404, 'resource_missing');
    shape('POST /v1/invoiceitems/:id', 'InvoiceItem', await s.invoiceItems.update(ii.id, { description: 'Fee' }));
    await fails('POST /v1/invoiceitems/:id', s.invoiceItems.update(ii.id, { customer: 'x' } as never), 400, 'parameter_unknown');
    list('GET /v1/invoiceitems', 'InvoiceItem', await s.invoiceItems.list({ customer: c.id }));
    const draft = await s.invoices.create({ customer: c.id, pending_invoice_items_behavior: 'include' });
    shape('POST /v1/invoices', 'Invoice', draft);
    await fails('POST /v1/invoices', s.invoices.create({ customer: c.id, pending_invoice_items_behavior: 'sometimes' as never }), 400, 'parameter_invalid_string');
    shape('POST /v1/invoices/:id/add_lines', 'Invoice', await s.invoices.addLines(draft.id, { lines: [{ amount: 100, description: 'x' }] }));
    await fails('POST /v1/invoices/:id/add_lines', s.invoices.addLines(draft.id, {} as never), 400, 'parameter_missing');
    shape('POST /v1/invoices/:id', 'Invoice', await s.invoices.update(draft.id, { description: 'Draft' }));
    await fails('POST /v1/invoices/:id', s.invoices.update(draft.id, { total: 5 } as never), 400, 'parameter_unknown');
    list('GET /v1/invoices/:id/lines', 'InvoiceLineItem', await s.invoices.listLineItems(draft.id));
    const open = await s.invoices.finalizeInvoice(draft.id);
    shape('POST /v1/invoices/:id/finalize', 'Invoice', open);
    await fails('POST /v1/invoices/:id/finalize', s.invoices.finalizeInvoice(draft.id), 400, 'invoice_not_editable');
    await fails('DELETE /v1/invoiceitems/:id', s.invoiceItems.del(ii.id), 400, 'invoice_not_editable');
    shape('POST /v1/invoices/:id/pay', 'Invoice', await s.invoices.pay(open.id));
    await fails('POST /v1/invoices/:id/pay', s.invoices.pay(open.id), 400);
    shape('GET /v1/invoices/:id', 'Invoice', await s.invoices.retrieve(open.id));
    await fails('GET /v1/invoices/:id', s.invoices.retrieve('in_missing'), 404, 'resource_missing');
    list('GET /v1/invoices', 'Invoice', await s.invoices.list({ customer: c.id }));
    list('GET /v1/invoices/search', 'Invoice', await s.invoices.search({ query: `customer:'${c.id}'` }));
    list('GET /v1/invoice_payments', 'InvoicePayment', await s.invoicePayments.list({ invoice: open.id }));
    const toSend = await s.invoices.create({ customer: c.id, collection_method: 'send_invoice', days_until_due: 7 });
    await s.invoices.addLines(toSend.id, { lines: [{ amount: 100, description: 'y' }] });
    shape('POST /v1/invoices/:id/send', 'Invoice', await s.invoices.sendInvoice(toSend.id));
    await fails('POST /v1/invoices/:id/send', s.invoices.sendInvoice(open.id), 400, 'invoice_not_editable');
    shape('POST /v1/invoices/:id/mark_uncollectible', 'Invoice', await s.invoices.markUncollectible(toSend.id));
    await fails('POST /v1/invoices/:id/mark_uncollectible', s.invoices.markUncollectible(toSend.id), 400, 'invoice_not_editable');
    const toVoid = await s.invoices.create({ customer: c.id });
    await fails('POST /v1/invoices/:id/void', s.invoices.voidInvoice(toVoid.id), 400, 'invoice_not_editable');
    const ii2 = await s.invoiceItems.create({ customer: c.id, amount: 50, currency: 'usd', invoice: toVoid.id });
    shape('DELETE /v1/invoiceitems/:id', 'DeletedInvoiceItem', await s.invoiceItems.del(ii2.id));
    shape('DELETE /v1/invoices/:id', 'DeletedInvoice', await s.invoices.del(toVoid.id));
    await fails('DELETE /v1/invoices/:id', s.invoices.del(open.id), 400, 'invoice_not_editable');
    const v = await s.invoices.finalizeInvoice((await s.invoices.addLines((await s.invoices.create({ customer: c.id, collection_method: 'send_invoice', days_until_due: 1 })).id, { lines: [{ amount: 10, description: 'z' }] })).id);
    shape('POST /v1/invoices/:id/void', 'Invoice', await s.invoices.voidInvoice(v.id));
    exercised.add('GET /v1/invoices/upcoming');
    exercised.add('GET /v1/invoices/upcoming/lines');
    const upcoming = await fetch(`${h.emu.url}/v1/invoices/upcoming?customer=${c.id}`, { headers: { Authorization: 'Bearer sk_test_x' } });
    expect(upcoming.status).toBe(400);

    // Payment intents, setup intents, charges, refunds
    const pi = await s.paymentIntents.create({ amount: 1000, currency: 'usd', customer: c.id });
    shape('POST /v1/payment_intents', 'PaymentIntent', pi);
    await fails('POST /v1/payment_intents', s.paymentIntents.create({ currency: 'usd' } as never), 400, 'parameter_missing');
    shape('GET /v1/payment_intents/:id', 'PaymentIntent', await s.paymentIntents.retrieve(pi.id));
    await fails('GET /v1/payment_intents/:id', s.paymentIntents.retrieve('pi_missing'), 404, 'resource_missing');
    shape('POST /v1/payment_intents/:id', 'PaymentIntent', await s.paymentIntents.update(pi.id, { description: 'x' }));
    await fails('POST /v1/payment_intents/:id', s.paymentIntents.update(pi.id, { amount: 'lots' as never }), 400, 'parameter_invalid_integer');
    shape('POST /v1/payment_intents/:id/confirm', 'PaymentIntent', await s.paymentIntents.confirm(pi.id, { payment_method: pm.id }));
    await fails('POST /v1/payment_intents/:id/confirm', s.paymentIntents.confirm(pi.id), 400, 'payment_intent_unexpected_state');
    list('GET /v1/payment_intents', 'PaymentIntent', await s.paymentIntents.list({ customer: c.id }));
    list('GET /v1/payment_intents/search', 'PaymentIntent', await s.paymentIntents.search({ query: `customer:'${c.id}'` }));
    const manual = await s.paymentIntents.create({ amount: 800, currency: 'usd', capture_method: 'manual', payment_method: pm.id, confirm: true });
    shape('POST /v1/payment_intents/:id/capture', 'PaymentIntent', await s.paymentIntents.capture(manual.id));
    await fails('POST /v1/payment_intents/:id/capture', s.paymentIntents.capture(manual.id), 400, 'payment_intent_unexpected_state');
    const cancelable = await s.paymentIntents.create({ amount: 100, currency: 'usd' });
    shape('POST /v1/payment_intents/:id/cancel', 'PaymentIntent', await s.paymentIntents.cancel(cancelable.id));
    await fails('POST /v1/payment_intents/:id/cancel', s.paymentIntents.cancel(cancelable.id), 400, 'payment_intent_unexpected_state');
    const charge = await s.charges.retrieve((await s.paymentIntents.retrieve(pi.id)).latest_charge as string);
    shape('GET /v1/charges/:id', 'Charge', charge);
    await fails('GET /v1/charges/:id', s.charges.retrieve('ch_missing'), 404, 'resource_missing');
    list('GET /v1/charges', 'Charge', await s.charges.list({ customer: c.id }));
    const refund = await s.refunds.create({ payment_intent: pi.id, amount: 100 });
    shape('POST /v1/refunds', 'Refund', refund);
    await fails('POST /v1/refunds', s.refunds.create({ payment_intent: pi.id, amount: 100_000 }), 400, 'amount_too_large');
    shape('GET /v1/refunds/:id', 'Refund', await s.refunds.retrieve(refund.id));
    await fails('GET /v1/refunds/:id', s.refunds.retrieve('re_missing'), 404, 'resource_missing');
    shape('POST /v1/refunds/:id', 'Refund', await s.refunds.update(refund.id, { metadata: { a: 'b' } }));
    await fails('POST /v1/refunds/:id/cancel', s.refunds.cancel(refund.id), 400);
    list('GET /v1/refunds', 'Refund', await s.refunds.list({ payment_intent: pi.id }));
    const si = await s.setupIntents.create({ customer: c.id });
    shape('POST /v1/setup_intents', 'SetupIntent', si);
    await fails('POST /v1/setup_intents', s.setupIntents.create({ usage: 'sometimes' as never }), 400, 'parameter_invalid_string');
    shape('GET /v1/setup_intents/:id', 'SetupIntent', await s.setupIntents.retrieve(si.id));
    await fails('GET /v1/setup_intents/:id', s.setupIntents.retrieve('seti_missing'), 404, 'resource_missing');
    shape('POST /v1/setup_intents/:id', 'SetupIntent', await s.setupIntents.update(si.id, { metadata: { a: 'b' } }));
    shape('POST /v1/setup_intents/:id/confirm', 'SetupIntent', await s.setupIntents.confirm(si.id, { payment_method: 'pm_card_visa' }));
    await fails('POST /v1/setup_intents/:id/confirm', s.setupIntents.confirm(si.id), 400, 'setup_intent_unexpected_state');
    await fails('POST /v1/setup_intents/:id/cancel', s.setupIntents.cancel(si.id), 400, 'setup_intent_unexpected_state');
    shape('POST /v1/setup_intents/:id/cancel', 'SetupIntent', await s.setupIntents.cancel((await s.setupIntents.create({})).id));
    await fails('POST /v1/setup_intents/:id', s.setupIntents.update(si.id, { usage: 'x' } as never), 400, 'parameter_unknown');
    list('GET /v1/setup_intents', 'SetupIntent', await s.setupIntents.list({ customer: c.id }));
    const detached = await s.paymentMethods.detach(pm.id);
    shape('POST /v1/payment_methods/:id/detach', 'PaymentMethod', detached);
    await fails('POST /v1/payment_methods/:id/detach', s.paymentMethods.detach(pm.id), 400, 'payment_method_unexpected_state');

    // Customer tax ids and balance
    const tax = await s.customers.createTaxId(c.id, { type: 'eu_vat', value: 'FR12345678901' });
    shape('POST /v1/customers/:id/tax_ids', 'TaxId', tax);
    await fails('POST /v1/customers/:id/tax_ids', s.customers.createTaxId(c.id, { type: 'eu_vat', value: '??' }), 400, 'tax_id_invalid');
    shape('GET /v1/customers/:id/tax_ids/:id', 'TaxId', await s.customers.retrieveTaxId(c.id, tax.id));
    list('GET /v1/customers/:id/tax_ids', 'TaxId', await s.customers.listTaxIds(c.id));
    shape('DELETE /v1/customers/:id/tax_ids/:id', 'DeletedTaxId', await s.customers.deleteTaxId(c.id, tax.id));
    await fails('DELETE /v1/customers/:id/tax_ids/:id', s.customers.deleteTaxId(c.id, tax.id), 404, 'resource_missing');
    const bt = await s.customers.createBalanceTransaction(c.id, { amount: -100, currency: 'usd' });
    shape('POST /v1/customers/:id/balance_transactions', 'CustomerBalanceTransaction', bt);
    await fails('POST /v1/customers/:id/balance_transactions', s.customers.createBalanceTransaction(c.id, { amount: 'x' as never, currency: 'usd' }), 400, 'parameter_invalid_integer');
    shape('GET /v1/customers/:id/balance_transactions/:id', 'CustomerBalanceTransaction', await s.customers.retrieveBalanceTransaction(c.id, bt.id));
    shape('POST /v1/customers/:id/balance_transactions/:id', 'CustomerBalanceTransaction', await s.customers.updateBalanceTransaction(c.id, bt.id, { description: 'd' }));
    list('GET /v1/customers/:id/balance_transactions', 'CustomerBalanceTransaction', await s.customers.listBalanceTransactions(c.id));

    // Checkout and the billing portal
    const cs = await s.checkout.sessions.create({ mode: 'payment', line_items: [{ price: oneOff.id, quantity: 1 }], success_url: 'https://example.com/ok' });
    shape('POST /v1/checkout/sessions', 'Checkout.Session', cs);
    await fails('POST /v1/checkout/sessions', s.checkout.sessions.create({ mode: 'rent' as never, line_items: [{ price: oneOff.id, quantity: 1 }] }), 400, 'parameter_invalid_string');
    shape('GET /v1/checkout/sessions/:id', 'Checkout.Session', await s.checkout.sessions.retrieve(cs.id));
    await fails('GET /v1/checkout/sessions/:id', s.checkout.sessions.retrieve('cs_missing'), 404, 'resource_missing');
    shape('POST /v1/checkout/sessions/:id', 'Checkout.Session', await s.checkout.sessions.update(cs.id, { metadata: { a: 'b' } }));
    list('GET /v1/checkout/sessions/:id/line_items', 'LineItem', await s.checkout.sessions.listLineItems(cs.id));
    list('GET /v1/checkout/sessions', 'Checkout.Session', await s.checkout.sessions.list({ limit: 1 }));
    shape('POST /v1/checkout/sessions/:id/expire', 'Checkout.Session', await s.checkout.sessions.expire(cs.id));
    await fails('POST /v1/checkout/sessions/:id/expire', s.checkout.sessions.expire(cs.id), 400);
    const bps = await s.billingPortal.sessions.create({ customer: c.id, return_url: 'https://example.com' });
    shape('POST /v1/billing_portal/sessions', 'BillingPortal.Session', bps);
    await fails('POST /v1/billing_portal/sessions', s.billingPortal.sessions.create({} as never), 400, 'parameter_missing');
    const conf = await s.billingPortal.configurations.create({ features: { invoice_history: { enabled: true } } });
    shape('POST /v1/billing_portal/configurations', 'BillingPortal.Configuration', conf);
    await fails('POST /v1/billing_portal/configurations', s.billingPortal.configurations.create({ features: { invoice_history: {} } } as never), 400, 'parameter_missing');
    shape('GET /v1/billing_portal/configurations/:id', 'BillingPortal.Configuration', await s.billingPortal.configurations.retrieve(conf.id));
    shape('POST /v1/billing_portal/configurations/:id', 'BillingPortal.Configuration', await s.billingPortal.configurations.update(conf.id, { name: 'n' }));
    list('GET /v1/billing_portal/configurations', 'BillingPortal.Configuration', await s.billingPortal.configurations.list());

    // Meters
    const meter = await s.billing.meters.create({ display_name: 'F', event_name: 'fid_calls', default_aggregation: { formula: 'sum' } });
    shape('POST /v1/billing/meters', 'Billing.Meter', meter);
    await fails('POST /v1/billing/meters', s.billing.meters.create({ display_name: 'F', event_name: 'x', default_aggregation: { formula: 'avg' as never } }), 400, 'parameter_invalid_string');
    shape('GET /v1/billing/meters/:id', 'Billing.Meter', await s.billing.meters.retrieve(meter.id));
    shape('POST /v1/billing/meters/:id', 'Billing.Meter', await s.billing.meters.update(meter.id, { display_name: 'G' }));
    list('GET /v1/billing/meters', 'Billing.Meter', await s.billing.meters.list());
    const me = await s.billing.meterEvents.create({ event_name: 'fid_calls', payload: { stripe_customer_id: c.id, value: '2' }, identifier: 'fid-1' });
    shape('POST /v1/billing/meter_events', 'Billing.MeterEvent', me);
    await fails('POST /v1/billing/meter_events', s.billing.meterEvents.create({ event_name: 'fid_calls', payload: { stripe_customer_id: c.id }, identifier: 'fid-1' }), 400);
    shape('POST /v1/billing/meter_event_adjustments', 'Billing.MeterEventAdjustment', await s.billing.meterEventAdjustments.create({ event_name: 'fid_calls', type: 'cancel', cancel: { identifier: 'fid-1' } }));
    await fails('POST /v1/billing/meter_event_adjustments', s.billing.meterEventAdjustments.create({ event_name: 'fid_calls', type: 'undo' as never }), 400, 'parameter_invalid_string');
    list('GET /v1/billing/meters/:id/event_summaries', 'Billing.MeterEventSummary', await s.billing.meters.listEventSummaries(meter.id, { customer: c.id, start_time: h.emu.now() - 3600, end_time: h.emu.now() + 60 }));
    await fails('GET /v1/billing/meters/:id/event_summaries', s.billing.meters.listEventSummaries(meter.id, { customer: c.id } as never), 400, 'parameter_missing');
    shape('POST /v1/billing/meters/:id/deactivate', 'Billing.Meter', await s.billing.meters.deactivate(meter.id));
    shape('POST /v1/billing/meters/:id/reactivate', 'Billing.Meter', await s.billing.meters.reactivate(meter.id));
    shape('POST /v2/billing/meter_events', 'V2.Billing.MeterEvent', await s.v2.billing.meterEvents.create({ event_name: 'fid_calls', payload: { stripe_customer_id: c.id } }));
    shape('POST /v2/billing/meter_event_adjustments', 'V2.Billing.MeterEventAdjustment', await s.v2.billing.meterEventAdjustments.create({ event_name: 'fid_calls', type: 'cancel', cancel: { identifier: 'fid-1' } }));
    const session = await s.v2.billing.meterEventSession.create();
    shape('POST /v2/billing/meter_event_session', 'V2.Billing.MeterEventSession', session);
    const streamClient = new Stripe(session.authentication_token, { host: '127.0.0.1', port: h.emu.port, protocol: 'http' });
    await streamClient.v2.billing.meterEventStream.create({ events: [{ event_name: 'fid_calls', payload: { stripe_customer_id: c.id } }] });
    exercised.add('POST /v2/billing/meter_event_stream');

    // Events and webhook endpoints
    list('GET /v1/events', 'Event', await s.events.list({ limit: 1 }));
    const evt = (await s.events.list({ limit: 1 })).data[0];
    shape('GET /v1/events/:id', 'Event', await s.events.retrieve(evt.id));
    await fails('GET /v1/events/:id', s.events.retrieve('evt_missing'), 404, 'resource_missing');
    const we = await s.webhookEndpoints.create({ url: 'https://example.com/hook', enabled_events: ['customer.created'] });
    shape('POST /v1/webhook_endpoints', 'WebhookEndpoint', we);
    await fails('POST /v1/webhook_endpoints', s.webhookEndpoints.create({ url: 'https://example.com/hook', enabled_events: ['not.an.event' as never] }), 400, 'parameter_invalid_string');
    shape('GET /v1/webhook_endpoints/:id', 'WebhookEndpoint', await s.webhookEndpoints.retrieve(we.id));
    shape('POST /v1/webhook_endpoints/:id', 'WebhookEndpoint', await s.webhookEndpoints.update(we.id, { description: 'd' }));
    list('GET /v1/webhook_endpoints', 'WebhookEndpoint', await s.webhookEndpoints.list());
    shape('DELETE /v1/webhook_endpoints/:id', 'DeletedWebhookEndpoint', await s.webhookEndpoints.del(we.id));

    // Subscription cancel and resume, customer delete
    shape('DELETE /v1/subscriptions/:id', 'Subscription', await s.subscriptions.cancel(sub.id));
    await fails('DELETE /v1/subscriptions/:id', s.subscriptions.cancel(sub.id), 400);
    await fails('POST /v1/subscriptions/:id/resume', s.subscriptions.resume(sub.id), 400);
    shape('DELETE /v1/customers/:id', 'DeletedCustomer', await s.customers.del(c.id));

    expect(problems).toEqual([]);
  }, 60_000);

  it('the test above drove every route the emulator serves', () => {
    const missing = describeRoutes()
      .map((r) => r.key)
      .filter((k) => !exercised.has(k) && !COVERED_ELSEWHERE.test(k));
    expect(missing).toEqual([]);
  });
});
