import type { CatalogDefinition } from '../../src/billing/catalog/catalog-file';
import { randomUUID } from 'node:crypto';
import { UsageLimitRepository } from '../../src/billing/usage/usage-limit.repository';
import { rawQuery } from '../../src/db/raw-query';
import { CatalogSyncService } from '../../src/billing/catalog/catalog-sync.service';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id subscriptionId meter quantity idempotencyKey } }`;
const BATCH = `mutation($input: RecordUsageBatchInput!) {
  recordUsageBatch(input: $input) { recorded replayed failed results { index status record { id quantity } error { code } } } }`;
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status currentPeriodEnd } } }`;
const LIMITS = `{ viewer { limits { subscriptionId meter limit used remaining resetsAt kind overLimit } } }`;

/**
 * Usage limits over HTTP against PostgreSQL and the Stripe emulator, with a catalog whose Pro
 * plan allows 100 API calls a period (hard) and whose Scale plan allows 10 (soft).
 */
describe('usage limits (HTTP, PostgreSQL, the Stripe emulator)', () => {
  let server: TestServer;
  let catalog: CatalogDefinition;

  async function start(headers: Record<string, string>, plan = 'pro'): Promise<{ id: string; currentPeriodEnd: string }> {
    const res = await server.gql(START, { input: { plan, trialDays: 14 } }, headers);
    expect(res.errors).toBeUndefined();
    return res.data.startSubscription.subscription;
  }
  const record = (headers: Record<string, string>, input: Record<string, unknown>) => server.gql(RECORD, { input }, headers);
  async function limits(headers: Record<string, string>) {
    const res = await server.gql(LIMITS, {}, headers);
    expect(res.errors).toBeUndefined();
    return res.data.viewer.limits;
  }
  async function ledgerTotal(subscriptionId: string): Promise<number> {
    const [row] = await server.orm.em.fork().getConnection().execute(`select coalesce(sum(quantity), 0)::float8 as total from usage_events where subscription_id = ?`, [subscriptionId]);
    return Number(row.total);
  }

  beforeAll(async () => {
    server = await startTestServer({ RATE_LIMIT_MUTATIONS_PER_MINUTE: '0', RATE_LIMIT_USAGE_PER_MINUTE: '0', USAGE_FORWARDER_ENABLED: 'false' }, {
      catalog: (c) => {
        c.products.find((p) => p.code === 'pro')!.limits = [{ meter: 'api_calls', limit: 100, period: 'billing_period', kind: 'hard' }];
        c.products.push({
          code: 'scale',
          name: 'Scale',
          prices: [
            { lookupKey: 'scale_monthly', currency: 'usd', unitAmount: 29900, interval: 'month' },
            { lookupKey: 'scale_api_calls', currency: 'usd', unitAmount: 1, interval: 'month', usageType: 'metered', meter: 'api_calls' },
          ],
          features: [],
          limits: [{ meter: 'api_calls', limit: 10, period: 'billing_period', kind: 'soft' }],
        });
        catalog = structuredClone(c);
      },
    });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('never lets 50 concurrent calls at the edge overshoot a hard limit, and refuses the rest with the limit, usage and reset time', async () => {
    const alice = await authHeader('limits-alice');
    const subscription = await start(alice);
    const first = await record(alice, { subscriptionId: subscription.id, quantity: 90, idempotencyKey: 'alice-first' });
    expect(first.errors).toBeUndefined();

    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => record(alice, { meter: 'api_calls', quantity: 3, idempotencyKey: `alice-${i}` })));
    const accepted = answers.filter((a) => !a.errors);
    const refused = answers.filter((a) => a.errors);
    expect(accepted).toHaveLength(Math.floor(10 / 3));
    for (const a of refused) {
      expect(a.errors![0].extensions).toMatchObject({ code: 'USAGE_LIMIT_EXCEEDED', limit: 100, resetsAt: new Date(subscription.currentPeriodEnd).toISOString() });
      expect(a.errors![0].extensions!.used).toBeGreaterThan(97);
    }
    expect(await ledgerTotal(subscription.id)).toBe(99);
    expect(await limits(alice)).toEqual([
      { subscriptionId: subscription.id, meter: 'api_calls', limit: 100, used: 99, remaining: 1, resetsAt: subscription.currentPeriodEnd, kind: 'hard', overLimit: false },
    ]);

    // A retry of an accepted event is answered with its first record, limit reached or not.
    const replay = await record(alice, { subscriptionId: subscription.id, quantity: 90, idempotencyKey: 'alice-first' });
    expect(replay.errors).toBeUndefined();
    expect(replay.data.recordUsage.id).toBe(first.data.recordUsage.id);
    const again = await server.gql(BATCH, { input: { events: [{ subscriptionId: subscription.id, quantity: 90, idempotencyKey: 'alice-first' }] } }, alice);
    expect(again.errors).toBeUndefined();
    expect(again.data.recordUsageBatch.results[0]).toMatchObject({ status: 'REPLAYED', record: { id: first.data.recordUsage.id } });
    expect(await ledgerTotal(subscription.id)).toBe(99);
  });

  it('answers concurrent single events of one customer under a hard limit each as if sent alone: repeats replayed, a bad one refused on its own', async () => {
    const fay = await authHeader('limits-fay');
    const subscription = await start(fay);
    // A meter her plan does not have: refused on its own, on the same path as her good events.
    const alone = await record(fay, { subscriptionId: subscription.id, meter: 'no_such_meter', quantity: 1, idempotencyKey: 'fay-alone' });
    const refusal = alone.errors![0].extensions!.code;
    // 10 keys sent twice each, 5 fresh keys, and 5 events on a meter she does not have, all at
    // once, the bad ones spread among the others so that they share groups with them.
    const good = [
      ...Array.from({ length: 20 }, (_, i) => ({ subscriptionId: subscription.id, quantity: 2, idempotencyKey: `fay-${i % 10}` })),
      ...Array.from({ length: 5 }, (_, i) => ({ subscriptionId: subscription.id, quantity: 1, idempotencyKey: `fay-fresh-${i}` })),
    ];
    const inputs: { input: Record<string, unknown>; bad: boolean }[] = [];
    good.forEach((input, i) => {
      inputs.push({ input, bad: false });
      if (i % 5 === 2) inputs.push({ input: { subscriptionId: subscription.id, meter: 'no_such_meter', quantity: 1, idempotencyKey: `fay-bad-${i}` }, bad: true });
    });
    const answered = await Promise.all(inputs.map(async ({ input, bad }) => ({ input, bad, answer: await record(fay, input) })));
    for (const { bad, answer } of answered.filter((a) => a.bad)) {
      expect(bad).toBe(true);
      expect(answer.errors![0].extensions!.code).toBe(refusal);
    }
    const answers = answered.filter((a) => !a.bad).map((a) => a.answer);
    answers.forEach((a) => expect(a.errors).toBeUndefined());
    for (let i = 0; i < 10; i++) expect(answers[i + 10].data.recordUsage.id).toBe(answers[i].data.recordUsage.id);
    expect(new Set(answers.map((a) => a.data.recordUsage.id)).size).toBe(15);
    expect(await ledgerTotal(subscription.id)).toBe(25);
    expect((await limits(fay))[0]).toMatchObject({ used: 25, remaining: 75 });
  });

  it('never overshoots a hard limit when writers on separate connections (as separate instances are) race at the edge', async () => {
    const gus = await authHeader('limits-gus');
    const subscription = await start(gus);
    const [row] = await server.orm.em.fork().getConnection().execute(`select customer_id, current_period_start from subscriptions where id = ?`, [subscription.id]);
    const repository = new UsageLimitRepository(server.orm.em.fork());
    const periodStart = new Date(row.current_period_start);
    const writes = Array.from({ length: 40 }, (_, i) =>
      repository.insertUnderLimit(row.customer_id, subscription.id, 'api_calls', periodStart, 100, [
        { id: randomUUID(), customerId: row.customer_id, subscriptionId: subscription.id, meter: 'api_calls', quantity: 7, occurredAt: new Date(), idempotencyKey: `gus-${i}`, requestHash: `h${i}` },
      ]),
    );
    const outcomes = await Promise.all(writes);
    expect(outcomes.filter((o) => o.inserted.size === 1)).toHaveLength(14);
    for (const o of outcomes.filter((o) => o.refused.size === 1)) expect([...o.refused.values()][0]).toBe(98);
    expect(await ledgerTotal(subscription.id)).toBe(98);
  });

  it("counts a period's usage exactly: what is dated from its start on, wherever in the hour it starts, less what Stripe refused", async () => {
    const hal = await authHeader('limits-hal');
    const subscription = await start(hal);
    const db = server.orm.em.fork().getConnection();
    const [{ customer_id: customerId }] = await db.execute(`select customer_id from subscriptions where id = ?`, [subscription.id]);
    // Events spread over three UTC hours around a time 20 minutes into the middle one, some refused by Stripe.
    const hour = Date.UTC(2026, 10, 3, 10);
    const events = Array.from({ length: 60 }, (_, i) => ({
      at: new Date(hour - 3600_000 + i * 180_000 + 7_000),
      quantity: (i % 5) + 1,
      state: i % 7 === 0 ? 'failed' : 'sent',
    }));
    await rawQuery(
      server.orm,
      `insert into usage_events (id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, state, attempts, next_attempt_at, created_at)
       select gen_random_uuid(), $1, $2, 'api_calls', q, t, 'hal-' || n, 'h', s, 0, now(), now()
         from unnest($3::float8[], $4::timestamptz[], $5::text[]) with ordinality as x(q, t, s, n)`,
      [customerId, subscription.id, events.map((e) => e.quantity), events.map((e) => e.at), events.map((e) => e.state)],
    );
    for (const since of [hour - 3600_000, hour, hour + 20 * 60_000, hour + 20 * 60_000 + 7_000, hour + 3600_000 - 1]) {
      const expected = events.filter((e) => e.at.getTime() >= since && e.state !== 'failed').reduce((a, e) => a + e.quantity, 0);
      const [{ used }] = await rawQuery<{ used: number }>(server.orm, `select usage_used($1, 'api_calls', $2) as used`, [subscription.id, new Date(since)]);
      expect({ since: new Date(since).toISOString(), used: Number(used) }).toEqual({ since: new Date(since).toISOString(), used: expected });
    }
  });

  it('records the events of a batch that fit and fails each one over the hard limit', async () => {
    const bob = await authHeader('limits-bob');
    const subscription = await start(bob);
    const events = [50, 40, 20, 10, 5, 40].map((quantity, i) => ({ subscriptionId: subscription.id, quantity, idempotencyKey: `bob-${i}` }));
    events.push({ ...events[1] });
    const res = await server.gql(BATCH, { input: { events } }, bob);
    expect(res.errors).toBeUndefined();
    const payload = res.data.recordUsageBatch;
    expect(payload.results.map((r: { status: string; error: { code: string } | null }) => (r.error ? r.error.code : r.status))).toEqual([
      'RECORDED',
      'RECORDED',
      'USAGE_LIMIT_EXCEEDED',
      'RECORDED',
      'USAGE_LIMIT_EXCEEDED',
      'USAGE_LIMIT_EXCEEDED',
      'REPLAYED',
    ]);
    expect(payload).toMatchObject({ recorded: 3, replayed: 1, failed: 3 });
    expect(await ledgerTotal(subscription.id)).toBe(100);
  });

  it('records usage beyond a soft limit and reports it as over the limit', async () => {
    const carol = await authHeader('limits-carol');
    const subscription = await start(carol, 'scale');
    for (const quantity of [8, 5]) expect((await record(carol, { meter: 'api_calls', quantity })).errors).toBeUndefined();
    expect(await ledgerTotal(subscription.id)).toBe(13);
    expect(await limits(carol)).toEqual([
      { subscriptionId: subscription.id, meter: 'api_calls', limit: 10, used: 13, remaining: 0, resetsAt: subscription.currentPeriodEnd, kind: 'soft', overLimit: true },
    ]);
  });

  it("shows each customer only its own limits, and applies a plan's new limit at once", async () => {
    const dan = await authHeader('limits-dan');
    const erin = await authHeader('limits-erin');
    expect(await limits(dan)).toEqual([]);
    const danSub = await start(dan);
    const erinSub = await start(erin);
    expect((await record(erin, { subscriptionId: erinSub.id, quantity: 100 })).errors).toBeUndefined();
    expect((await limits(dan)).map((l: { subscriptionId: string; used: number }) => [l.subscriptionId, l.used])).toEqual([[danSub.id, 0]]);
    expect((await limits(erin)).map((l: { subscriptionId: string; used: number }) => [l.subscriptionId, l.used])).toEqual([[erinSub.id, 100]]);
    expect((await record(erin, { subscriptionId: erinSub.id, quantity: 1 })).errors![0].extensions!.code).toBe('USAGE_LIMIT_EXCEEDED');

    const raised = structuredClone(catalog);
    raised.products.find((p) => p.code === 'pro')!.limits[0].limit = 150;
    const synced = await new CatalogSyncService(server.gateway!, server.orm.em.fork()).sync(raised);
    expect(synced.changes.map((c) => `${c.where} ${c.action} ${c.object} ${c.key} ${c.detail}`)).toEqual(['database update plan limit pro/api_calls limit → 150']);
    expect((await record(erin, { subscriptionId: erinSub.id, quantity: 1 })).errors).toBeUndefined();
    expect((await limits(erin))[0]).toMatchObject({ limit: 150, used: 101, remaining: 49 });
  });
});
