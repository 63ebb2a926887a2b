import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { freePort, ready, startTs, stopProcess } from '../helpers/processes';

/*
 * The emulator's own process (`npm run emulator -- --state-file ...`) killed with SIGKILL while
 * meter events and objects are being acknowledged, well inside the interval between two saves of
 * its state file, then started again on the same files: everything it answered 2xx is there.
 */

const KEY = 'sk_test_tollgate_kill_emulator';
const CUSTOMERS = 60;
const V1_EVENTS = 600;
const STREAM_BATCHES = 20;

let dir: string;
const children = new Set<ChildProcess>();

/** Starts the emulator as `npm run emulator` does (on `port`, else a free one) and waits until it listens. */
async function startEmulatorProcess(stateFile: string, extraArgs: string[] = [], port?: number): Promise<{ child: ChildProcess; port: number }> {
  port ??= await freePort();
  const { child } = ready(
    await startTs('src/emulator/cli.ts', ['--port', String(port), '--state-file', stateFile, ...extraArgs], { ready: /Stripe emulator ready/, timeoutMs: 30_000, tracked: children }),
  );
  return { child, port };
}

function sdk(port: number, key = KEY): Stripe {
  return new Stripe(key, { host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0 });
}

async function meterStats(port: number): Promise<{ total_accepted: number; by_identifier: Record<string, { accepted: number }> }> {
  const res = await fetch(`http://127.0.0.1:${port}/_emulator/meter-events`);
  return (await res.json()) as any;
}

/** Runs `worker` over `items` with `concurrency` requests in flight. */
async function pool<T>(items: T[], concurrency: number, worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await worker(items[next++]);
  }));
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-kill-emulator-'));
});

afterAll(async () => {
  for (const child of children) await stopProcess(child, 'SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('fault matrix: the emulator process killed right after acknowledging', () => {
  it('keeps every acknowledged object and meter event, and an idempotent retry after the restart creates nothing new', async () => {
    const stateFile = path.join(dir, 'stripe-emulator.json');
    const first = await startEmulatorProcess(stateFile);
    const stripe = sdk(first.port);
    const meter = await stripe.billing.meters.create({ display_name: 'Calls', event_name: 'calls', default_aggregation: { formula: 'sum' } });
    const payer = await stripe.customers.create({ email: 'payer@example.com' });

    const customers = new Map<number, string>();
    const acknowledged = new Set<string>();
    const createCustomer = async (i: number) => {
      const c = await stripe.customers.create({ email: `kill-${i}@example.com` }, { idempotencyKey: `kill-customer-${i}` });
      customers.set(i, c.id);
    };
    const session = await stripe.v2.billing.meterEventSession.create();
    const stream = sdk(first.port, session.authentication_token);
    // Objects and both kinds of meter events at once, then the last customers right before the kill.
    await Promise.all([
      pool(Array.from({ length: CUSTOMERS - 10 }, (_, i) => i), 4, createCustomer),
      pool(Array.from({ length: V1_EVENTS }, (_, i) => `v1-${i}`), 16, async (identifier) => {
        await stripe.billing.meterEvents.create({ event_name: 'calls', identifier, payload: { stripe_customer_id: payer.id, value: '1' } });
        acknowledged.add(identifier);
      }),
      pool(Array.from({ length: STREAM_BATCHES }, (_, b) => b), 4, async (b) => {
        const events = Array.from({ length: 100 }, (_, i) => ({ event_name: 'calls', identifier: `v2-${b}-${i}`, payload: { stripe_customer_id: payer.id, value: '1' } }));
        await stream.v2.billing.meterEventStream.create({ events });
        for (const e of events) acknowledged.add(e.identifier);
      }),
    ]);
    await pool(Array.from({ length: 10 }, (_, i) => CUSTOMERS - 10 + i), 10, createCustomer);
    // Killed at once: the state file is saved at most every 200 ms, so the last requests are only in the journal.
    await stopProcess(first.child, 'SIGKILL');
    expect(first.child.signalCode).toBe('SIGKILL');
    expect(acknowledged.size).toBe(V1_EVENTS + STREAM_BATCHES * 100);

    const second = await startEmulatorProcess(stateFile);
    const again = sdk(second.port);
    const stats = await meterStats(second.port);
    const missing = [...acknowledged].filter((id) => !stats.by_identifier[id]);
    expect(missing).toEqual([]);
    expect(stats.total_accepted).toBe(acknowledged.size);
    expect(Object.values(stats.by_identifier).every((s) => s.accepted === 1)).toBe(true);
    const start = Math.floor(Date.now() / 1000) - 3600;
    const summary = await again.billing.meters.listEventSummaries(meter.id, { customer: payer.id, start_time: start, end_time: start + 7200 });
    expect(summary.data[0].aggregated_value).toBe(acknowledged.size);

    const listed = await again.customers.list({ limit: 100 });
    expect(listed.data.map((c) => c.id).sort()).toEqual([payer.id, ...customers.values()].sort());
    // The same requests again, as a client retrying after a lost answer would: the first answers, no duplicates.
    for (const [i, id] of customers) {
      const retried = await again.customers.create({ email: `kill-${i}@example.com` }, { idempotencyKey: `kill-customer-${i}` });
      expect(retried.id).toBe(id);
    }
    await expect(again.billing.meterEvents.create({ event_name: 'calls', identifier: 'v1-0', payload: { stripe_customer_id: payer.id, value: '1' } })).rejects.toThrow(
      /already exists/,
    );
    expect((await again.customers.list({ limit: 100 })).data).toHaveLength(CUSTOMERS + 1);
    expect((await meterStats(second.port)).total_accepted).toBe(acknowledged.size);

    await stopProcess(second.child, 'SIGTERM');
    expect(second.child.exitCode).toBe(0);
  }, 120_000);

  it('brings back a test clock advance killed right after its answer: renewal, failed payment, retry schedule and events once each; the clock goes on', async () => {
    const DAY = 86400;
    const T0 = Date.UTC(2030, 0, 15, 12) / 1000;
    const RENEWAL = Date.UTC(2030, 1, 15, 12) / 1000;
    const stateFile = path.join(dir, 'clock-emulator.json');
    // A custom retry schedule from the command line: retries 2 and 4 days after the previous attempt.
    // The state file is saved a minute after a change: the advance stays in the journal only
    // until the kill, however slow the machine.
    const args = ['--dunning-retry-days', '2,4', '--dunning-after-last', 'unpaid', '--save-delay-ms', '60000'];
    const first = await startEmulatorProcess(stateFile, args);
    const stripe = sdk(first.port);
    const product = await stripe.products.create({ name: 'Pro' });
    const price = await stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 1500, recurring: { interval: 'month' } });
    const clock = await stripe.testHelpers.testClocks.create({ frozen_time: T0 });
    const card = { test_clock: clock.id, payment_method: 'pm_card_visa', invoice_settings: { default_payment_method: 'pm_card_visa' } };
    const payer = await stripe.customers.create({ email: 'payer@example.com', ...card });
    const failer = await stripe.customers.create({ email: 'failer@example.com', ...card });
    const paying = await stripe.subscriptions.create({ customer: payer.id, items: [{ price: price.id }] });
    const failing = await stripe.subscriptions.create({ customer: failer.id, items: [{ price: price.id }] });
    const failerCard = ((await stripe.customers.retrieve(failer.id)) as Stripe.Customer).invoice_settings.default_payment_method as string;
    const behavior = await fetch(`http://127.0.0.1:${first.port}/_emulator/payment_methods/${failerCard}/behavior`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ behavior: 'customer_fail' }),
    });
    expect(behavior.status).toBe(200);
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: RENEWAL + 3600 });
    // What a client sees before the kill (reads change nothing).
    const seen = async (s: Stripe) => {
      const [c, subs, payerInvoices, failerInvoices, events] = await Promise.all([
        s.testHelpers.testClocks.retrieve(clock.id),
        Promise.all([s.subscriptions.retrieve(paying.id), s.subscriptions.retrieve(failing.id)]),
        s.invoices.list({ customer: payer.id }),
        s.invoices.list({ customer: failer.id }),
        s.events.list({ limit: 100 }),
      ]);
      return { clock: c, subs, invoices: [payerInvoices.data, failerInvoices.data], events: events.data };
    };
    const plain = (o: unknown) => JSON.parse(JSON.stringify(o, (k, v) => (k === 'lastResponse' ? undefined : v)));
    const before = plain(await seen(stripe));
    // The advance is in the journal only, not yet in a save of the state file.
    expect(readFileSync(`${stateFile}.journal`, 'utf8')).toContain(`/v1/test_helpers/test_clocks/${clock.id}/advance`);
    await stopProcess(first.child, 'SIGKILL');
    expect(before.clock).toMatchObject({ status: 'ready', frozen_time: RENEWAL + 3600 });
    expect(before.invoices[1][0]).toMatchObject({ billing_reason: 'subscription_cycle', status: 'open', attempt_count: 1, next_payment_attempt: RENEWAL + 2 * DAY });

    // Same port, as local mode restarts: the hosted invoice URLs match too.
    const second = await startEmulatorProcess(stateFile, args, first.port);
    const again = sdk(second.port);
    expect(plain(await seen(again))).toEqual(before);
    const events = before.events as Stripe.Event[];
    const count = (type: string, customer?: string) => events.filter((e) => e.type === type && (!customer || (e.data.object as { customer?: string }).customer === customer)).length;
    expect([count('invoice.paid', payer.id), count('invoice.payment_failed', failer.id), count('test_helpers.test_clock.ready')]).toEqual([2, 1, 1]);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);

    // The next advance runs the scheduled retry (it fails again) and schedules the last one 4 days later.
    await again.testHelpers.testClocks.advance(clock.id, { frozen_time: RENEWAL + 3 * DAY });
    const retried = (await again.invoices.list({ customer: failer.id })).data;
    expect(retried.map((i) => i.id)).toEqual(before.invoices[1].map((i: Stripe.Invoice) => i.id));
    expect(retried[0]).toMatchObject({ status: 'open', attempt_count: 2, next_payment_attempt: RENEWAL + 6 * DAY });
    expect((await again.invoices.list({ customer: payer.id })).data).toHaveLength(2);
    const failures = (await again.events.list({ type: 'invoice.payment_failed' })).data.map((e) => e.created).sort();
    expect(failures).toEqual([RENEWAL, RENEWAL + 2 * DAY]);

    await stopProcess(second.child, 'SIGTERM');
    expect(second.child.exitCode).toBe(0);
  }, 120_000);
});
