import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { startEmulator, type RunningEmulator } from '../../src/emulator';
import { sdkFor } from './helpers';

/**
 * The emulator keeps accepted meter events as per-second usage and an identifier log rather
 * than one object per event: summaries, dedupe and restarts must behave as with every event kept.
 */

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'emu-meters-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function start(stateFile?: string): Promise<{ emu: RunningEmulator; stripe: Stripe; logs: string[] }> {
  const logs: string[] = [];
  const emu = await startEmulator({ port: 0, stateFile, logger: (l) => logs.push(l) });
  return { emu, stripe: sdkFor(emu), logs };
}

interface StreamEvent {
  event_name: string;
  identifier: string;
  payload: Record<string, string>;
  timestamp: string;
}

async function stream(emu: RunningEmulator, stripe: Stripe, events: StreamEvent[]): Promise<void> {
  const session = await stripe.v2.billing.meterEventSession.create();
  const client = sdkFor(emu, session.authentication_token);
  for (let i = 0; i < events.length; i += 100) await client.v2.billing.meterEventStream.create({ events: events.slice(i, i + 100) });
}

/**
 * A state file saved by this version with one sum meter on `eventName` and one customer, read
 * back for a test to rewrite in an older format; `at` is two minutes before the save.
 */
async function savedState(file: string, eventName: string): Promise<{ state: any; meter: string; customer: string; at: number }> {
  const made = await start(file);
  const meter = await made.stripe.billing.meters.create({ display_name: eventName, event_name: eventName, default_aggregation: { formula: 'sum' } });
  const customer = (await made.stripe.customers.create({ email: `${eventName}@x.io` })).id;
  await made.emu.close();
  return { state: JSON.parse(fs.readFileSync(file, 'utf8')), meter: meter.id, customer, at: made.emu.now() - 120 };
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

async function summary(stripe: Stripe, meter: string, customer: string, start: number, end: number): Promise<number> {
  const page = await stripe.billing.meters.listEventSummaries(meter, { customer, start_time: start, end_time: end });
  return page.data.reduce((a, s) => a + s.aggregated_value, 0);
}

test('summaries per meter, customer and period: sum, count and last, duplicates not counted', async () => {
  const { emu, stripe } = await start();
  try {
    const sum = await stripe.billing.meters.create({ display_name: 'Sum', event_name: 'st_sum', default_aggregation: { formula: 'sum' } });
    const count = await stripe.billing.meters.create({ display_name: 'Count', event_name: 'st_count', default_aggregation: { formula: 'count' } });
    const last = await stripe.billing.meters.create({ display_name: 'Last', event_name: 'st_last', default_aggregation: { formula: 'last' } });
    const a = (await stripe.customers.create({ email: 'a@x.io' })).id;
    const b = (await stripe.customers.create({ email: 'b@x.io' })).id;
    const hour = Math.floor(emu.now() / 3600) * 3600 - 7200;
    const ev = (name: string, id: string, customer: string, value: string, at: number): StreamEvent => ({
      event_name: name,
      identifier: id,
      payload: { stripe_customer_id: customer, value },
      timestamp: iso(at),
    });
    await stream(emu, stripe, [
      ev('st_sum', 's1', a, '2', hour + 10),
      ev('st_sum', 's2', a, '3', hour + 10), // same second
      ev('st_sum', 's3', a, '4', hour + 3600 + 5), // next hour
      ev('st_sum', 's4', b, '100', hour + 10), // other customer
      ev('st_sum', 's1', a, '50', hour + 10), // duplicate identifier: dropped
      ev('st_count', 'c1', a, '9', hour + 1),
      ev('st_count', 'c2', a, '9', hour + 1),
      ev('st_count', 'c3', a, '9', hour + 4000),
      ev('st_last', 'l1', a, '7', hour + 20),
      ev('st_last', 'l2', a, '8', hour + 30),
      ev('st_last', 'l3', a, '6', hour + 30), // same second, recorded later: it is the last
      ev('st_last', 'l4', a, '1', hour + 5), // earlier event time, recorded last
    ]);
    await stripe.billing.meterEvents.create({ event_name: 'st_sum', identifier: 's5', payload: { stripe_customer_id: a, value: '0.5' }, timestamp: hour + 3600 + 6 });

    expect(await summary(stripe, sum.id, a, hour, hour + 7200)).toBe(9.5);
    expect(await summary(stripe, sum.id, a, hour, hour + 3600)).toBe(5);
    expect(await summary(stripe, sum.id, a, hour + 11, hour + 7200)).toBe(4.5);
    expect(await summary(stripe, sum.id, b, hour, hour + 7200)).toBe(100);
    const hourly = await stripe.billing.meters.listEventSummaries(sum.id, { customer: a, start_time: hour, end_time: hour + 7200, value_grouping_window: 'hour' });
    expect(hourly.data.map((s) => s.aggregated_value)).toEqual([5, 4.5]);
    expect(await summary(stripe, count.id, a, hour, hour + 7200)).toBe(3);
    expect(await summary(stripe, count.id, a, hour, hour + 3600)).toBe(2);
    expect(await summary(stripe, last.id, a, hour, hour + 3600)).toBe(6);
    expect(await summary(stripe, last.id, a, hour, hour + 30)).toBe(7);
    expect(await summary(stripe, last.id, b, hour, hour + 3600)).toBe(0);

    expect(emu.meterEventCount()).toBe(12);
    expect(emu.meterEventCount('s1')).toBe(1);
    expect(emu.meterEventStats().by_identifier.s1).toEqual({ received: 2, accepted: 1 });
    expect(emu.meterEventStats().duplicates).toBe(1);
  } finally {
    await emu.close();
  }
});

test('thousands of identifiers survive restarts: resent events are dropped, summaries unchanged', async () => {
  const file = path.join(dir, 'many.json');
  const first = await start(file);
  const meter = await first.stripe.billing.meters.create({ display_name: 'Many', event_name: 'many', default_aggregation: { formula: 'sum' } });
  const customer = (await first.stripe.customers.create({ email: 'many@x.io' })).id;
  const at = first.emu.now() - 60;
  const start0 = at - 3600;
  // More than two chunks of the state file's acceptance log, and an open chunk.
  const events = Array.from({ length: 4_550 }, (_, i) => ({
    event_name: 'many',
    identifier: `many-${i}`,
    payload: { stripe_customer_id: customer, value: '2' },
    timestamp: iso(at - (i % 7)),
  }));
  await stream(first.emu, first.stripe, events);
  expect(await summary(first.stripe, meter.id, customer, start0, at + 60)).toBe(9_100);
  await first.emu.close();

  const second = await start(file);
  try {
    expect(second.logs.filter((l) => /warning/i.test(l))).toEqual([]);
    expect(second.emu.meterEventCount()).toBe(4_550);
    expect(await summary(second.stripe, meter.id, customer, start0, at + 60)).toBe(9_100);
    // The forwarder resending after a crash: every identifier is known, nothing is counted twice.
    await stream(second.emu, second.stripe, [events[0], events[2_500], events[4_549]]);
    expect(second.emu.meterEventCount()).toBe(4_550);
    expect(second.emu.meterEventStats().by_identifier['many-2500']).toEqual({ received: 2, accepted: 1 });
    await stream(second.emu, second.stripe, [{ ...events[0], identifier: 'after-restart' }]);
    expect(await summary(second.stripe, meter.id, customer, start0, at + 60)).toBe(9_102);
  } finally {
    await second.emu.close();
  }

  const third = await start(file);
  try {
    expect(third.emu.meterEventCount()).toBe(4_551);
    expect(third.emu.meterEventCount('after-restart')).toBe(1);
    expect(third.emu.meterEventStats().by_identifier['many-4549']).toEqual({ received: 2, accepted: 1 });
    const dup = await third.stripe.billing.meterEvents
      .create({ event_name: 'many', identifier: 'many-1234', payload: { stripe_customer_id: customer, value: '2' } })
      .catch((e) => e);
    expect(dup).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(await summary(third.stripe, meter.id, customer, start0, at + 60)).toBe(9_102);
  } finally {
    await third.emu.close();
  }
});

test('a version 1 state file (one object per meter event) is read', async () => {
  const file = path.join(dir, 'v1.json');
  const { state, meter, customer, at } = await savedState(file, 'old_calls');
  delete state.meterAcceptances;
  state.version = 1;
  state.meters = {
    seen: [['old-1', at], ['old-2', at], ['old-3', at]],
    received: [['old-1', 2], ['old-2', 1], ['old-3', 1]],
    accepted: [['old-1', 1], ['old-2', 1], ['old-3', 1]],
    byName: [['old_calls', [
      { customer, value: 4, timestamp: at },
      { customer, value: 5, timestamp: at },
      { customer, value: 6, timestamp: at - 30 },
    ]]],
    sessions: [],
    totalAccepted: 3,
    totalReceived: 4,
    duplicates: 1,
  };
  fs.writeFileSync(file, JSON.stringify(state), { mode: 0o600 });

  const { emu, stripe, logs } = await start(file);
  try {
    expect(logs.filter((l) => /warning/i.test(l))).toEqual([]);
    expect(emu.meterEventCount()).toBe(3);
    expect(emu.meterEventStats().by_identifier['old-1']).toEqual({ received: 2, accepted: 1 });
    expect(await summary(stripe, meter, customer, at - 3600, at + 60)).toBe(15);
    await stream(emu, stripe, [{ event_name: 'old_calls', identifier: 'old-2', payload: { stripe_customer_id: customer, value: '9' }, timestamp: iso(at) }]);
    expect(emu.meterEventCount('old-2')).toBe(1);
    expect(await summary(stripe, meter, customer, at - 3600, at + 60)).toBe(15);
  } finally {
    await emu.close();
  }
  // Saved again in the current format, the identifiers in their own file.
  expect(JSON.parse(fs.readFileSync(file, 'utf8')).version).toBe(3);
  expect(fs.statSync(`${file}.identifiers`).mode & 0o777).toBe(0o600);
  const again = await start(file);
  try {
    expect(again.emu.meterEventStats().by_identifier['old-2']).toEqual({ received: 2, accepted: 1 });
    expect(again.emu.meterEventCount()).toBe(3);
  } finally {
    await again.emu.close();
  }
});

test('a version 2 state file (identifiers as an acceptance log inside it) is read', async () => {
  const file = path.join(dir, 'v2.json');
  const { state, meter, customer, at } = await savedState(file, 'v2_calls');
  state.version = 2;
  delete state.meters.identifierBytes;
  state.meters.usage = [['v2_calls', customer, at, 7, 2, 3]];
  state.meters.totalAccepted = 2;
  state.meters.totalReceived = 2;
  state.meterAcceptances = [['v2-a', at, 'v2-b', at]];
  fs.writeFileSync(file, JSON.stringify(state), { mode: 0o600 });
  fs.rmSync(`${file}.identifiers`, { force: true });

  const { emu, stripe, logs } = await start(file);
  try {
    expect(logs.filter((l) => /warning/i.test(l))).toEqual([]);
    expect(emu.meterEventCount('v2-b')).toBe(1);
    await stream(emu, stripe, [{ event_name: 'v2_calls', identifier: 'v2-b', payload: { stripe_customer_id: customer, value: '9' }, timestamp: iso(at) }]);
    expect(emu.meterEventCount()).toBe(2);
    expect(await summary(stripe, meter, customer, at - 3600, at + 60)).toBe(7);
  } finally {
    await emu.close();
  }
});

test('reset forgets the saved identifiers too', async () => {
  const file = path.join(dir, 'reset.json');
  const a = await start(file);
  await a.stripe.billing.meters.create({ display_name: 'R', event_name: 'r_calls', default_aggregation: { formula: 'count' } });
  const customer = (await a.stripe.customers.create({ email: 'r@x.io' })).id;
  const event = { event_name: 'r_calls', identifier: 'r-1', payload: { stripe_customer_id: customer }, timestamp: iso(a.emu.now()) };
  await stream(a.emu, a.stripe, [event]);
  a.emu.reset();
  await a.stripe.billing.meters.create({ display_name: 'R', event_name: 'r_calls', default_aggregation: { formula: 'count' } });
  await stream(a.emu, a.stripe, [{ ...event, identifier: 'r-2' }]);
  await a.emu.close();

  const b = await start(file);
  try {
    expect(b.emu.meterEventCount()).toBe(1);
    expect(b.emu.meterEventCount('r-1')).toBe(0);
    expect(b.emu.meterEventCount('r-2')).toBe(1);
  } finally {
    await b.emu.close();
  }
});
