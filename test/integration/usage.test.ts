import { UsageForwarder } from '../../src/billing/usage/usage-forwarder';
import { createLogger } from '../../src/common/logger';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id subscriptionId meter quantity occurredAt idempotencyKey } }`;
const USAGE = `query($subscriptionId: ID, $meter: String, $from: DateTimeISO, $to: DateTimeISO) {
  usage(subscriptionId: $subscriptionId, meter: $meter, from: $from, to: $to) { subscriptionId meter from to total pending failed lagSeconds buckets { date total } } }`;
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status } } }`;
const CANCEL = `mutation($id: ID!) { cancelSubscription(id: $id, atPeriodEnd: false) { status } }`;

const silent = createLogger({ level: 'silent' });

async function startPro(server: TestServer, headers: Record<string, string>): Promise<string> {
  const res = await server.gql(START, { input: { plan: 'pro', trialDays: 14 } }, headers);
  expect(res.errors).toBeUndefined();
  return res.data.startSubscription.subscription.id;
}

async function ledger(server: TestServer, where = 'true'): Promise<any[]> {
  return server.orm.em.fork().getConnection().execute(`select * from usage_events where ${where} order by created_at, id`);
}

describe('usage metering (HTTP, PostgreSQL, the Stripe emulator)', () => {
  let server: TestServer;
  let forwarder: UsageForwarder;
  beforeAll(async () => {
    // The in-app forwarder is off here: each test drains explicitly, so what reached Stripe is known.
    server = await startTestServer({ USAGE_FORWARDER_ENABLED: 'false', RATE_LIMIT_MUTATIONS_PER_MINUTE: '0', RATE_LIMIT_USAGE_PER_MINUTE: '0' });
    forwarder = new UsageForwarder({ orm: server.orm, gateway: server.gateway!, log: silent, baseBackoffMs: 10, maxBackoffMs: 50 });
  });
  afterAll(() => server.stop());

  describe('recordUsage', () => {
    it('records usage, returns a generated key, and the forwarder sends it once with the row id as identifier', async () => {
      const alice = await authHeader('usage-alice');
      const subscriptionId = await startPro(server, alice);
      const res = await server.gql(RECORD, { input: { subscriptionId, quantity: 3 } }, alice);
      expect(res.errors).toBeUndefined();
      const record = res.data.recordUsage;
      expect(record).toMatchObject({ subscriptionId, meter: 'api_calls', quantity: 3 });
      expect(record.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
      const [row] = await ledger(server, `id = '${record.id}'`);
      expect(row.state).toBe('pending');
      expect(server.emulator!.meterEventCount(record.id)).toBe(0);

      const round = await forwarder.drain();
      expect(round.sent).toBeGreaterThanOrEqual(1);
      expect(server.emulator!.meterEventCount(record.id)).toBe(1);
      const [after] = await ledger(server, `id = '${record.id}'`);
      expect(after).toMatchObject({ state: 'sent', attempts: 1, last_error: null });
      expect(after.sent_at).not.toBeNull();
    });

    it('picks the only subscription with the meter when only meter is given', async () => {
      const bob = await authHeader('usage-bob');
      const subscriptionId = await startPro(server, bob);
      const res = await server.gql(RECORD, { input: { meter: 'api_calls', quantity: 1.5, idempotencyKey: 'bob-1' } }, bob);
      expect(res.errors).toBeUndefined();
      expect(res.data.recordUsage).toMatchObject({ subscriptionId, meter: 'api_calls', quantity: 1.5, idempotencyKey: 'bob-1' });
    });

    it('answers 20 concurrent identical requests with one row and sends one meter event', async () => {
      const carol = await authHeader('usage-carol');
      const subscriptionId = await startPro(server, carol);
      const input = { subscriptionId, quantity: 7, idempotencyKey: 'carol-burst', occurredAt: new Date(Date.now() - 60_000).toISOString() };
      const answers = await Promise.all(Array.from({ length: 20 }, () => server.gql(RECORD, { input }, carol)));
      for (const a of answers) expect(a.errors).toBeUndefined();
      const ids = new Set(answers.map((a) => a.data.recordUsage.id));
      expect(ids.size).toBe(1);
      const rows = await ledger(server, `idempotency_key = 'carol-burst'`);
      expect(rows).toHaveLength(1);

      await forwarder.drain();
      const [id] = [...ids];
      expect(server.emulator!.meterEventCount(id)).toBe(1);
      expect(server.emulator!.meterEventStats().by_identifier[id]).toEqual({ received: 1, accepted: 1 });
    });

    it('refuses the same key with different input as IDEMPOTENCY_CONFLICT and writes nothing', async () => {
      const dan = await authHeader('usage-dan');
      const subscriptionId = await startPro(server, dan);
      const first = await server.gql(RECORD, { input: { subscriptionId, quantity: 2, idempotencyKey: 'dan-1' } }, dan);
      expect(first.errors).toBeUndefined();
      const same = await server.gql(RECORD, { input: { subscriptionId, quantity: 2, idempotencyKey: 'dan-1' } }, dan);
      expect(same.data.recordUsage).toEqual(first.data.recordUsage);
      const other = await server.gql(RECORD, { input: { subscriptionId, quantity: 3, idempotencyKey: 'dan-1' } }, dan);
      expect(other.errors?.[0].extensions?.code).toBe('IDEMPOTENCY_CONFLICT');
      expect(await ledger(server, `subscription_id = '${subscriptionId}'`)).toHaveLength(1);
    });

    it('refuses bad input with coded errors and writes nothing', async () => {
      const erin = await authHeader('usage-erin');
      const frank = await authHeader('usage-frank');
      const subscriptionId = await startPro(server, erin);
      const starter = (await server.gql(START, { input: { plan: 'starter' } }, frank)).data.startSubscription.subscription.id;
      const frankPro = await startPro(server, await authHeader('usage-frank-2'));
      const before = (await ledger(server)).length;
      const day = 24 * 3600_000;
      const cases: [Record<string, unknown>, Record<string, string>, string][] = [
        [{ subscriptionId: frankPro, quantity: 1 }, erin, 'NOT_FOUND'],
        [{ subscriptionId: starter, quantity: 1 }, frank, 'BAD_USER_INPUT'],
        [{ subscriptionId, meter: 'storage_gb', quantity: 1 }, erin, 'BAD_USER_INPUT'],
        [{ meter: 'api_calls', quantity: 1 }, frank, 'NOT_FOUND'],
        [{ subscriptionId: 'not-a-uuid', quantity: 1 }, erin, 'BAD_USER_INPUT'],
        [{ subscriptionId, quantity: 0 }, erin, 'BAD_USER_INPUT'],
        [{ subscriptionId, quantity: -1 }, erin, 'BAD_USER_INPUT'],
        [{ subscriptionId, quantity: 'NaN' }, erin, 'BAD_USER_INPUT'],
        [{ subscriptionId, quantity: 1e10 }, erin, 'BAD_USER_INPUT'],
        [{ subscriptionId, quantity: 1, occurredAt: new Date(Date.now() - 36 * day).toISOString() }, erin, 'BAD_USER_INPUT'],
        [{ subscriptionId, quantity: 1, occurredAt: new Date(Date.now() + 10 * 60_000).toISOString() }, erin, 'BAD_USER_INPUT'],
        [{ subscriptionId, quantity: 1, idempotencyKey: '' }, erin, 'BAD_USER_INPUT'],
        [{ subscriptionId, quantity: 1, idempotencyKey: 'x'.repeat(201) }, erin, 'BAD_USER_INPUT'],
        [{ quantity: 1 }, erin, 'BAD_USER_INPUT'],
      ];
      for (const [input, headers, code] of cases) {
        const res = await server.gql(RECORD, { input }, headers);
        expect({ input, code: res.errors?.[0].extensions?.code }).toEqual({ input, code });
      }
      const anonymous = await server.gql(RECORD, { input: { subscriptionId, quantity: 1 } });
      expect(anonymous.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
      // Infinity does not survive JSON, but 1e400 parses to it.
      const huge = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...erin },
        body: `{"query": ${JSON.stringify(RECORD)}, "variables": {"input": {"subscriptionId": "${subscriptionId}", "quantity": 1e400}}}`,
      });
      expect(((await huge.json()) as any).errors[0].extensions.code).toBe('BAD_USER_INPUT');

      expect(await server.gql(CANCEL, { id: subscriptionId }, erin)).toMatchObject({ data: { cancelSubscription: { status: 'CANCELED' } } });
      const canceled = await server.gql(RECORD, { input: { subscriptionId, quantity: 1 } }, erin);
      expect(canceled.errors?.[0].extensions?.code).toBe('CONFLICT');
      expect(await ledger(server)).toHaveLength(before);
    });

    it('replays a recorded key after the subscription was canceled', async () => {
      const gina = await authHeader('usage-gina');
      const subscriptionId = await startPro(server, gina);
      const first = await server.gql(RECORD, { input: { subscriptionId, quantity: 1, idempotencyKey: 'gina-1' } }, gina);
      await server.gql(CANCEL, { id: subscriptionId }, gina);
      const again = await server.gql(RECORD, { input: { subscriptionId, quantity: 1, idempotencyKey: 'gina-1' } }, gina);
      expect(again.errors).toBeUndefined();
      expect(again.data.recordUsage).toEqual(first.data.recordUsage);
    });

    it('lets an admin record for another customer', async () => {
      const hank = await authHeader('usage-hank');
      const subscriptionId = await startPro(server, hank);
      const [customer] = await server.orm.em.fork().getConnection().execute(`select id from customers where user_id = 'usage-hank'`);
      const admin = await authHeader('usage-admin', { admin: true });
      const res = await server.gql(RECORD, { input: { subscriptionId, quantity: 4, customerId: customer.id } }, admin);
      expect(res.errors).toBeUndefined();
      const notAdmin = await server.gql(RECORD, { input: { subscriptionId, quantity: 4, customerId: customer.id } }, await authHeader('usage-ivan'));
      expect(notAdmin.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    });
  });

  describe('usage', () => {
    it('sums the current period by UTC day from the ledger, with what is still pending', async () => {
      const jane = await authHeader('usage-jane');
      const subscriptionId = await startPro(server, jane);
      const now = Date.now();
      const day = 24 * 3600_000;
      // occurredAt defaults to now, inside the period that just started.
      for (const quantity of [2, 3]) {
        expect((await server.gql(RECORD, { input: { subscriptionId, quantity } }, jane)).errors).toBeUndefined();
      }
      const current = await server.gql(USAGE, { subscriptionId }, jane);
      expect(current.errors).toBeUndefined();
      const summary = current.data.usage;
      expect(summary).toMatchObject({ subscriptionId, meter: 'api_calls', total: 5, pending: 5, failed: 0 });
      expect(summary.lagSeconds).toBeGreaterThanOrEqual(0);
      const [sub] = await server.orm.em.fork().getConnection().execute(`select current_period_start, current_period_end from subscriptions where id = ?`, [subscriptionId]);
      expect(new Date(summary.from).getTime()).toBe(new Date(sub.current_period_start).getTime());
      expect(new Date(summary.to).getTime()).toBe(new Date(sub.current_period_end).getTime());
      const today = new Date(now).toISOString().slice(0, 10);
      const days = summary.buckets.map((b: { date: string }) => b.date);
      expect(new Set(days).size).toBe(days.length);
      expect(summary.buckets.reduce((s: number, b: { total: number }) => s + b.total, 0)).toBe(5);

      await forwarder.drain();
      const midnight = Date.parse(today);
      const after = (await server.gql(USAGE, { meter: 'api_calls', from: new Date(midnight - 2 * day).toISOString(), to: new Date(midnight + day).toISOString() }, jane)).data.usage;
      expect(after).toMatchObject({ total: 5, pending: 0, lagSeconds: null });
      expect(after.buckets).toEqual([
        { date: new Date(midnight - 2 * day).toISOString().slice(0, 10), total: 0 },
        { date: new Date(midnight - day).toISOString().slice(0, 10), total: 0 },
        { date: today, total: 5 },
      ]);
    });

    it("answers NOT_FOUND for someone else's subscription and refuses an empty period", async () => {
      const kim = await authHeader('usage-kim');
      const subscriptionId = await startPro(server, kim);
      const other = await server.gql(USAGE, { subscriptionId }, await authHeader('usage-lee'));
      expect(other.errors?.[0].extensions?.code).toBe('NOT_FOUND');
      const t = new Date().toISOString();
      const empty = await server.gql(USAGE, { subscriptionId, from: t, to: t }, kim);
      expect(empty.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    });
  });
});
