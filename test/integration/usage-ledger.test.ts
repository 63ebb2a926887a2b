import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { UsageForwarder } from '../../src/billing/usage/usage-forwarder';
import { createLogger } from '../../src/common/logger';
import { initORM } from '../../src/db/orm';
import { createTestDatabase } from '../helpers/database';
import { authHeader, startTestServer, type GqlResponse, type TestServer } from '../helpers/test-server';

/**
 * The usage ledger over HTTP: recordUsageBatch (per-event answers, one statement, the same rules
 * as recordUsage) and the `usage` summary, which reads the hourly rollup and must always equal
 * the sum of the ledger's rows.
 */

const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id subscriptionId meter quantity occurredAt idempotencyKey } }`;
const BATCH = `mutation($input: RecordUsageBatchInput!) { recordUsageBatch(input: $input) {
  recorded replayed failed
  results { index status record { id subscriptionId meter quantity occurredAt idempotencyKey } error { code message field } } } }`;
const USAGE = `query($subscriptionId: ID, $meter: String, $from: DateTimeISO, $to: DateTimeISO) {
  usage(subscriptionId: $subscriptionId, meter: $meter, from: $from, to: $to) { total pending failed buckets { date total } } }`;
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status } } }`;

const silent = createLogger({ level: 'silent' });
const HOUR = 3600_000;
const DAY = 24 * HOUR;

let server: TestServer;
let forwarder: UsageForwarder;

const sql = <T = any>(query: string, params: unknown[] = []): Promise<T[]> => server.orm.em.fork().getConnection().execute(query, params);

async function customerWithPro(prefix: string): Promise<{ headers: Record<string, string>; subscriptionId: string; customerId: string }> {
  const userId = `${prefix}-${randomUUID()}`;
  const headers = await authHeader(userId);
  const res = await server.gql(START, { input: { plan: 'pro', trialDays: 14 } }, headers);
  expect(res.errors).toBeUndefined();
  const [row] = await sql(`select id from customers where user_id = ?`, [userId]);
  return { headers, subscriptionId: res.data.startSubscription.subscription.id, customerId: row.id };
}

/** The rollup differs from the rows it sums: lists the (subscription, meter, hour) that disagree. */
async function rollupMismatches(): Promise<unknown[]> {
  return sql(`
    with rows as (
      select subscription_id, meter, date_trunc('hour', occurred_at at time zone 'UTC') at time zone 'UTC' as hour, sum(quantity) as quantity, count(*) as events
        from usage_events group by 1, 2, 3)
    select coalesce(r.subscription_id, h.subscription_id) as subscription_id, coalesce(r.hour, h.hour) as hour, r.quantity as rows, h.quantity as rollup
      from rows r
      full join (select * from usage_hourly where events > 0) h on h.subscription_id = r.subscription_id and h.meter = r.meter and h.hour = r.hour
     where r.events is distinct from h.events or abs(coalesce(r.quantity, 0) - coalesce(h.quantity, 0)) > 1e-6`);
}

/** What the summary must say over [from, to), computed from the rows alone. */
async function expectedSummary(subscriptionId: string, from: Date, to: Date) {
  const [totals] = await sql(
    `select coalesce(sum(quantity) filter (where state <> 'failed'), 0)::float8 as total,
            coalesce(sum(quantity) filter (where state = 'pending'), 0)::float8 as pending,
            coalesce(sum(quantity) filter (where state = 'failed'), 0)::float8 as failed
       from usage_events where subscription_id = ? and occurred_at >= ? and occurred_at < ?`,
    [subscriptionId, from, to],
  );
  const days = await sql(
    `select to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD') as day, sum(quantity)::float8 as total
       from usage_events where subscription_id = ? and state <> 'failed' and occurred_at >= ? and occurred_at < ? group by 1`,
    [subscriptionId, from, to],
  );
  return { ...totals, byDay: new Map(days.map((d: any) => [d.day, d.total])) };
}

async function expectSummaryMatchesRows(headers: Record<string, string>, subscriptionId: string, from: Date, to: Date): Promise<void> {
  const res = await server.gql(USAGE, { subscriptionId, from: from.toISOString(), to: to.toISOString() }, headers);
  expect(res.errors).toBeUndefined();
  const summary = res.data.usage;
  const expected = await expectedSummary(subscriptionId, from, to);
  expect(summary.total).toBeCloseTo(expected.total, 6);
  expect(summary.pending).toBeCloseTo(expected.pending, 6);
  expect(summary.failed).toBeCloseTo(expected.failed, 6);
  for (const bucket of summary.buckets) expect(bucket.total).toBeCloseTo(expected.byDay.get(bucket.date) ?? 0, 6);
  expect(summary.buckets.map((b: { date: string }) => b.date).filter((d: string) => expected.byDay.has(d))).toHaveLength(expected.byDay.size);
}

beforeAll(async () => {
  server = await startTestServer({ USAGE_FORWARDER_ENABLED: 'false', RATE_LIMIT_MUTATIONS_PER_MINUTE: '0', RATE_LIMIT_USAGE_PER_MINUTE: '0' });
  forwarder = new UsageForwarder({ orm: server.orm, gateway: server.gateway!, log: silent, baseBackoffMs: 10, maxBackoffMs: 50 });
});
afterAll(() => server.stop());

describe('recordUsageBatch', () => {
  it('refuses a whole batch holding a NUL character (malformed input, checked before anything runs) and writes nothing', async () => {
    const carol = await customerWithPro('ledger-carol');
    const events = [
      { subscriptionId: carol.subscriptionId, quantity: 1, idempotencyKey: 'fine' },
      { subscriptionId: carol.subscriptionId, quantity: 1, idempotencyKey: 'nul\u0000key' },
    ];
    const res = await server.gql(BATCH, { input: { events } }, carol.headers);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await sql(`select 1 from usage_events where customer_id = ?`, [carol.customerId])).toHaveLength(0);
  });

  it('answers each event on its own: recorded, replayed, or a coded error, and writes only the good ones', async () => {
    const alice = await customerWithPro('ledger-alice');
    const other = await customerWithPro('ledger-other');
    const at = new Date(Date.now() - 10 * 60_000).toISOString();
    const single = await server.gql(RECORD, { input: { subscriptionId: alice.subscriptionId, quantity: 5, occurredAt: at, idempotencyKey: 'earlier' } }, alice.headers);
    expect(single.errors).toBeUndefined();

    const events = [
      { subscriptionId: alice.subscriptionId, quantity: 1, occurredAt: at, idempotencyKey: 'a-1' },
      { subscriptionId: alice.subscriptionId, quantity: -1, idempotencyKey: 'bad-quantity' },
      { subscriptionId: alice.subscriptionId, quantity: 5, occurredAt: at, idempotencyKey: 'earlier' },
      { subscriptionId: alice.subscriptionId, quantity: 6, occurredAt: at, idempotencyKey: 'earlier' },
      { meter: 'api_calls', quantity: 2.5 },
      { subscriptionId: other.subscriptionId, quantity: 1 },
      { subscriptionId: alice.subscriptionId, meter: 'no_such_meter', quantity: 1 },
      { subscriptionId: alice.subscriptionId, quantity: 1, occurredAt: at, idempotencyKey: 'a-1' },
      { subscriptionId: alice.subscriptionId, quantity: 9, occurredAt: at, idempotencyKey: 'a-1' },
      { subscriptionId: alice.subscriptionId, quantity: 1, occurredAt: new Date(Date.now() - 40 * DAY).toISOString() },
    ];
    const res = await server.gql(BATCH, { input: { events } }, alice.headers);
    expect(res.errors).toBeUndefined();
    const { results, recorded, replayed, failed } = res.data.recordUsageBatch;
    expect({ recorded, replayed, failed }).toEqual({ recorded: 2, replayed: 2, failed: 6 });
    expect(results.map((r: any) => r.index)).toEqual(events.map((_, i) => i));
    const codes = results.map((r: any) => (r.status === 'FAILED' ? r.error.code : r.status));
    expect(codes).toEqual([
      'RECORDED',
      'BAD_USER_INPUT',
      'REPLAYED',
      'IDEMPOTENCY_CONFLICT',
      'RECORDED',
      'NOT_FOUND',
      'BAD_USER_INPUT',
      'REPLAYED',
      'IDEMPOTENCY_CONFLICT',
      'BAD_USER_INPUT',
    ]);
    expect(results[1].error).toMatchObject({ field: 'quantity' });
    expect(results[2].record.id).toBe(single.data.recordUsage.id);
    expect(results[7].record).toEqual(results[0].record);
    expect(results[4].record).toMatchObject({ subscriptionId: alice.subscriptionId, meter: 'api_calls', quantity: 2.5 });

    const rows = await sql(`select id, quantity, idempotency_key from usage_events where customer_id = ? order by quantity`, [alice.customerId]);
    expect(rows.map((r: any) => r.id).sort()).toEqual([single.data.recordUsage.id, results[0].record.id, results[4].record.id].sort());
    expect(await sql(`select 1 from usage_events where customer_id = ?`, [other.customerId])).toHaveLength(0);
    expect(await rollupMismatches()).toEqual([]);

    // The forwarder sends batch rows like single ones: once each, under the row id.
    await forwarder.drain();
    for (const id of [results[0].record.id, results[4].record.id]) expect(server.emulator!.meterEventCount(id)).toBe(1);
    const states = await sql(`select state from usage_events where customer_id = ?`, [alice.customerId]);
    expect(states.map((r: any) => r.state)).toEqual(['sent', 'sent', 'sent']);
  });

  it('refuses an empty batch, more than 1,000 events and an unauthenticated caller as a whole, writing nothing', async () => {
    const bob = await customerWithPro('ledger-bob');
    const empty = await server.gql(BATCH, { input: { events: [] } }, bob.headers);
    expect(empty.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const tooMany = await server.gql(BATCH, { input: { events: Array.from({ length: 1001 }, () => ({ subscriptionId: bob.subscriptionId, quantity: 1 })) } }, bob.headers);
    expect(tooMany.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const anonymous = await server.gql(BATCH, { input: { events: [{ subscriptionId: bob.subscriptionId, quantity: 1 }] } });
    expect(anonymous.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    expect(await sql(`select 1 from usage_events where customer_id = ?`, [bob.customerId])).toHaveLength(0);

    const full = await server.gql(BATCH, { input: { events: Array.from({ length: 1000 }, (_, i) => ({ subscriptionId: bob.subscriptionId, quantity: i + 1 })) } }, bob.headers);
    expect(full.errors).toBeUndefined();
    expect(full.data.recordUsageBatch.recorded).toBe(1000);
    const [sum] = await sql(`select count(*)::int as n, sum(quantity)::float8 as total from usage_events where customer_id = ?`, [bob.customerId]);
    expect(sum).toEqual({ n: 1000, total: (1000 * 1001) / 2 });
  });

  it('lets an admin record a batch for a customer, and refuses a customerId on an event', async () => {
    const carol = await customerWithPro('ledger-carol');
    const admin = await authHeader(`ledger-admin-${randomUUID()}`, { admin: true });
    const res = await server.gql(
      BATCH,
      { input: { customerId: carol.customerId, events: [{ subscriptionId: carol.subscriptionId, quantity: 4 }, { subscriptionId: carol.subscriptionId, quantity: 1, customerId: randomUUID() }] } },
      admin,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data.recordUsageBatch.results.map((r: any) => r.status)).toEqual(['RECORDED', 'FAILED']);
    expect(res.data.recordUsageBatch.results[1].error.code).toBe('BAD_USER_INPUT');
    const mine = await server.gql(BATCH, { input: { customerId: carol.customerId, events: [{ subscriptionId: carol.subscriptionId, quantity: 1 }] } }, (await customerWithPro('ledger-dan')).headers);
    expect(mine.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  });

  it('answers 10 concurrent copies of one batch with one row per event', async () => {
    const erin = await customerWithPro('ledger-erin');
    const at = new Date(Date.now() - 60_000).toISOString();
    const events = Array.from({ length: 50 }, (_, i) => ({ subscriptionId: erin.subscriptionId, quantity: i + 1, occurredAt: at, idempotencyKey: `burst-${i}` }));
    const answers = await Promise.all(Array.from({ length: 10 }, () => server.gql(BATCH, { input: { events } }, erin.headers)));
    for (const a of answers) expect(a.errors).toBeUndefined();
    expect(answers.reduce((n, a) => n + a.data.recordUsageBatch.recorded, 0)).toBe(50);
    expect(answers.reduce((n, a) => n + a.data.recordUsageBatch.replayed, 0)).toBe(450);
    const ids = new Set(answers.flatMap((a) => a.data.recordUsageBatch.results.map((r: any) => r.record.id)));
    expect(ids.size).toBe(50);
    expect(await sql(`select 1 from usage_events where customer_id = ?`, [erin.customerId])).toHaveLength(50);
    expect(await rollupMismatches()).toEqual([]);
  });

  // Each run starts two subscriptions and makes up to 26 requests: minutes on a busy machine.
  it('gives the same answers and rows as the same events sent one by one to recordUsage', async () => {
    const now = Date.now();
    const event = fc.record({
      quantity: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.double({ min: 0.001, max: 1e6, noNaN: true }), fc.constantFrom(0, -1, 2e9)),
      // Minutes ago; the extremes fall outside what Stripe accepts.
      minutesAgo: fc.option(fc.oneof(fc.integer({ min: 0, max: 35 * 24 * 60 - 10 }), fc.constantFrom(36 * 24 * 60, -60)), { nil: null }),
      key: fc.option(fc.constantFrom('k1', 'k2', 'k3', 'k4', ''), { nil: null }),
      target: fc.constantFrom('subscription', 'meter', 'subscription+meter', 'wrong-meter', 'nothing'),
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(event, { minLength: 1, maxLength: 25 }), async (generated) => {
        run++;
        const single = await customerWithPro(`ledger-single-${run}`);
        const batch = await customerWithPro(`ledger-batch-${run}`);
        const inputFor = (e: (typeof generated)[number], subscriptionId: string) => ({
          quantity: e.quantity,
          ...(e.minutesAgo === null ? {} : { occurredAt: new Date(now - e.minutesAgo * 60_000).toISOString() }),
          ...(e.key === null ? {} : { idempotencyKey: e.key }),
          ...(e.target === 'subscription' || e.target === 'subscription+meter' ? { subscriptionId } : {}),
          ...(e.target === 'meter' || e.target === 'subscription+meter' ? { meter: 'api_calls' } : {}),
          ...(e.target === 'wrong-meter' ? { meter: 'not_a_meter' } : {}),
        });
        const singles: GqlResponse<any>[] = [];
        for (const e of generated) singles.push(await server.gql(RECORD, { input: inputFor(e, single.subscriptionId) }, single.headers));
        const res = await server.gql(BATCH, { input: { events: generated.map((e) => inputFor(e, batch.subscriptionId)) } }, batch.headers);
        expect(res.errors).toBeUndefined();
        const results = res.data.recordUsageBatch.results;
        const firstIdOfKey = new Map<string, string>();
        generated.forEach((e, i) => {
          const one = singles[i];
          const many = results[i];
          if (one.errors) {
            expect(many.status).toBe('FAILED');
            expect(many.error.code).toBe(one.errors[0].extensions?.code);
            expect(many.error.message).toBe(one.errors[0].message);
            return;
          }
          expect(many.status).not.toBe('FAILED');
          const a = one.data.recordUsage;
          const b = many.record;
          expect({ ...b, id: undefined, subscriptionId: undefined, idempotencyKey: undefined, occurredAt: undefined }).toEqual({ ...a, id: undefined, subscriptionId: undefined, idempotencyKey: undefined, occurredAt: undefined });
          if (e.minutesAgo !== null) expect(b.occurredAt).toBe(a.occurredAt);
          if (e.key !== null) {
            expect(b.idempotencyKey).toBe(a.idempotencyKey);
            // A replay answers with the first record of its key, in both paths.
            const first = firstIdOfKey.get(e.key);
            expect(many.status).toBe(first ? 'REPLAYED' : 'RECORDED');
            if (!first) firstIdOfKey.set(e.key, b.id);
            else expect(b.id).toBe(first);
          }
        });
        const rowsOf = (customerId: string) =>
          sql(`select meter, quantity, idempotency_key ~ '^[0-9a-f-]{36}$' as generated, case when idempotency_key ~ '^[0-9a-f-]{36}$' then '' else idempotency_key end as key
                 from usage_events where customer_id = ? order by key, quantity`, [customerId]);
        expect(await rowsOf(batch.customerId)).toEqual(await rowsOf(single.customerId));
      }),
      { numRuns: 15 },
    );
    expect(await rollupMismatches()).toEqual([]);
  }, 180_000);
});

describe('usage summary from the hourly rollup', () => {
  it('equals the sum of the rows, in total and per day, for any window, as rows are recorded, forwarded and fail', async () => {
    const fay = await customerWithPro('ledger-fay');
    const now = Date.now();
    // Events over the last 34 days, several in some hours, some at exact hour and day boundaries.
    const times = [
      ...Array.from({ length: 300 }, (_, i) => now - ((i * 7919) % (34 * 24 * 60)) * 60_000 - (i % 5) * 1000),
      Math.floor(now / DAY) * DAY - DAY,
      Math.floor(now / HOUR) * HOUR - 3 * HOUR,
      Math.floor(now / HOUR) * HOUR - 3 * HOUR - 1,
    ];
    const events = times.map((t, i) => ({ subscriptionId: fay.subscriptionId, quantity: (i % 9) + 0.5, occurredAt: new Date(t).toISOString() }));
    for (let i = 0; i < events.length; i += 100) {
      const res = await server.gql(BATCH, { input: { events: events.slice(i, i + 100) } }, fay.headers);
      expect(res.data.recordUsageBatch.recorded).toBe(events.slice(i, i + 100).length);
    }
    // Some by single calls too (the shared statement of recordUsage).
    for (let i = 0; i < 5; i++) {
      expect((await server.gql(RECORD, { input: { meter: 'api_calls', quantity: 100 + i } }, fay.headers)).errors).toBeUndefined();
    }

    const windows = fc.sample(
      fc.tuple(fc.integer({ min: 0, max: 36 * 24 * 60 }), fc.integer({ min: 1, max: 36 * 24 * 60 })).map(([ago, length]) => {
        const from = new Date(now - ago * 60_000 + 17_000);
        return [from, new Date(from.getTime() + length * 60_000)] as const;
      }),
      { numRuns: 15, seed: 42 },
    );
    windows.push([new Date(Math.floor(now / DAY) * DAY - 10 * DAY), new Date(Math.floor(now / DAY) * DAY + DAY)]);
    windows.push([new Date(Math.floor(now / HOUR) * HOUR - 3 * HOUR), new Date(Math.floor(now / HOUR) * HOUR - 2 * HOUR)]);
    windows.push([new Date(now - 35 * DAY), new Date(now + 60_000)]);
    // Windows that start or end on an event's exact time, within one hour and across hours.
    windows.push([new Date(times[7] - 20 * 60_000), new Date(times[7])]);
    windows.push([new Date(times[7]), new Date(times[7] + 20 * 60_000)]);
    windows.push([new Date(times[11]), new Date(times[23])].sort((a, b) => a.getTime() - b.getTime()) as [Date, Date]);

    for (const [from, to] of windows) await expectSummaryMatchesRows(fay.headers, fay.subscriptionId, from, to);

    // Forward everything, then make a third of the rows fail for good.
    await forwarder.drain();
    for (const [from, to] of windows.slice(-3)) await expectSummaryMatchesRows(fay.headers, fay.subscriptionId, from, to);
    const more = times.slice(0, 90).map((t, i) => ({ subscriptionId: fay.subscriptionId, quantity: 1000 + i, occurredAt: new Date(t + 500).toISOString() }));
    expect((await server.gql(BATCH, { input: { events: more } }, fay.headers)).data.recordUsageBatch.recorded).toBe(90);
    const [stripeCustomer] = await sql(`select stripe_customer_id from customers where id = ?`, [fay.customerId]);
    // A customer Stripe does not know: the forwarder marks its rows failed.
    await sql(`update customers set stripe_customer_id = null where id = ?`, [fay.customerId]);
    await forwarder.drain();
    await sql(`update customers set stripe_customer_id = ? where id = ?`, [stripeCustomer.stripe_customer_id, fay.customerId]);
    const [failed] = await sql(`select count(*)::int as n from usage_events where customer_id = ? and state = 'failed'`, [fay.customerId]);
    expect(failed.n).toBe(90);
    for (const [from, to] of windows) await expectSummaryMatchesRows(fay.headers, fay.subscriptionId, from, to);
    expect(await rollupMismatches()).toEqual([]);
  }, 120_000);

  it('keeps the rollup equal to the rows when rows are deleted', async () => {
    const gus = await customerWithPro('ledger-gus');
    const events = Array.from({ length: 40 }, (_, i) => ({ subscriptionId: gus.subscriptionId, quantity: i + 1, occurredAt: new Date(Date.now() - i * 20 * 60_000).toISOString() }));
    expect((await server.gql(BATCH, { input: { events } }, gus.headers)).data.recordUsageBatch.recorded).toBe(40);
    await sql(`delete from usage_events where customer_id = ? and quantity > 20`, [gus.customerId]);
    expect(await rollupMismatches()).toEqual([]);
    const from = new Date(Date.now() - 20 * HOUR);
    await expectSummaryMatchesRows(gus.headers, gus.subscriptionId, from, new Date(Date.now() + HOUR));
  });
});

describe('the usage rate budget', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startTestServer({ USAGE_FORWARDER_ENABLED: 'false', RATE_LIMIT_MUTATIONS_PER_MINUTE: '5', RATE_LIMIT_USAGE_PER_MINUTE: '100', RATE_LIMIT_STORE: 'memory' });
  });
  afterAll(() => limited.stop());

  it('counts every event of a batch, so batches cannot send more events than single calls may', async () => {
    const headers = await authHeader(`ledger-budget-${randomUUID()}`);
    const started = await limited.gql(START, { input: { plan: 'pro', trialDays: 14 } }, headers);
    const subscriptionId = started.data.startSubscription.subscription.id;
    const batchOf = (n: number) => ({ input: { events: Array.from({ length: n }, () => ({ subscriptionId, quantity: 1 })) } });
    // Ten batches would pass a per-request count of 5 mutations or 100 calls; 60 + 30 events fit in 100, 20 more do not.
    expect((await limited.gql(BATCH, batchOf(60), headers)).data.recordUsageBatch.recorded).toBe(60);
    expect((await limited.gql(BATCH, batchOf(30), headers)).data.recordUsageBatch.recorded).toBe(30);
    const refused = await limited.gql(BATCH, batchOf(20), headers);
    expect(refused.errors?.[0].extensions?.code).toBe('RATE_LIMITED');
    const fragment = await limited.gql(
      `mutation($input: RecordUsageBatchInput!) { ...F } fragment F on Mutation { recordUsageBatch(input: $input) { recorded } }`,
      batchOf(20),
      headers,
    );
    expect(fragment.errors?.[0].extensions?.code).toBe('RATE_LIMITED');
    const [row] = await limited.orm.em.fork().getConnection().execute(`select count(*)::int as n from usage_events where subscription_id = ?`, [subscriptionId]);
    expect(row.n).toBe(90);
  });
});

describe('the rollup migration', () => {
  it('sums the rows recorded before it, and keeps them', async () => {
    const db = await createTestDatabase();
    const orm = await initORM({ url: db.url });
    try {
      // Every migration before the rollup's, then the rollup's alone.
      await orm.getMigrator().up({ to: 'Migration20261207021500' });
      const conn = orm.em.fork().getConnection();
      await conn.execute(`insert into customers (id, user_id, created_at, updated_at) values ('00000000-0000-4000-8000-000000000001', 'u1', now(), now())`);
      await conn.execute(`insert into products (id, code, name, created_at, updated_at) values ('00000000-0000-4000-8000-000000000002', 'pro', 'Pro', now(), now())`);
      await conn.execute(`insert into prices (id, product_id, currency, created_at, updated_at) values ('00000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000002', 'usd', now(), now())`);
      await conn.execute(
        `insert into subscriptions (id, customer_id, price_id, stripe_subscription_id, status, items, created_at, updated_at)
         values ('00000000-0000-4000-8000-000000000004', '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000003', 'sub_1', 'active', '[]', now(), now())`,
      );
      await conn.execute(
        `insert into usage_events (id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, state, next_attempt_at, created_at)
         select gen_random_uuid(), '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000004', 'api_calls', g % 7 + 1,
                now() - g * interval '13 minutes', 'k' || g, 'h', case when g % 3 = 0 then 'sent' else 'pending' end, now(), now()
           from generate_series(1, 500) g`,
      );
      expect(await orm.getMigrator().up({ to: 'Migration20261207021600' })).toHaveLength(1);
      const [rows] = await conn.execute(`select count(*)::int as n, sum(quantity)::float8 as total from usage_events`);
      const [rollup] = await conn.execute(`select sum(events)::int as n, sum(quantity)::float8 as total, count(*)::int as hours from usage_hourly`);
      expect(rows).toEqual({ n: 500, total: expect.any(Number) });
      expect(rollup).toMatchObject({ n: 500, total: rows.total });
      const [perHour] = await conn.execute(
        `select count(*)::int as n from (
           select date_trunc('hour', occurred_at at time zone 'UTC') at time zone 'UTC' as hour, sum(quantity) as q from usage_events group by 1
         ) r full join usage_hourly h on h.hour = r.hour where h.quantity is distinct from r.q`,
      );
      expect(perHour.n).toBe(0);
    } finally {
      await orm.close();
      await db.drop();
    }
  });
});
