import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { startHarness, sdkFor, type Harness } from './helpers';

/*
 * Plan changes in the emulator, through the official SDK: items swapped and deleted, usage of a
 * removed metered price billed, interval changes, pending updates, subscription schedules and
 * invoice previews. Each test makes its own customer; the clock is shared, so tests that move
 * it look only at their own subscription.
 */
let h: Harness;
let meter: Stripe.Billing.Meter;
let small: Stripe.Price;
let smallMetered: Stripe.Price;
let big: Stripe.Price;
let bigYear: Stripe.Price;

beforeAll(async () => {
  h = await startHarness();
  meter = await h.stripe.billing.meters.create({ display_name: 'Calls', event_name: 'change_calls', default_aggregation: { formula: 'sum' } });
  const pro = await h.stripe.products.create({ name: 'Pro' });
  small = await h.stripe.prices.create({ product: pro.id, currency: 'usd', unit_amount: 1000, recurring: { interval: 'month' } });
  smallMetered = await h.stripe.prices.create({ product: pro.id, currency: 'usd', unit_amount: 3, recurring: { interval: 'month', usage_type: 'metered', meter: meter.id } });
  const team = await h.stripe.products.create({ name: 'Team' });
  big = await h.stripe.prices.create({ product: team.id, currency: 'usd', unit_amount: 3000, recurring: { interval: 'month' } });
  bigYear = await h.stripe.prices.create({ product: team.id, currency: 'usd', unit_amount: 30000, recurring: { interval: 'year' } });
});
afterAll(async () => {
  await h.emu.close();
});

async function customer(card = 'pm_card_visa'): Promise<Stripe.Customer> {
  return h.stripe.customers.create({ email: 'change@x.io', payment_method: card, invoice_settings: { default_payment_method: card } });
}

async function meteredSubscription(): Promise<{ c: Stripe.Customer; sub: Stripe.Subscription; licensed: string; metered: string }> {
  const c = await customer();
  const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: small.id }, { price: smallMetered.id }] });
  expect(sub.status).toBe('active');
  const licensed = sub.items.data.find((i) => i.price.id === small.id)!.id;
  const metered = sub.items.data.find((i) => i.price.id === smallMetered.id)!.id;
  return { c, sub, licensed, metered };
}

async function usage(c: Stripe.Customer, value: number, identifier: string): Promise<void> {
  await h.stripe.billing.meterEvents.create({ event_name: 'change_calls', payload: { stripe_customer_id: c.id, value: String(value) }, identifier });
}

async function invoicesOf(sub: string): Promise<Stripe.Invoice[]> {
  return (await h.stripe.invoices.list({ subscription: sub, limit: 100 })).data;
}

function typesSince(count: number): string[] {
  return h.emu.events().slice(count).map((e) => e.type as string);
}

describe('item changes', () => {
  test('swapping the plan and deleting its metered item bills the usage up to the change on the proration invoice, once', async () => {
    const { c, sub, licensed, metered } = await meteredSubscription();
    await usage(c, 100, `del-${sub.id}`);
    const updated = await h.stripe.subscriptions.update(sub.id, {
      items: [{ id: licensed, price: big.id }, { id: metered, deleted: true }],
      proration_behavior: 'always_invoice',
      expand: ['latest_invoice'],
    });
    expect(updated.items.data.map((i) => i.price.id)).toEqual([big.id]);
    const inv = updated.latest_invoice as Stripe.Invoice;
    expect(inv).toMatchObject({ billing_reason: 'subscription_update', status: 'paid' });
    const lines = inv.lines.data;
    expect(lines.find((l) => l.pricing?.price_details?.price === smallMetered.id)).toMatchObject({ amount: 300, quantity: 100 });
    const credit = lines.find((l) => l.amount < 0)!;
    const charge = lines.find((l) => l.pricing?.price_details?.price === big.id)!;
    expect(credit.parent?.subscription_item_details?.proration).toBe(true);
    // Nearly the whole month is left: credit about -10.00, charge about 30.00.
    expect(credit.amount).toBeLessThanOrEqual(-990);
    expect(charge.amount).toBeGreaterThanOrEqual(2970);
    expect(inv.amount_due).toBe(300 + credit.amount + charge.amount);

    h.emu.advanceClock(updated.items.data[0].current_period_end - h.emu.now() + 60);
    const renewal = (await invoicesOf(sub.id))[0];
    expect(renewal).toMatchObject({ billing_reason: 'subscription_cycle', amount_due: 3000, status: 'paid' });
  });

  test('create_prorations keeps the lines, usage included, for the next invoice', async () => {
    const { c, sub, licensed, metered } = await meteredSubscription();
    await usage(c, 10, `later-${sub.id}`);
    const before = (await invoicesOf(sub.id)).length;
    const updated = await h.stripe.subscriptions.update(sub.id, { items: [{ id: licensed, price: big.id }, { id: metered, deleted: true }] });
    expect((await invoicesOf(sub.id)).length).toBe(before);
    h.emu.advanceClock(updated.items.data[0].current_period_end - h.emu.now() + 60);
    const renewal = (await invoicesOf(sub.id))[0];
    const amounts = renewal.lines.data.map((l) => l.amount);
    expect(amounts).toContain(30);
    expect(amounts).toContain(3000);
    expect(amounts.some((a) => a < 0)).toBe(true);
  });

  test('a new interval restarts the billing cycle now: credit, usage so far and the new period in full on one invoice', async () => {
    const { c, sub, licensed, metered } = await meteredSubscription();
    await usage(c, 7, `interval-${sub.id}`);
    const now = h.emu.now();
    const updated = await h.stripe.subscriptions.update(sub.id, {
      items: [{ id: licensed, price: bigYear.id }, { id: metered, deleted: true }],
      proration_behavior: 'create_prorations',
      expand: ['latest_invoice'],
    });
    const item = updated.items.data[0];
    expect(item.current_period_start).toBeGreaterThanOrEqual(now);
    expect(item.current_period_end - item.current_period_start).toBeGreaterThan(364 * 86400);
    const inv = updated.latest_invoice as Stripe.Invoice;
    const amounts = inv.lines.data.map((l) => l.amount);
    expect(amounts).toContain(30000);
    expect(amounts).toContain(21);
    expect(amounts.some((a) => a <= -990)).toBe(true);
    expect(inv.status).toBe('paid');
  });

  test('prices of different intervals on one subscription are refused, and nothing changes', async () => {
    const { sub, licensed } = await meteredSubscription();
    const err = await h.stripe.subscriptions.update(sub.id, { items: [{ id: licensed, price: bigYear.id }] }).catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.message).toMatch(/same `recurring.interval`/);
    expect((await h.stripe.subscriptions.retrieve(sub.id)).items.data.map((i) => i.price.id).sort()).toEqual([small.id, smallMetered.id].sort());
  });
});

describe('pending updates (payment_behavior=pending_if_incomplete)', () => {
  async function failingSubscription(card: string) {
    const { c, sub, licensed } = await meteredSubscription();
    const pm = await h.stripe.paymentMethods.attach(card, { customer: c.id });
    await h.stripe.subscriptions.update(sub.id, { default_payment_method: pm.id });
    return { c, sub, licensed };
  }

  test('a declined payment leaves the items as they were with a pending_update; paying the invoice applies it', async () => {
    const { sub, licensed } = await failingSubscription('pm_card_chargeCustomerFail');
    const mark = h.emu.events().length;
    const updated = await h.stripe.subscriptions.update(sub.id, {
      items: [{ id: licensed, price: big.id }],
      proration_behavior: 'always_invoice',
      payment_behavior: 'pending_if_incomplete',
      expand: ['latest_invoice.confirmation_secret'],
    });
    expect(updated.status).toBe('active');
    expect(updated.items.data.map((i) => i.price.id).sort()).toEqual([small.id, smallMetered.id].sort());
    expect(updated.pending_update?.subscription_items?.map((i) => i.price.id).sort()).toEqual([big.id, smallMetered.id].sort());
    const inv = updated.latest_invoice as Stripe.Invoice;
    expect(inv.status).toBe('open');
    expect(typesSince(mark)).toContain('invoice.payment_failed');

    const piId = inv.confirmation_secret!.client_secret.split('_secret_')[0];
    await h.stripe.paymentIntents.confirm(piId, { payment_method: 'pm_card_visa' });
    const after = await h.stripe.subscriptions.retrieve(sub.id);
    expect(after.pending_update).toBeNull();
    expect(after.status).toBe('active');
    expect(after.items.data.map((i) => i.price.id).sort()).toEqual([big.id, smallMetered.id].sort());
    expect(typesSince(mark)).toEqual(expect.arrayContaining(['invoice.paid', 'customer.subscription.pending_update_applied', 'customer.subscription.updated']));
  });

  test('3-D Secure: the change waits for authentication, then applies', async () => {
    const { sub, licensed } = await failingSubscription('pm_card_authenticationRequired');
    const updated = await h.stripe.subscriptions.update(sub.id, {
      items: [{ id: licensed, quantity: 3 }],
      proration_behavior: 'always_invoice',
      payment_behavior: 'pending_if_incomplete',
      expand: ['latest_invoice'],
    });
    expect(updated.pending_update).not.toBeNull();
    expect(updated.items.data.find((i) => i.id === licensed)!.quantity).toBe(1);
    const pi = (updated.latest_invoice as Stripe.Invoice & { confirmation_secret?: unknown }).id;
    const invoice = await h.stripe.invoices.retrieve(pi, { expand: ['confirmation_secret'] });
    const piId = invoice.confirmation_secret!.client_secret.split('_secret_')[0];
    expect((await h.stripe.paymentIntents.retrieve(piId)).status).toBe('requires_action');
    const res = await fetch(`${h.emu.url}/_emulator/payment_intents/${piId}/authenticate`, { method: 'POST' });
    expect(res.status).toBe(200);
    const after = await h.stripe.subscriptions.retrieve(sub.id);
    expect(after.pending_update).toBeNull();
    expect(after.items.data.find((i) => i.id === licensed)!.quantity).toBe(3);
  });

  test('refuses parameters a pending update cannot carry, such as deleting an item', async () => {
    const { sub, licensed } = await meteredSubscription();
    const metered = sub.items.data.find((i) => i.price.id === smallMetered.id)!.id;
    const err = await h.stripe.subscriptions
      .update(sub.id, { items: [{ id: licensed, price: big.id }, { id: metered, deleted: true }], payment_behavior: 'pending_if_incomplete', proration_behavior: 'always_invoice' })
      .catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.param).toBe('items[1][deleted]');
  });

  test('an unpaid pending update expires after 23 hours and its invoice is voided', async () => {
    const { sub, licensed } = await failingSubscription('pm_card_chargeCustomerFail');
    const updated = await h.stripe.subscriptions.update(sub.id, {
      items: [{ id: licensed, price: big.id }],
      proration_behavior: 'always_invoice',
      payment_behavior: 'pending_if_incomplete',
    });
    const invoiceId = updated.latest_invoice as string;
    h.emu.advanceClock(23 * 3600 + 60);
    const after = await h.stripe.subscriptions.retrieve(sub.id);
    expect(after.pending_update).toBeNull();
    expect(after.items.data.map((i) => i.price.id)).toContain(small.id);
    expect((await h.stripe.invoices.retrieve(invoiceId)).status).toBe('void');
  });
});

describe('subscription schedules', () => {
  test('a change at period end: phases from the subscription, the next phase applies when the clock passes the period end, then the schedule releases', async () => {
    const { c, sub } = await meteredSubscription();
    const mark = h.emu.events().length;
    const sched = await h.stripe.subscriptionSchedules.create({ from_subscription: sub.id });
    expect(sched).toMatchObject({ status: 'active', subscription: sub.id, end_behavior: 'release' });
    const periodEnd = sub.items.data[0].current_period_end;
    expect(sched.phases).toHaveLength(1);
    expect(sched.phases[0]).toMatchObject({ start_date: sub.items.data[0].current_period_start, end_date: periodEnd });
    expect((await h.stripe.subscriptions.retrieve(sub.id)).schedule).toBe(sched.id);

    const updated = await h.stripe.subscriptionSchedules.update(sched.id, {
      phases: [
        { items: [{ price: small.id, quantity: 1 }, { price: smallMetered.id }], start_date: sched.phases[0].start_date, end_date: periodEnd },
        { items: [{ price: big.id, quantity: 2 }], duration: { interval: 'month', interval_count: 1 } },
      ],
      end_behavior: 'release',
    });
    expect(updated.phases[1].start_date).toBe(periodEnd);
    await usage(c, 50, `sched-${sub.id}`);

    h.emu.advanceClock(periodEnd - h.emu.now() + 60);
    const moved = await h.stripe.subscriptions.retrieve(sub.id);
    expect(moved.items.data.map((i) => [i.price.id, i.quantity])).toEqual([[big.id, 2]]);
    expect(moved.items.data[0].current_period_start).toBe(periodEnd);
    const renewal = (await invoicesOf(sub.id))[0];
    // The old plan's usage in arrears at its price, the new plan in advance, no proration.
    expect(renewal.lines.data.map((l) => l.amount).sort((a, b) => a - b)).toEqual([150, 6000]);
    expect((await h.stripe.subscriptionSchedules.retrieve(sched.id)).current_phase?.start_date).toBe(periodEnd);

    h.emu.advanceClock(moved.items.data[0].current_period_end - h.emu.now() + 60);
    const released = await h.stripe.subscriptionSchedules.retrieve(sched.id);
    expect(released).toMatchObject({ status: 'released', released_subscription: sub.id });
    const still = await h.stripe.subscriptions.retrieve(sub.id);
    expect(still.schedule).toBeNull();
    expect(still.items.data.map((i) => i.price.id)).toEqual([big.id]);
    expect(typesSince(mark)).toEqual(
      expect.arrayContaining(['subscription_schedule.created', 'subscription_schedule.updated', 'subscription_schedule.released', 'customer.subscription.updated']),
    );
  });

  test('release leaves the subscription as it is; a second schedule then works; canceling a schedule cancels its subscription', async () => {
    const { sub } = await meteredSubscription();
    const first = await h.stripe.subscriptionSchedules.create({ from_subscription: sub.id });
    const again = await h.stripe.subscriptionSchedules.create({ from_subscription: sub.id }).catch((e) => e);
    expect(again.message).toMatch(/already attached to a schedule/);
    const released = await h.stripe.subscriptionSchedules.release(first.id);
    expect(released.status).toBe('released');
    expect((await h.stripe.subscriptions.retrieve(sub.id)).schedule).toBeNull();
    await expect(h.stripe.subscriptionSchedules.release(first.id)).rejects.toThrow(/currently `released`/);

    const second = await h.stripe.subscriptionSchedules.create({ from_subscription: sub.id });
    const canceled = await h.stripe.subscriptionSchedules.cancel(second.id);
    expect(canceled.status).toBe('canceled');
    expect((await h.stripe.subscriptions.retrieve(sub.id)).status).toBe('canceled');
  });

  test('a phase ending with a trial: the first paid invoice is on the items of the next phase', async () => {
    const c = await customer();
    const sub = await h.stripe.subscriptions.create({ customer: c.id, items: [{ price: big.id }], trial_period_days: 3 });
    const sched = await h.stripe.subscriptionSchedules.create({ from_subscription: sub.id });
    await h.stripe.subscriptionSchedules.update(sched.id, {
      phases: [
        { items: [{ price: big.id, quantity: 1 }], start_date: sched.phases[0].start_date, end_date: sub.trial_end! },
        { items: [{ price: small.id, quantity: 1 }, { price: smallMetered.id }] },
      ],
    });
    h.emu.advanceClock(sub.trial_end! - h.emu.now() + 60);
    const after = await h.stripe.subscriptions.retrieve(sub.id);
    expect(after.status).toBe('active');
    expect(after.items.data.map((i) => i.price.id).sort()).toEqual([small.id, smallMetered.id].sort());
    const [first] = await invoicesOf(sub.id);
    expect(first.amount_due).toBe(1000);
  });

  test('canceling the subscription cancels its schedule; the current phase start cannot move', async () => {
    const { sub } = await meteredSubscription();
    const sched = await h.stripe.subscriptionSchedules.create({ from_subscription: sub.id });
    const moved = await h.stripe.subscriptionSchedules
      .update(sched.id, { phases: [{ items: [{ price: big.id }], start_date: sched.phases[0].start_date + 10 }] })
      .catch((e) => e);
    expect(moved.message).toMatch(/start date of the current phase/);
    await h.stripe.subscriptions.cancel(sub.id);
    expect((await h.stripe.subscriptionSchedules.retrieve(sched.id)).status).toBe('canceled');
  });
});

describe('invoice previews', () => {
  test('the preview of an always_invoice change equals the invoice the change then creates (same proration_date)', async () => {
    const { sub, licensed } = await meteredSubscription();
    const prorationDate = h.emu.now() + 3600;
    const preview = await h.stripe.invoices.createPreview({
      customer: sub.customer as string,
      subscription: sub.id,
      subscription_details: { items: [{ id: licensed, price: big.id, quantity: 2 }], proration_behavior: 'always_invoice', proration_date: prorationDate },
    });
    expect(preview.status).toBe('draft');
    expect(preview.lines.data.every((l) => l.parent?.subscription_item_details?.proration)).toBe(true);
    const updated = await h.stripe.subscriptions.update(sub.id, {
      items: [{ id: licensed, price: big.id, quantity: 2 }],
      proration_behavior: 'always_invoice',
      proration_date: prorationDate,
      expand: ['latest_invoice'],
    });
    const inv = updated.latest_invoice as Stripe.Invoice;
    expect(inv.amount_due).toBe(preview.amount_due);
    expect(inv.lines.data.map((l) => l.amount)).toEqual(preview.lines.data.map((l) => l.amount));
    // Nothing was stored by the preview.
    expect((await invoicesOf(sub.id)).map((i) => i.id)).not.toContain(preview.id);
  });

  test('the upcoming preview of a scheduled change equals the renewal invoice', async () => {
    const { sub } = await meteredSubscription();
    const sched = await h.stripe.subscriptionSchedules.create({ from_subscription: sub.id });
    await h.stripe.subscriptionSchedules.update(sched.id, {
      phases: [
        { items: [{ price: small.id, quantity: 1 }, { price: smallMetered.id }], start_date: sched.phases[0].start_date, end_date: sched.phases[0].end_date! },
        { items: [{ price: big.id, quantity: 1 }] },
      ],
    });
    const preview = await h.stripe.invoices.createPreview({ subscription: sub.id });
    h.emu.advanceClock(sched.phases[0].end_date! - h.emu.now() + 60);
    const renewal = (await invoicesOf(sub.id))[0];
    expect(preview.amount_due).toBe(3000);
    expect(renewal.amount_due).toBe(preview.amount_due);
    expect(renewal.period_start).toBe(preview.period_start);
  });
});

describe('state file', () => {
  test('a pending update and a schedule survive a restart of the emulator, and still apply', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'emu-changes-'));
    const stateFile = path.join(dir, 'state.json');
    try {
      const first = await startHarness({ stateFile });
      const s = first.stripe;
      const product = await s.products.create({ name: 'Seats' });
      const one = await s.prices.create({ product: product.id, currency: 'usd', unit_amount: 1000, recurring: { interval: 'month' } });
      const two = await s.prices.create({ product: product.id, currency: 'usd', unit_amount: 4000, recurring: { interval: 'month' } });
      const c = await s.customers.create({ payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } });
      const pending = await s.subscriptions.create({ customer: c.id, items: [{ price: one.id }] });
      const failing = await s.paymentMethods.attach('pm_card_chargeCustomerFail', { customer: c.id });
      await s.subscriptions.update(pending.id, { default_payment_method: failing.id });
      const updated = await s.subscriptions.update(pending.id, {
        items: [{ id: pending.items.data[0].id, price: two.id }],
        proration_behavior: 'always_invoice',
        payment_behavior: 'pending_if_incomplete',
        expand: ['latest_invoice.confirmation_secret'],
      });
      const secret = (updated.latest_invoice as Stripe.Invoice).confirmation_secret!.client_secret;
      const scheduled = await s.subscriptions.create({ customer: c.id, items: [{ price: one.id }] });
      const sched = await s.subscriptionSchedules.create({ from_subscription: scheduled.id });
      const end = scheduled.items.data[0].current_period_end;
      await s.subscriptionSchedules.update(sched.id, {
        phases: [{ items: [{ price: one.id, quantity: 1 }], start_date: sched.phases[0].start_date, end_date: end }, { items: [{ price: two.id, quantity: 1 }] }],
      });
      await first.emu.close();

      const second = await startHarness({ stateFile });
      const again = sdkFor(second.emu);
      expect((await again.subscriptions.retrieve(pending.id)).pending_update).not.toBeNull();
      await again.paymentIntents.confirm(secret.split('_secret_')[0], { payment_method: 'pm_card_visa' });
      expect((await again.subscriptions.retrieve(pending.id)).items.data.map((i) => i.price.id)).toEqual([two.id]);
      second.emu.advanceClock(end - second.emu.now() + 60);
      expect((await again.subscriptions.retrieve(scheduled.id)).items.data.map((i) => i.price.id)).toEqual([two.id]);
      await second.emu.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
