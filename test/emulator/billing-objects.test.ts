import type Stripe from 'stripe';
import { recurringPrice, startHarness, type Harness } from './helpers';

async function failure(p: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await p;
  } catch (e) {
    return e as Stripe.errors.StripeError;
  }
  throw new Error('expected the call to fail');
}

async function payingCustomer(stripe: Stripe, email = 'payer@example.com'): Promise<Stripe.Customer> {
  return stripe.customers.create({ email, payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
}

describe('subscription items, invoice items, draft invoices, coupons', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.emu.close();
  });

  const eventTypes = (since: number) => h.emu.events().slice(since).map((e) => e.type);

  it('creates, updates, lists and deletes subscription items, each an update of the subscription', async () => {
    const base = await recurringPrice(h.stripe, 1000);
    const addon = await recurringPrice(h.stripe, 300);
    const customer = await payingCustomer(h.stripe);
    const sub = await h.stripe.subscriptions.create({ customer: customer.id, items: [{ price: base.id }] });
    const mark = h.emu.events().length;
    const item = await h.stripe.subscriptionItems.create({ subscription: sub.id, price: addon.id, quantity: 2, proration_behavior: 'none' });
    expect(item).toMatchObject({ object: 'subscription_item', subscription: sub.id, quantity: 2 });
    expect(item.price.id).toBe(addon.id);
    expect(eventTypes(mark)).toContain('customer.subscription.updated');
    const dup = await failure(h.stripe.subscriptionItems.create({ subscription: sub.id, price: addon.id }));
    expect([dup.statusCode, dup.param]).toEqual([400, 'price']);
    const updated = await h.stripe.subscriptionItems.update(item.id, { quantity: 5, proration_behavior: 'none' });
    expect(updated.quantity).toBe(5);
    const listed = await h.stripe.subscriptionItems.list({ subscription: sub.id });
    expect(listed.data.map((i) => i.id).sort()).toEqual([item.id, sub.items.data[0].id].sort());
    const deleted = await h.stripe.subscriptionItems.del(item.id, { proration_behavior: 'none' });
    expect(deleted).toMatchObject({ id: item.id, object: 'subscription_item', deleted: true });
    expect((await h.stripe.subscriptions.retrieve(sub.id)).items.data).toHaveLength(1);
    const last = await failure(h.stripe.subscriptionItems.del(sub.items.data[0].id));
    expect(last.statusCode).toBe(400);
    const missing = await failure(h.stripe.subscriptionItems.create({ subscription: 'sub_missing', price: addon.id }));
    expect([missing.statusCode, missing.code]).toEqual([404, 'resource_missing']);
  });

  it('builds a draft invoice from invoice items and lines, then finalizes, sends, voids or deletes it', async () => {
    const customer = await payingCustomer(h.stripe, 'drafts@example.com');
    const pending = await h.stripe.invoiceItems.create({ customer: customer.id, amount: 2500, currency: 'usd', description: 'Setup fee' });
    expect(pending.invoice).toBeNull();
    const draft = await h.stripe.invoices.create({ customer: customer.id, pending_invoice_items_behavior: 'include', collection_method: 'send_invoice', days_until_due: 14 });
    expect(draft.status).toBe('draft');
    expect(draft.total).toBe(2500);
    expect((await h.stripe.invoiceItems.retrieve(pending.id)).invoice).toBe(draft.id);
    const withLines = await h.stripe.invoices.addLines(draft.id, { lines: [{ amount: 500, description: 'Extra' }] });
    expect(withLines.lines.data.map((l) => l.amount)).toEqual([2500, 500]);
    expect(withLines.total).toBe(3000);
    const onDraft = await h.stripe.invoiceItems.create({ customer: customer.id, amount: 100, currency: 'usd', invoice: draft.id });
    expect((await h.stripe.invoices.retrieve(draft.id)).total).toBe(3100);
    await h.stripe.invoiceItems.del(onDraft.id);
    expect((await h.stripe.invoices.retrieve(draft.id)).total).toBe(3000);
    const finalized = await h.stripe.invoices.finalizeInvoice(draft.id);
    expect(finalized).toMatchObject({ status: 'open', amount_due: 3000, collection_method: 'send_invoice' });
    expect(finalized.due_date).toBeGreaterThan(finalized.created);
    const mark = h.emu.events().length;
    await h.stripe.invoices.sendInvoice(draft.id);
    expect(eventTypes(mark)).toEqual(['invoice.sent']);
    const notDraft = await failure(h.stripe.invoices.addLines(draft.id, { lines: [{ amount: 1, description: 'late' }] }));
    expect([notDraft.statusCode, notDraft.code]).toEqual([400, 'invoice_not_editable']);
    const cannotDelete = await failure(h.stripe.invoices.del(draft.id));
    expect(cannotDelete.code).toBe('invoice_not_editable');
    expect((await h.stripe.invoices.voidInvoice(draft.id)).status).toBe('void');

    const other = await h.stripe.invoices.create({ customer: customer.id });
    expect(other.total).toBe(0);
    expect(await h.stripe.invoices.del(other.id)).toMatchObject({ id: other.id, deleted: true });
    const gone = await failure(h.stripe.invoices.retrieve(other.id));
    expect(gone.statusCode).toBe(404);
  });

  it('puts a pending invoice item on the next subscription invoice', async () => {
    const price = await recurringPrice(h.stripe, 1000);
    const customer = await payingCustomer(h.stripe, 'renewal-item@example.com');
    const sub = await h.stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
    const ii = await h.stripe.invoiceItems.create({ customer: customer.id, amount: 700, currency: 'usd', description: 'One-off' });
    h.emu.advanceClock(32 * 86400);
    const renewal = await h.stripe.invoices.retrieve((await h.stripe.subscriptions.retrieve(sub.id)).latest_invoice as string);
    expect(renewal.billing_reason).toBe('subscription_cycle');
    expect(renewal.total).toBe(1700);
    expect(renewal.lines.data.some((l) => l.parent?.invoice_item_details?.invoice_item === ii.id)).toBe(true);
    expect((await h.stripe.invoiceItems.retrieve(ii.id)).invoice).toBe(renewal.id);
  });

  it('applies a coupon or a promotion code to a subscription invoice, and removes it with deleteDiscount', async () => {
    const price = await recurringPrice(h.stripe, 2000);
    const customer = await payingCustomer(h.stripe, 'coupon@example.com');
    const coupon = await h.stripe.coupons.create({ percent_off: 25, duration: 'forever', name: 'Quarter off' });
    const sub = await h.stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }], discounts: [{ coupon: coupon.id }] });
    expect(sub.discounts).toHaveLength(1);
    const first = await h.stripe.invoices.retrieve(sub.latest_invoice as string);
    expect([first.subtotal, first.total, first.amount_paid]).toEqual([2000, 1500, 1500]);
    expect(first.total_discount_amounts).toEqual([{ amount: 500, discount: sub.discounts[0] }]);
    expect((await h.stripe.coupons.retrieve(coupon.id)).times_redeemed).toBe(1);

    const removed = await h.stripe.subscriptions.deleteDiscount(sub.id);
    expect(removed.deleted).toBe(true);
    h.emu.advanceClock(32 * 86400);
    const renewal = await h.stripe.invoices.retrieve((await h.stripe.subscriptions.retrieve(sub.id)).latest_invoice as string);
    expect(renewal.total).toBe(2000);

    const fixed = await h.stripe.coupons.create({ amount_off: 500, currency: 'usd', duration: 'once' });
    const promo = await h.stripe.promotionCodes.create({ promotion: { type: 'coupon', coupon: fixed.id }, code: 'WELCOME5' });
    const other = await payingCustomer(h.stripe, 'promo@example.com');
    const sub2 = await h.stripe.subscriptions.create({ customer: other.id, items: [{ price: price.id }], discounts: [{ promotion_code: promo.id }] });
    expect((await h.stripe.invoices.retrieve(sub2.latest_invoice as string)).total).toBe(1500);
    expect((await h.stripe.promotionCodes.retrieve(promo.id)).times_redeemed).toBe(1);
    h.emu.advanceClock(32 * 86400);
    const next = await h.stripe.invoices.retrieve((await h.stripe.subscriptions.retrieve(sub2.id)).latest_invoice as string);
    expect(next.total).toBe(2000);
  });

  it('validates coupons and promotion codes as Stripe does', async () => {
    const neither = await failure(h.stripe.coupons.create({ duration: 'once' }));
    expect(neither.statusCode).toBe(400);
    const noCurrency = await failure(h.stripe.coupons.create({ amount_off: 100 }));
    expect([noCurrency.code, noCurrency.param]).toEqual(['parameter_missing', 'currency']);
    const repeating = await failure(h.stripe.coupons.create({ percent_off: 10, duration: 'repeating' }));
    expect(repeating.param).toBe('duration_in_months');
    const noCoupon = await failure(h.stripe.promotionCodes.create({ promotion: { type: 'coupon', coupon: 'nope' } }));
    expect([noCoupon.statusCode, noCoupon.code]).toEqual([404, 'resource_missing']);
    const badDiscount = await failure(h.stripe.subscriptions.create({ customer: (await payingCustomer(h.stripe, 'bad@example.com')).id, items: [{ price: (await recurringPrice(h.stripe, 100)).id }], discounts: [{ coupon: 'missing' }] }));
    expect([badDiscount.statusCode, badDiscount.param]).toEqual([404, 'discounts[0][coupon]']);
    const c = await h.stripe.coupons.create({ percent_off: 5, id: 'FIVE' });
    expect(c.id).toBe('FIVE');
    expect((await h.stripe.coupons.del('FIVE')).deleted).toBe(true);
    expect((await failure(h.stripe.coupons.retrieve('FIVE'))).statusCode).toBe(404);
  });

  it('takes a promotion code on a Checkout page that allows them, and the subscription invoice is discounted', async () => {
    const price = await recurringPrice(h.stripe, 4000);
    const coupon = await h.stripe.coupons.create({ percent_off: 50, duration: 'once' });
    await h.stripe.promotionCodes.create({ promotion: { type: 'coupon', coupon: coupon.id }, code: 'HALF' });
    const session = await h.stripe.checkout.sessions.create({
      mode: 'subscription',
      line_items: [{ price: price.id, quantity: 1 }],
      allow_promotion_codes: true,
      success_url: 'https://example.com/ok',
    });
    expect(session.allow_promotion_codes).toBe(true);
    const page = await (await fetch(session.url as string)).text();
    expect(page).toContain('name="promotion_code"');
    const res = await fetch(session.url as string, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ email: 'checkout-promo@example.com', card: 'pm_card_visa', promotion_code: 'half' }).toString(),
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    const done = await h.stripe.checkout.sessions.retrieve(session.id, { expand: ['subscription.latest_invoice'] });
    const invoice = (done.subscription as Stripe.Subscription).latest_invoice as Stripe.Invoice;
    expect([invoice.subtotal, invoice.total]).toEqual([4000, 2000]);
    expect(done.total_details?.amount_discount).toBe(2000);
    const both = await failure(h.stripe.checkout.sessions.create({ mode: 'subscription', line_items: [{ price: price.id, quantity: 1 }], allow_promotion_codes: true, discounts: [{ coupon: coupon.id }], success_url: 'https://example.com/ok' }));
    expect(both.code).toBe('parameters_exclusive');
  });
});
