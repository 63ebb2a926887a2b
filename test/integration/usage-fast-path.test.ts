import { UsageBatcher } from '../../src/billing/usage/usage-batch';
import { UsageResolver } from '../../src/billing/usage/usage.resolver';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

/**
 * recordUsage answered before Apollo (usage-fast-path.ts): the same bytes and headers as Apollo,
 * every other case handed on to Apollo with its usual answer, the usage budget drawn once per
 * request, and a generated key reused after a statement whose outcome was lost.
 */

const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id subscriptionId meter quantity occurredAt idempotencyKey } }`;
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status } } }`;

let server: TestServer;
const sql = (query: string, params: unknown[] = []): Promise<any[]> => server.orm.em.fork().getConnection().execute(query, params);

async function proFor(userId: string): Promise<{ headers: Record<string, string>; subscriptionId: string }> {
  const headers = await authHeader(userId);
  const res = await server.gql(START, { input: { plan: 'pro', trialDays: 14 } }, headers);
  expect(res.errors).toBeUndefined();
  return { headers, subscriptionId: res.data.startSubscription.subscription.id };
}

/** A raw POST; `apollo: true` adds an empty `extensions`, which the fast path leaves to Apollo. */
function post(body: Record<string, unknown>, headers: Record<string, string>, options: { apollo?: boolean } = {}) {
  return fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(options.apollo ? { ...body, extensions: {} } : body),
  });
}

const comparable = (res: Response) => [...res.headers].filter(([name]) => !['date', 'connection', 'keep-alive'].includes(name));

describe('recordUsage fast path', () => {
  let resolverCalls: jest.SpyInstance;
  beforeAll(async () => {
    server = await startTestServer({ USAGE_FORWARDER_ENABLED: 'false', RATE_LIMIT_USAGE_PER_MINUTE: '0' });
  });
  beforeEach(() => {
    resolverCalls = jest.spyOn(UsageResolver.prototype, 'recordUsage');
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(() => server.stop());

  it('records without Apollo and answers with the status, headers and bytes Apollo sends', async () => {
    const { headers, subscriptionId } = await proFor('fast-ann');
    const variables = { input: { subscriptionId, quantity: 2, occurredAt: new Date(Date.now() - 60_000).toISOString(), idempotencyKey: 'ann-1' } };
    // Apollo records it first ...
    const viaApollo = await post({ query: RECORD, variables }, headers, { apollo: true });
    const apolloBody = await viaApollo.text();
    expect(resolverCalls).toHaveBeenCalledTimes(1);
    // ... and the fast path answers the retry, without Apollo, byte for byte the same.
    const apollo = jest.spyOn(server.app.apollo, 'executeHTTPGraphQLRequest');
    const viaFastPath = await post({ query: RECORD, variables }, headers);
    const fastBody = await viaFastPath.text();
    expect(apollo).not.toHaveBeenCalled();
    expect(resolverCalls).toHaveBeenCalledTimes(1);
    expect(viaFastPath.status).toBe(viaApollo.status);
    expect(fastBody).toBe(apolloBody);
    expect(comparable(viaFastPath)).toEqual(comparable(viaApollo));
    expect(JSON.parse(fastBody).data.recordUsage).toMatchObject({ subscriptionId, meter: 'api_calls', quantity: 2, idempotencyKey: 'ann-1' });

    // A new event: one row, committed before the answer.
    const fresh = await post({ query: RECORD, variables: { input: { subscriptionId, quantity: 5 } } }, headers);
    const record = (await fresh.json()).data.recordUsage;
    expect(apollo).not.toHaveBeenCalled();
    const rows = await sql(`select quantity, idempotency_key, state from usage_events where id = ?`, [record.id]);
    expect(rows).toEqual([{ quantity: 5, idempotency_key: record.idempotencyKey, state: 'pending' }]);
    expect(record.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('writes aliases, __typename, field order and an operation name as graphql-js does', async () => {
    const { headers } = await proFor('fast-bea');
    const query = `mutation Meter($usage: RecordUsageInput!) {
      recorded: recordUsage(input: $usage) { __typename amount: quantity key: idempotencyKey occurredAt meter id kind: __typename }
    }`;
    const body = { query, operationName: 'Meter', variables: { usage: { meter: 'api_calls', quantity: 1.25, idempotencyKey: 'bea-1' } } };
    const first = await (await post(body, headers, { apollo: true })).text();
    const apollo = jest.spyOn(server.app.apollo, 'executeHTTPGraphQLRequest');
    const again = await (await post(body, headers)).text();
    expect(apollo).not.toHaveBeenCalled();
    expect(again).toBe(first);
    expect(Object.keys(JSON.parse(again).data.recorded)).toEqual(['__typename', 'amount', 'key', 'occurredAt', 'meter', 'id', 'kind']);
    expect(JSON.parse(again).data.recorded).toMatchObject({ __typename: 'UsageRecord', amount: 1.25, key: 'bea-1', kind: 'UsageRecord' });
  });

  it('hands everything else to Apollo, which answers as it always does', async () => {
    const { headers, subscriptionId } = await proFor('fast-cid');
    const admin = await authHeader('fast-admin', { admin: true });
    const code = async (body: Record<string, unknown>, h: Record<string, string> = headers) => {
      const res = await post(body, h);
      const json = (await res.json()) as { errors?: { extensions: { code: string } }[] };
      return [res.status, json.errors?.[0]?.extensions.code ?? null];
    };
    const input = { subscriptionId, quantity: 1 };
    // No token, a bad token, variables that do not coerce, input the service refuses.
    expect(await code({ query: RECORD, variables: { input } }, {})).toEqual([200, 'UNAUTHENTICATED']);
    expect(await code({ query: RECORD, variables: { input } }, { authorization: 'Bearer nope' })).toEqual([401, 'UNAUTHENTICATED']);
    expect(await code({ query: RECORD, variables: { input: { subscriptionId, quantity: 'many' } } })).toEqual([400, 'BAD_USER_INPUT']);
    expect(await code({ query: RECORD, variables: { input: { subscriptionId, quantity: -1 } } })).toEqual([200, 'BAD_USER_INPUT']);
    // Nothing matched in the shared statement: someone else's or an unknown subscription.
    const other = await proFor('fast-cid-other');
    expect(await code({ query: RECORD, variables: { input: { subscriptionId: other.subscriptionId, quantity: 1 } } })).toEqual([200, 'NOT_FOUND']);
    // A key reused with other input.
    expect(await code({ query: RECORD, variables: { input: { subscriptionId, quantity: 1, idempotencyKey: 'cid-1' } } })).toEqual([200, null]);
    expect(await code({ query: RECORD, variables: { input: { subscriptionId, quantity: 2, idempotencyKey: 'cid-1' } } })).toEqual([200, 'IDEMPOTENCY_CONFLICT']);
    // Unknown operation name, a document that does not validate.
    expect(await code({ query: RECORD, operationName: 'Other', variables: { input } })).toEqual([400, 'OPERATION_RESOLUTION_FAILURE']);
    expect(await code({ query: `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { nope } }`, variables: { input } })).toEqual([400, 'GRAPHQL_VALIDATION_FAILED']);
    // Apollo ran the resolver for the four that got that far (no token, -1, NOT_FOUND, the conflict).
    expect(resolverCalls.mock.calls.length).toBe(4);

    // Shapes the fast path does not take, answered by the resolver: an admin acting for a
    // customer, two root fields, a literal input.
    const [customer] = await sql(`select id from customers where user_id = 'fast-cid'`);
    const forCustomer = await server.gql(RECORD, { input: { ...input, customerId: customer.id } }, admin);
    expect(forCustomer.data.recordUsage.subscriptionId).toBe(subscriptionId);
    const twice = await server.gql(`mutation($input: RecordUsageInput!) { a: recordUsage(input: $input) { id } b: recordUsage(input: $input) { id } }`, { input }, headers);
    expect(twice.data.a.id).not.toBe(twice.data.b.id);
    const literal = await server.gql(`mutation { recordUsage(input: { subscriptionId: "${subscriptionId}", quantity: 1 }) { quantity } }`, undefined, headers);
    expect(literal.data.recordUsage.quantity).toBe(1);
    expect(resolverCalls.mock.calls.length).toBe(8);
  });

  it('reuses its generated key when the shared statement committed but its answer was lost', async () => {
    const { headers, subscriptionId } = await proFor('fast-dee');
    const submit = UsageBatcher.prototype.submit;
    let lost = 0;
    jest.spyOn(UsageBatcher.prototype, 'submit').mockImplementation(async function (this: UsageBatcher, request) {
      const outcome = await submit.call(this, request);
      // The first statement commits the row, then its answer is lost.
      if (lost++ === 0) return { kind: 'failed' };
      return outcome;
    });
    const res = await server.gql(RECORD, { input: { subscriptionId, quantity: 9 } }, headers);
    expect(res.errors).toBeUndefined();
    expect(resolverCalls).toHaveBeenCalledTimes(1);
    const rows = await sql(`select id, idempotency_key from usage_events where subscription_id = ?`, [subscriptionId]);
    // One row, under the key the fast path generated and Apollo's resolver retried.
    expect(rows).toEqual([{ id: res.data.recordUsage.id, idempotency_key: res.data.recordUsage.idempotencyKey }]);
  });
});

describe('recordUsage fast path and the usage budget', () => {
  beforeAll(async () => {
    server = await startTestServer({ USAGE_FORWARDER_ENABLED: 'false', RATE_LIMIT_USAGE_PER_MINUTE: '3', RATE_LIMIT_STORE: 'memory' });
  });
  afterAll(() => server.stop());

  it('draws one point per request, also for requests it hands on to Apollo', async () => {
    const { headers, subscriptionId } = await proFor('fast-eve');
    const unknown = '00000000-0000-4000-8000-000000000000';
    // Handed on after the point was drawn: an unknown subscription (NOT_FOUND), twice.
    for (let i = 0; i < 2; i++) {
      const res = await server.gql(RECORD, { input: { subscriptionId: unknown, quantity: 1 } }, headers);
      expect(res.errors?.[0].extensions?.code).toBe('NOT_FOUND');
    }
    const third = await server.gql(RECORD, { input: { subscriptionId, quantity: 1 } }, headers);
    expect(third.errors).toBeUndefined();
    // The fourth is over the budget: refused by Apollo with its status, code and Retry-After.
    const res = await post({ query: RECORD, variables: { input: { subscriptionId, quantity: 1 } } }, headers);
    const body = (await res.json()) as any;
    expect(res.status).toBe(429);
    expect(body.errors[0].extensions.code).toBe('RATE_LIMITED');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await sql(`select count(*)::int as n from usage_events e join customers c on c.id = e.customer_id where c.user_id = 'fast-eve'`)).toEqual([{ n: 1 }]);
  });
});
