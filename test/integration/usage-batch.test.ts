import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { batcherFor, runBatch, UsageBatcher, type BatchOutcome, type BatchRequest, type ConnectionLender, type QueryClient } from '../../src/billing/usage/usage-batch';
import { BILLING_STATUSES, hashRequest, UsageService } from '../../src/billing/usage/usage.service';
import { authHeader, startTestServer, type GqlResponse, type TestServer } from '../helpers/test-server';

/**
 * recordUsage's shared statement (usage-batch.ts): what one statement decides for each of many
 * requests, and that over HTTP the caller acting for itself gets the same answers and error
 * codes as the general path, alone and in concurrent bursts.
 */

const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id subscriptionId meter quantity occurredAt idempotencyKey } }`;
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status } } }`;
const CANCEL = `mutation($id: ID!) { cancelSubscription(id: $id, atPeriodEnd: false) { status } }`;

let server: TestServer;
const em = (): EntityManager => server.orm.em.fork() as unknown as EntityManager;
const sql = (query: string, params: unknown[] = []): Promise<any[]> => em().getConnection().execute(query, params);
const ledger = (where = 'true', params: unknown[] = []) => sql(`select * from usage_events where ${where} order by created_at, id`, params);
const appBatcher = () => batcherFor(em(), BILLING_STATUSES);
const stats = () => ({ ...appBatcher().stats });

/** A connection of the test server's pool, for running one statement directly. */
async function withClient<T>(fn: (client: QueryClient) => Promise<T>): Promise<T> {
  const knexClient = em().getConnection().getKnex().client;
  const client = await knexClient.acquireConnection();
  try {
    return await fn(client);
  } finally {
    await knexClient.releaseConnection(client);
  }
}

interface Customer {
  userId: string;
  headers: Record<string, string>;
  customerId: string;
  proId: string;
}

async function customerWithPro(userId: string): Promise<Customer> {
  const headers = await authHeader(userId);
  const res = await server.gql(START, { input: { plan: 'pro', trialDays: 14 } }, headers);
  expect(res.errors).toBeUndefined();
  const [row] = await sql(`select id from customers where user_id = ?`, [userId]);
  return { userId, headers, customerId: row.id, proId: res.data.startSubscription.subscription.id };
}

/** A copy of `subscriptionId` (another row of the same customer) with other items or status. */
async function cloneSubscription(subscriptionId: string, changes: { items?: unknown[]; status?: string }): Promise<string> {
  const id = randomUUID();
  await sql(
    `insert into subscriptions (id, customer_id, price_id, stripe_subscription_id, status, quantity, items, current_period_start, current_period_end, cancel_at_period_end, created_at, updated_at)
     select ?, customer_id, price_id, ?, coalesce(?, status), quantity, coalesce(?::jsonb, items), current_period_start, current_period_end, false, now(), now()
       from subscriptions where id = ?`,
    [id, `sub_test_${id}`, changes.status ?? null, changes.items ? JSON.stringify(changes.items) : null, subscriptionId],
  );
  return id;
}

function request(userId: string, fields: Partial<BatchRequest>): BatchRequest {
  const input = { subscriptionId: fields.subscriptionId ?? null, meter: fields.meter ?? null, quantity: fields.quantity ?? 1, occurredAt: null };
  return {
    id: randomUUID(),
    userId,
    subscriptionId: null,
    meter: null,
    quantity: 1,
    occurredAt: new Date(),
    idempotencyKey: randomUUID(),
    requestHash: hashRequest(input),
    ...fields,
  };
}

beforeAll(async () => {
  server = await startTestServer({ USAGE_FORWARDER_ENABLED: 'false', RATE_LIMIT_MUTATIONS_PER_MINUTE: '0', RATE_LIMIT_USAGE_PER_MINUTE: '0' });
});
afterAll(() => server.stop());

describe('one statement for many requests', () => {
  it('gives each request its own outcome and inserts only the rows that resolve', async () => {
    const ann = await customerWithPro('batch-ann');
    const ben = await customerWithPro('batch-ben');
    // A customer with no subscription: the billing portal is a mutation that creates the row (queries never do).
    const portal = await server.gql(`mutation { createBillingPortalSession(returnUrl: "http://localhost:3000/billing") { url } }`, {}, await authHeader('batch-nosub'));
    expect(portal.errors).toBeUndefined();
    expect(await sql(`select 1 from customers where user_id = ?`, ['batch-nosub'])).toHaveLength(1);
    const canceled = await cloneSubscription(ann.proId, { status: 'canceled' });
    const twoMeters = await cloneSubscription(ben.proId, {
      items: [
        { stripeItemId: 'si_1', stripePriceId: 'price_1', quantity: null, meter: 'api_calls' },
        { stripeItemId: 'si_2', stripePriceId: 'price_2', quantity: null, meter: 'storage_gb' },
      ],
    });
    const noMeter = await cloneSubscription(ann.proId, { items: [{ stripeItemId: 'si_3', stripePriceId: 'price_3', quantity: 1, meter: null }] });
    const committed = await withClient((c) => runBatch(c, [request(ann.userId, { subscriptionId: ann.proId, idempotencyKey: 'ann-old' })], BILLING_STATUSES));
    expect(committed[0].kind).toBe('inserted');
    const before = (await ledger()).length;

    const same = request(ann.userId, { subscriptionId: ann.proId, idempotencyKey: 'ann-dup', quantity: 2 });
    const requests: [string, BatchRequest][] = [
      ['inserted', request(ann.userId, { subscriptionId: ann.proId, quantity: 3 })],
      ['inserted', request(ann.userId, { meter: 'api_calls', quantity: 4 })],
      ['inserted', same],
      // The same key again in the same statement: the first one's row answers it.
      ['existing', { ...same, id: randomUUID() }],
      ['existing', request(ann.userId, { subscriptionId: ann.proId, idempotencyKey: 'ann-dup', quantity: 5 })],
      ['existing', request(ann.userId, { subscriptionId: ann.proId, idempotencyKey: 'ann-old' })],
      // A recorded key answers even where a new event would be refused.
      ['existing', request(ann.userId, { subscriptionId: canceled, idempotencyKey: 'ann-old' })],
      ['miss', request(ann.userId, { subscriptionId: canceled })],
      ['miss', request(ann.userId, { subscriptionId: ben.proId })],
      ['miss', request(ann.userId, { subscriptionId: randomUUID() })],
      ['miss', request(ann.userId, { subscriptionId: ann.proId, meter: 'storage_gb' })],
      ['miss', request(ann.userId, { subscriptionId: noMeter })],
      ['miss', request(ann.userId, {})],
      ['miss', request('batch-nobody', { meter: 'api_calls' })],
      ['miss', request('batch-nosub', { meter: 'api_calls' })],
      // Ben has two subscriptions billing api_calls: meter alone does not say which.
      ['miss', request(ben.userId, { meter: 'api_calls' })],
      ['miss', request(ben.userId, { subscriptionId: twoMeters })],
      ['inserted', request(ben.userId, { subscriptionId: twoMeters, meter: 'storage_gb', quantity: 6 })],
      ['inserted', request(ben.userId, { meter: 'storage_gb', quantity: 7 })],
      // Ben's key of the same name as Ann's is his own.
      ['inserted', request(ben.userId, { subscriptionId: ben.proId, idempotencyKey: 'ann-dup', quantity: 8 })],
    ];
    const outcomes = await withClient((c) => runBatch(c, requests.map(([, r]) => r), BILLING_STATUSES));
    expect(outcomes.map((o) => o.kind)).toEqual(requests.map(([kind]) => kind));

    const rows = await ledger();
    expect(rows).toHaveLength(before + requests.filter(([kind]) => kind === 'inserted').length);
    for (const [i, [kind, r]] of requests.entries()) {
      const outcome = outcomes[i] as BatchOutcome;
      if (kind === 'inserted') {
        const row = rows.find((x) => x.id === r.id);
        expect(row).toMatchObject({ subscription_id: outcome.kind === 'inserted' && outcome.subscriptionId, quantity: r.quantity, idempotency_key: r.idempotencyKey, state: 'pending' });
        expect(new Date(row.occurred_at).getTime()).toBe(r.occurredAt.getTime());
      }
      if (outcome.kind === 'existing') expect(outcome.row.idempotency_key).toBe(r.idempotencyKey);
    }
    const resolved = (i: number) => outcomes[i] as Extract<BatchOutcome, { kind: 'inserted' }>;
    expect(resolved(0)).toEqual({ kind: 'inserted', subscriptionId: ann.proId, meter: 'api_calls' });
    expect(resolved(1)).toEqual({ kind: 'inserted', subscriptionId: ann.proId, meter: 'api_calls' });
    expect(resolved(17)).toEqual({ kind: 'inserted', subscriptionId: twoMeters, meter: 'storage_gb' });
    expect(resolved(18)).toEqual({ kind: 'inserted', subscriptionId: twoMeters, meter: 'storage_gb' });
    // The duplicates are answered with the first one's row, whatever their own input.
    for (const i of [3, 4]) expect((outcomes[i] as Extract<BatchOutcome, { kind: 'existing' }>).row).toMatchObject({ id: same.id, request_hash: same.requestHash });
  });

  it('answers "failed" to every request of a statement that fails, and writes none of them', async () => {
    const cat = await customerWithPro('batch-cat');
    const before = (await ledger()).length;
    const lender: ConnectionLender = {
      acquire: () => em().getConnection().getKnex().client.acquireConnection(),
      release: (c) => void em().getConnection().getKnex().client.releaseConnection(c),
    };
    const warnings: unknown[] = [];
    const batcher = new UsageBatcher(lender, { statuses: BILLING_STATUSES, log: { warn: (obj) => warnings.push(obj) } });
    // PostgreSQL text cannot hold NUL: this one request fails the whole statement.
    const outcomes = await Promise.all([
      batcher.submit(request(cat.userId, { subscriptionId: cat.proId })),
      batcher.submit(request(cat.userId, { subscriptionId: cat.proId, idempotencyKey: 'bad\u0000key' })),
      batcher.submit(request(cat.userId, { meter: 'api_calls' })),
    ]);
    expect(outcomes).toEqual([{ kind: 'failed' }, { kind: 'failed' }, { kind: 'failed' }]);
    expect(batcher.stats).toMatchObject({ statements: 1, failedStatements: 1, failed: 3 });
    expect(warnings).toEqual([expect.objectContaining({ requests: 3, failedStatements: 1 })]);
    expect(await ledger()).toHaveLength(before);
  });

  it('prepares the statement again on a connection whose server forgot it', async () => {
    const kit = await customerWithPro('batch-kit');
    await withClient(async (client) => {
      const once = () => runBatch(client, [request(kit.userId, { subscriptionId: kit.proId })], BILLING_STATUSES);
      expect((await once())[0].kind).toBe('inserted');
      await client.query({ text: 'deallocate all', values: [] });
      await expect(once()).rejects.toMatchObject({ code: '26000' });
      expect((await once())[0].kind).toBe('inserted');
    });
    expect(await ledger('subscription_id = ?', [kit.proId])).toHaveLength(2);
  });

  it('records once when the statement committed but its answer was lost', async () => {
    const dee = await customerWithPro('batch-dee');
    // The connection "breaks" after the statement ran: the caller cannot tell that it committed.
    const lender: ConnectionLender = {
      acquire: async () => {
        const client: QueryClient = await em().getConnection().getKnex().client.acquireConnection();
        return {
          async query(config) {
            await client.query(config);
            throw new Error('Connection terminated unexpectedly');
          },
          release: () => em().getConnection().getKnex().client.releaseConnection(client),
        } as QueryClient;
      },
      release: (c) => void (c as unknown as { release(): void }).release(),
    };
    const service = new UsageService(em(), undefined, new UsageBatcher(lender, { statuses: BILLING_STATUSES }));
    const loadCustomer = () => em().findOne('Customer', { userId: dee.userId }) as Promise<any>;
    // Without a key from the caller too: the key generated for the statement is the one retried.
    for (const idempotencyKey of [undefined, 'dee-1']) {
      const record = await service.recordForUser(dee.userId, { subscriptionId: dee.proId, quantity: 2, idempotencyKey }, { loadCustomer });
      const rows = await ledger('subscription_id = ? and idempotency_key = ?', [dee.proId, record.idempotencyKey]);
      expect(rows).toHaveLength(1);
      expect(rows[0].id).toBe(record.id);
    }
    expect(await ledger('subscription_id = ?', [dee.proId])).toHaveLength(2);
  });

  it('leaves only the requests with a taken key open when reading their rows fails', async () => {
    const eli = await customerWithPro('batch-eli');
    const old = request(eli.userId, { subscriptionId: eli.proId, idempotencyKey: 'eli-old' });
    expect((await withClient((c) => runBatch(c, [old], BILLING_STATUSES)))[0].kind).toBe('inserted');
    // The insert statement runs; the query that reads the rows under taken keys fails.
    const outcomes = await withClient((c) => {
      let statements = 0;
      const flaky: QueryClient = {
        query: (config) => (statements++ === 0 ? c.query(config) : Promise.reject(new Error('Connection terminated unexpectedly'))),
      };
      return runBatch(flaky, [request(eli.userId, { subscriptionId: eli.proId }), { ...old, id: randomUUID() }, request('batch-nobody', { meter: 'api_calls' })], BILLING_STATUSES);
    });
    expect(outcomes.map((o) => o.kind)).toEqual(['inserted', 'failed', 'miss']);
    expect(await ledger('subscription_id = ?', [eli.proId])).toHaveLength(2);
  });
});

describe('recordUsage for the caller itself (HTTP)', () => {
  it('records, replays the same key, refuses other input under it, and goes through the shared statement', async () => {
    const eve = await customerWithPro('batch-eve');
    const before = stats();
    const occurredAt = new Date(Date.now() - 3_600_000).toISOString();
    const first = await server.gql(RECORD, { input: { subscriptionId: eve.proId, quantity: 2.5, occurredAt, idempotencyKey: 'eve-1' } }, eve.headers);
    expect(first.errors).toBeUndefined();
    expect(first.data.recordUsage).toMatchObject({ subscriptionId: eve.proId, meter: 'api_calls', quantity: 2.5, occurredAt, idempotencyKey: 'eve-1' });
    const [row] = await ledger('id = ?', [first.data.recordUsage.id]);
    expect(row).toMatchObject({ subscription_id: eve.proId, meter: 'api_calls', quantity: 2.5, idempotency_key: 'eve-1', state: 'pending' });

    const again = await server.gql(RECORD, { input: { subscriptionId: eve.proId, quantity: 2.5, occurredAt, idempotencyKey: 'eve-1' } }, eve.headers);
    expect(again.data.recordUsage).toEqual(first.data.recordUsage);
    const other = await server.gql(RECORD, { input: { subscriptionId: eve.proId, quantity: 3, occurredAt, idempotencyKey: 'eve-1' } }, eve.headers);
    expect(other.errors?.[0].extensions?.code).toBe('IDEMPOTENCY_CONFLICT');
    // The answer as the general path gives it: leaving occurredAt out is another request.
    const noTime = await server.gql(RECORD, { input: { subscriptionId: eve.proId, quantity: 2.5, idempotencyKey: 'eve-1' } }, eve.headers);
    expect(noTime.errors?.[0].extensions?.code).toBe('IDEMPOTENCY_CONFLICT');

    const byMeter = await server.gql(RECORD, { input: { meter: 'api_calls', quantity: 1 } }, eve.headers);
    expect(byMeter.data.recordUsage).toMatchObject({ subscriptionId: eve.proId, meter: 'api_calls', quantity: 1 });
    expect(byMeter.data.recordUsage.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);

    expect(await ledger('subscription_id = ?', [eve.proId])).toHaveLength(2);
    const after = stats();
    expect(after.inserted - before.inserted).toBe(2);
    // The replay and each of the two conflicts: the shared statement finds the key taken once.
    expect(after.existing - before.existing).toBe(3);
  });

  it('refuses what the general path refuses, with the same codes, and writes nothing', async () => {
    const fay = await customerWithPro('batch-fay');
    const gus = await customerWithPro('batch-gus');
    const starter = (await server.gql(START, { input: { plan: 'starter' } }, gus.headers)).data.startSubscription.subscription.id;
    const nobody = await authHeader('batch-nobody-http');
    const before = (await ledger()).length;
    const cases: [Record<string, unknown>, Record<string, string>, string][] = [
      [{ subscriptionId: gus.proId, quantity: 1 }, fay.headers, 'NOT_FOUND'],
      [{ subscriptionId: randomUUID(), quantity: 1 }, fay.headers, 'NOT_FOUND'],
      [{ subscriptionId: starter, quantity: 1 }, gus.headers, 'BAD_USER_INPUT'],
      [{ subscriptionId: fay.proId, meter: 'storage_gb', quantity: 1 }, fay.headers, 'BAD_USER_INPUT'],
      [{ meter: 'storage_gb', quantity: 1 }, fay.headers, 'NOT_FOUND'],
      [{ meter: 'api_calls', quantity: 1 }, nobody, 'NOT_FOUND'],
      [{ subscriptionId: fay.proId, quantity: 1 }, nobody, 'NOT_FOUND'],
      [{ quantity: 1 }, fay.headers, 'BAD_USER_INPUT'],
      [{ quantity: 1, idempotencyKey: 'fay-none' }, fay.headers, 'BAD_USER_INPUT'],
      // NUL cannot be stored: refused before the database, and never sent in a shared statement.
      [{ subscriptionId: fay.proId, quantity: 1, idempotencyKey: 'fay\u0000' }, fay.headers, 'BAD_USER_INPUT'],
      [{ meter: 'api\u0000calls', quantity: 1 }, fay.headers, 'BAD_USER_INPUT'],
      [{ subscriptionId: fay.proId, meter: 'api\u0000calls', quantity: 1 }, fay.headers, 'BAD_USER_INPUT'],
    ];
    const failedBefore = stats().failedStatements;
    for (const [input, headers, code] of cases) {
      const res = await server.gql(RECORD, { input }, headers);
      expect({ input, code: res.errors?.[0].extensions?.code }).toEqual({ input, code });
    }
    expect(stats().failedStatements).toBe(failedBefore);

    // Canceled: a new event is a CONFLICT, a recorded key still replays.
    const kept = await server.gql(RECORD, { input: { subscriptionId: fay.proId, quantity: 1, idempotencyKey: 'fay-1' } }, fay.headers);
    expect(kept.errors).toBeUndefined();
    expect(await server.gql(CANCEL, { id: fay.proId }, fay.headers)).toMatchObject({ data: { cancelSubscription: { status: 'CANCELED' } } });
    const canceled = await server.gql(RECORD, { input: { subscriptionId: fay.proId, quantity: 1 } }, fay.headers);
    expect(canceled.errors?.[0].extensions?.code).toBe('CONFLICT');
    const byMeter = await server.gql(RECORD, { input: { meter: 'api_calls', quantity: 1 } }, fay.headers);
    expect(byMeter.errors?.[0].extensions?.code).toBe('NOT_FOUND');
    const replay = await server.gql(RECORD, { input: { subscriptionId: fay.proId, quantity: 1, idempotencyKey: 'fay-1' } }, fay.headers);
    expect(replay.data.recordUsage).toEqual(kept.data.recordUsage);
    const changed = await server.gql(RECORD, { input: { subscriptionId: fay.proId, quantity: 9, idempotencyKey: 'fay-1' } }, fay.headers);
    expect(changed.errors?.[0].extensions?.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(await ledger()).toHaveLength(before + 1);
  });

  it('answers each of a concurrent burst of good, repeated, conflicting and refused requests with its own result', async () => {
    const hal = await customerWithPro('batch-hal');
    const ivy = await customerWithPro('batch-ivy');
    const canceled = await customerWithPro('batch-jon');
    await server.gql(CANCEL, { id: canceled.proId }, canceled.headers);
    const before = (await ledger()).length;

    type Case = { headers: Record<string, string>; input: Record<string, unknown>; expect: string };
    const cases: Case[] = [];
    for (let i = 0; i < 12; i++) {
      const who = i % 2 ? hal : ivy;
      cases.push({ headers: who.headers, input: { subscriptionId: who.proId, quantity: i + 1, idempotencyKey: `burst-${i}` }, expect: `new:${who.proId}` });
      cases.push({ headers: who.headers, input: { meter: 'api_calls', quantity: 100 + i }, expect: `new:${who.proId}` });
    }
    // Ten identical requests: one row, ten identical answers.
    for (let i = 0; i < 10; i++) cases.push({ headers: hal.headers, input: { subscriptionId: hal.proId, quantity: 5, idempotencyKey: 'burst-same' }, expect: 'same' });
    // Two inputs under one key: one of them wins, the other is a conflict.
    for (let i = 0; i < 6; i++) cases.push({ headers: ivy.headers, input: { subscriptionId: ivy.proId, quantity: 1 + (i % 2), idempotencyKey: 'burst-race' }, expect: 'race' });
    for (let i = 0; i < 4; i++) {
      cases.push({ headers: hal.headers, input: { subscriptionId: ivy.proId, quantity: 1 }, expect: 'NOT_FOUND' });
      cases.push({ headers: canceled.headers, input: { subscriptionId: canceled.proId, quantity: 1 }, expect: 'CONFLICT' });
      cases.push({ headers: hal.headers, input: { subscriptionId: hal.proId, meter: 'storage_gb', quantity: 1 }, expect: 'BAD_USER_INPUT' });
    }
    // The same key for Hal and for Ivy: two customers, two rows.
    cases.push({ headers: hal.headers, input: { subscriptionId: hal.proId, quantity: 1, idempotencyKey: 'burst-shared' }, expect: `new:${hal.proId}` });
    cases.push({ headers: ivy.headers, input: { subscriptionId: ivy.proId, quantity: 1, idempotencyKey: 'burst-shared' }, expect: `new:${ivy.proId}` });
    const order = cases.map((_, i) => i).sort(() => Math.random() - 0.5);

    const answers = new Array<GqlResponse<any>>(cases.length);
    await Promise.all(order.map(async (i) => (answers[i] = await server.gql(RECORD, { input: cases[i].input }, cases[i].headers))));

    const rows = await ledger();
    const byId = new Map(rows.map((r) => [r.id, r]));
    const sameIds = new Set<string>();
    const race: { ok: any[]; conflicts: number } = { ok: [], conflicts: 0 };
    for (const [i, c] of cases.entries()) {
      const a = answers[i];
      if (c.expect.startsWith('new:') || c.expect === 'same') {
        expect({ i, errors: a.errors }).toEqual({ i, errors: undefined });
        const record = a.data.recordUsage;
        const row = byId.get(record.id);
        expect(row).toBeDefined();
        expect(record).toMatchObject({ meter: 'api_calls', quantity: c.input.quantity, subscriptionId: row.subscription_id, idempotencyKey: row.idempotency_key });
        expect(row.quantity).toBe(c.input.quantity);
        if (c.expect === 'same') sameIds.add(record.id);
        else expect(record.subscriptionId).toBe(c.expect.slice(4));
      } else if (c.expect === 'race') {
        if (a.errors) {
          expect(a.errors[0].extensions?.code).toBe('IDEMPOTENCY_CONFLICT');
          race.conflicts++;
        } else race.ok.push({ record: a.data.recordUsage, quantity: c.input.quantity });
      } else {
        expect({ i, code: a.errors?.[0].extensions?.code }).toEqual({ i, code: c.expect });
      }
    }
    expect(sameIds.size).toBe(1);
    expect(race.ok.length + race.conflicts).toBe(6);
    expect(race.ok.length).toBeGreaterThanOrEqual(1);
    expect(new Set(race.ok.map((r) => r.record.id)).size).toBe(1);
    const raceRow = byId.get(race.ok[0].record.id);
    for (const r of race.ok) expect(r.quantity).toBe(raceRow.quantity);
    // 24 new events, one for the ten identical requests, one for the race, two shared keys.
    expect(rows).toHaveLength(before + 24 + 1 + 1 + 2);
  });
});
