import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { startEmulator, type RunningEmulator } from '../../src/emulator';

/*
 * The state files as a crash would leave them: copied while the emulator runs, between two saves
 * of the state file (the debounce is long here), then opened by a new emulator. The kill -9 of a
 * real process is in test/integration/fault-matrix-kill-emulator.test.ts.
 */

let dir: string;
const running: RunningEmulator[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'emu-journal-replay-'));
});
afterEach(async () => {
  for (const e of running.splice(0)) await e.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function start(stateFile: string, logs: string[] = []): Promise<RunningEmulator> {
  const emu = await startEmulator({ port: 0, stateFile, logger: (l) => logs.push(l) });
  running.push(emu);
  return emu;
}

function sdk(emu: RunningEmulator): Stripe {
  return new Stripe('sk_test_journal', { host: '127.0.0.1', port: emu.port, protocol: 'http', maxNetworkRetries: 0 });
}

/** Copies the state file and its companions as they are on disk now: what a kill -9 leaves. */
function crashCopy(stateFile: string, to: string): string {
  fs.mkdirSync(to, { recursive: true });
  for (const f of fs.readdirSync(path.dirname(stateFile))) {
    if (f.startsWith(path.basename(stateFile))) fs.copyFileSync(path.join(path.dirname(stateFile), f), path.join(to, f));
  }
  return path.join(to, path.basename(stateFile));
}

const plain = (o: unknown) => JSON.parse(JSON.stringify(o));

describe('emulator journal', () => {
  it('brings back every acknowledged object, meter event and idempotent answer after a crash between saves', async () => {
    const file = path.join(dir, 'a', 'state.json');
    fs.mkdirSync(path.dirname(file));
    const a = await start(file);
    const s = sdk(a);
    const customers: Stripe.Customer[] = [];
    for (let i = 0; i < 20; i++) customers.push(await s.customers.create({ email: `c${i}@x.io` }, { idempotencyKey: `cus-${i}` }));
    const product = await s.products.create({ name: 'Calls' });
    const price = await s.prices.create({ product: product.id, currency: 'usd', unit_amount: 100, recurring: { interval: 'month' } });
    const sub = await s.subscriptions.create({ customer: customers[0].id, items: [{ price: price.id }] }, { idempotencyKey: 'sub-0' });
    const meter = await s.billing.meters.create({ display_name: 'Calls', event_name: 'calls', default_aggregation: { formula: 'sum' } });
    for (let i = 0; i < 50; i++) {
      await s.billing.meterEvents.create({ event_name: 'calls', identifier: `v1-${i}`, payload: { stripe_customer_id: customers[0].id, value: '2' } });
    }
    const session = await s.v2.billing.meterEventSession.create();
    const stream = new Stripe(session.authentication_token, { host: '127.0.0.1', port: a.port, protocol: 'http', maxNetworkRetries: 0 });
    for (let batch = 0; batch < 5; batch++) {
      await stream.v2.billing.meterEventStream.create({
        events: Array.from({ length: 100 }, (_, i) => ({ event_name: 'calls', identifier: `v2-${batch}-${i}`, payload: { stripe_customer_id: customers[0].id, value: '1' } })),
      });
    }
    expect(a.meterEventCount()).toBe(550);
    const events = a.events().map((e) => e.id);
    const copy = crashCopy(file, path.join(dir, 'b'));
    expect(fs.statSync(`${copy}.journal`).size).toBeGreaterThan(0);

    // Replayed in a later second than the requests ran: their times must come from the journal.
    await new Promise((r) => setTimeout(r, 1_100));
    const logs: string[] = [];
    const b = await start(copy, logs);
    expect(logs.join('\n')).toMatch(/replayed \d+ requests/);
    // The replay was saved at once: the journal holds only what comes after the start.
    expect(fs.statSync(`${copy}.journal`).size).toBe(0);
    const t = sdk(b);
    expect(b.meterEventCount()).toBe(550);
    const list = await t.customers.list({ limit: 100 });
    expect(list.data.map((c) => c.id).sort()).toEqual(customers.map((c) => c.id).sort());
    for (const c of customers) expect(plain(await t.customers.retrieve(c.id))).toEqual(plain(await s.customers.retrieve(c.id)));
    expect(plain(await t.subscriptions.retrieve(sub.id))).toEqual(plain(await s.subscriptions.retrieve(sub.id)));
    expect(b.events().map((e) => e.id)).toEqual(events);
    const start0 = Math.floor(Date.now() / 1000) - 3600;
    const summary = await t.billing.meters.listEventSummaries(meter.id, { customer: customers[0].id, start_time: start0, end_time: start0 + 7200 });
    expect(summary.data[0].aggregated_value).toBe(600);

    // A retry after the restart gets the first answer, and nothing new.
    const again = await t.customers.create({ email: 'c3@x.io' }, { idempotencyKey: 'cus-3' });
    expect(again.id).toBe(customers[3].id);
    expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect((await t.customers.list({ limit: 100 })).data).toHaveLength(20);
    await expect(t.billing.meterEvents.create({ event_name: 'calls', identifier: 'v1-7', payload: { stripe_customer_id: customers[0].id } })).rejects.toThrow(/already exists/);
    expect(b.meterEventCount()).toBe(550);
  });

  it('replays a test clock advance exactly: the renewal, the failed payment with its retry, the events; the clock then goes on', async () => {
    const DAY = 86400;
    const T0 = Date.UTC(2030, 0, 15, 12) / 1000;
    const RENEWAL = Date.UTC(2030, 1, 15, 12) / 1000;
    const file = path.join(dir, 'a', 'state.json');
    fs.mkdirSync(path.dirname(file));
    const a = await start(file);
    const s = sdk(a);
    const product = await s.products.create({ name: 'Pro' });
    const price = await s.prices.create({ product: product.id, currency: 'usd', unit_amount: 1500, recurring: { interval: 'month' } });
    const clock = await s.testHelpers.testClocks.create({ frozen_time: T0 });
    const card = { payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } };
    const payer = await s.customers.create({ email: 'payer@x.io', test_clock: clock.id, ...card });
    const failer = await s.customers.create({ email: 'failer@x.io', test_clock: clock.id, ...card });
    const paying = await s.subscriptions.create({ customer: payer.id, items: [{ price: price.id }] });
    const failing = await s.subscriptions.create({ customer: failer.id, items: [{ price: price.id }] });
    expect([paying.status, failing.status]).toEqual(['active', 'active']);
    // A control route: not journaled, so the state file must hold it before the answer.
    const pm = (await s.customers.retrieve(failer.id)) as Stripe.Customer;
    const behavior = await fetch(`${a.url}/_emulator/payment_methods/${pm.invoice_settings.default_payment_method as string}/behavior`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ behavior: 'customer_fail' }),
    });
    expect(behavior.status).toBe(200);
    const advanced = await s.testHelpers.testClocks.advance(clock.id, { frozen_time: RENEWAL + 3600 });
    expect(advanced.status).toBe('advancing');
    // Journaled requests for the clock's customers run at the clock's time, on replay too.
    const late = await s.customers.create({ email: 'late@x.io', test_clock: clock.id, ...card });
    const lateSub = await s.subscriptions.create({ customer: late.id, items: [{ price: price.id }] });
    expect([late.created, lateSub.created, lateSub.items.data[0].current_period_end]).toEqual([RENEWAL + 3600, RENEWAL + 3600, Date.UTC(2030, 2, 15, 13) / 1000]);
    const copy = crashCopy(file, path.join(dir, 'b'));
    expect(fs.readFileSync(`${copy}.journal`, 'utf8')).toContain(`/v1/test_helpers/test_clocks/${clock.id}/advance`);

    const invoicesOf = async (t: Stripe, customer: string) => plain((await t.invoices.list({ customer, limit: 100 })).data);
    const before = {
      clock: plain(await s.testHelpers.testClocks.retrieve(clock.id)),
      subs: [plain(await s.subscriptions.retrieve(paying.id)), plain(await s.subscriptions.retrieve(failing.id)), plain(await s.subscriptions.retrieve(lateSub.id))],
      invoices: [await invoicesOf(s, payer.id), await invoicesOf(s, failer.id)],
      events: plain(a.events()),
    };
    expect(before.clock).toMatchObject({ status: 'ready', frozen_time: RENEWAL + 3600 });
    expect(before.subs.map((x) => x.status)).toEqual(['active', 'past_due', 'active']);
    expect(before.invoices[0].map((i: Stripe.Invoice) => [i.billing_reason, i.status, i.created])).toEqual([
      ['subscription_cycle', 'paid', RENEWAL],
      ['subscription_create', 'paid', T0],
    ]);
    expect(before.invoices[1][0]).toMatchObject({ billing_reason: 'subscription_cycle', status: 'open', attempt_count: 1, next_payment_attempt: RENEWAL + 3 * DAY });

    // Replayed in a later second of real time: the clock's time, not the wall clock, dates the work.
    await new Promise((r) => setTimeout(r, 1_100));
    const logs: string[] = [];
    const b = await start(copy, logs);
    expect(logs.join('\n')).toMatch(/replayed \d+ requests/);
    const t = sdk(b);
    // Hosted invoice pages are on the new emulator's port (local mode keeps the port; here it is a free one).
    const samePort = (o: unknown) => JSON.parse(JSON.stringify(o).split(a.url).join(b.url));
    expect(plain(await t.testHelpers.testClocks.retrieve(clock.id))).toEqual(before.clock);
    const subs = [paying.id, failing.id, lateSub.id].map(async (id) => plain(await t.subscriptions.retrieve(id)));
    expect(await Promise.all(subs)).toEqual(before.subs);
    expect(samePort([await invoicesOf(t, payer.id), await invoicesOf(t, failer.id)])).toEqual(samePort(before.invoices));
    expect(samePort(b.events())).toEqual(samePort(before.events));
    const once = (type: string, customer: string) => b.events().filter((e) => e.type === type && e.data.object.customer === customer).length;
    expect([once('invoice.paid', payer.id), once('invoice.payment_failed', failer.id), once('invoice.paid', failer.id)]).toEqual([2, 1, 1]);
    for (const type of ['test_helpers.test_clock.advancing', 'test_helpers.test_clock.ready']) expect(b.events().filter((e) => e.type === type)).toHaveLength(1);

    // The clock goes on from where it was: the scheduled retry runs (and fails again) three days after the renewal.
    await t.testHelpers.testClocks.advance(clock.id, { frozen_time: RENEWAL + 4 * DAY });
    const retried = (await t.invoices.list({ customer: failer.id })).data;
    expect(retried).toHaveLength(2);
    expect(retried[0]).toMatchObject({ id: before.invoices[1][0].id, status: 'open', attempt_count: 2, next_payment_attempt: RENEWAL + 8 * DAY });
    expect(b.events().filter((e) => e.type === 'invoice.payment_failed').map((e) => e.created)).toEqual([RENEWAL, RENEWAL + 3 * DAY]);
    expect((await t.invoices.list({ customer: payer.id })).data).toHaveLength(2);
    expect(await t.testHelpers.testClocks.retrieve(clock.id)).toMatchObject({ status: 'ready', frozen_time: RENEWAL + 4 * DAY });
  });

  it('starts from a journal whose last record was cut short, losing only that record', async () => {
    const file = path.join(dir, 'state.json');
    const a = await start(file);
    const s = sdk(a);
    const c1 = await s.customers.create({ email: 'one@x.io' });
    const c2 = await s.customers.create({ email: 'two@x.io' });
    const copy = crashCopy(file, path.join(dir, 'b'));
    const journal = fs.readFileSync(`${copy}.journal`);
    fs.writeFileSync(`${copy}.journal`, journal.subarray(0, journal.length - 10));
    const logs: string[] = [];
    const b = await start(copy, logs);
    expect(logs.join('\n')).toMatch(/cut short/);
    const ids = (await sdk(b).customers.list()).data.map((c) => c.id);
    expect(ids).toContain(c1.id);
    expect(ids).not.toContain(c2.id);
    // New requests after the recovery are journaled and replayed as usual.
    const c3 = await sdk(b).customers.create({ email: 'three@x.io' });
    const again = await start(crashCopy(copy, path.join(dir, 'c')));
    expect((await sdk(again).customers.list()).data.map((c) => c.id).sort()).toEqual([c1.id, c3.id].sort());
  });

  it('replays nothing twice when the crash came after a save but before the journal was emptied', async () => {
    const file = path.join(dir, 'state.json');
    const a = await start(file);
    const s = sdk(a);
    await s.billing.meters.create({ display_name: 'Calls', event_name: 'calls', default_aggregation: { formula: 'sum' } });
    const cus = await s.customers.create({ email: 'x@x.io' });
    // Without an idempotency key (the SDK sends one), a replay of the same request would count again.
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${a.url}/v1/billing/meter_events`, {
        method: 'POST',
        headers: { authorization: 'Bearer sk_test_journal', 'content-type': 'application/x-www-form-urlencoded' },
        body: `event_name=calls&payload[stripe_customer_id]=${cus.id}`,
      });
      expect(res.status).toBe(200);
    }
    const journal = fs.readFileSync(`${file}.journal`);
    expect(journal.length).toBeGreaterThan(0);
    await a.close();
    running.splice(0);
    // The state file of the save, with the journal it had not emptied yet.
    fs.writeFileSync(`${file}.journal`, journal);
    const b = await start(file);
    expect(b.meterEventCount()).toBe(10);
    // Replayed twice, the events would count as received twice (and as duplicates).
    expect(b.meterEventStats()).toMatchObject({ total_received: 10, duplicates: 0 });
    expect((await sdk(b).customers.list()).data).toHaveLength(1);
  });
});
