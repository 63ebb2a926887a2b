import 'reflect-metadata';
import { CatalogResolver } from '../../src/billing/catalog/catalog.resolver';
import { SubscriptionResolver } from '../../src/billing/subscriptions/subscription.resolver';
import { deliverSignedEvent, stripeEvent } from '../helpers/stripe-signature';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const SECRET = 'whsec_tollgate_catalog_cache_secret_0123456789';
const PRODUCTS = `{ products { id code name prices { id lookupKey unitAmount } } }`;
const PRODUCTS_FOR_HEADERS = `{ products { code prices { lookupKey } } }`;

describe('whole answers of catalog queries are kept per catalog snapshot', () => {
  let server: TestServer;
  let productsCalls: jest.SpyInstance;
  beforeAll(async () => {
    server = await startTestServer({ STRIPE_WEBHOOK_SECRET: SECRET });
  });
  beforeEach(() => {
    productsCalls = jest.spyOn(CatalogResolver.prototype, 'products');
  });
  afterEach(() => productsCalls.mockRestore());
  afterAll(() => server.stop());

  it('answers the same catalog query again without running its resolvers', async () => {
    const first = await server.gql(PRODUCTS);
    const second = await server.gql(PRODUCTS);
    expect(first.errors).toBeUndefined();
    expect(second).toEqual(first);
    expect(first.data.products.map((p: any) => p.code).sort()).toEqual(['micro-feature', 'pro', 'starter']);
    // At most the first ran the resolver (an earlier test may have filled the cache already).
    expect(productsCalls.mock.calls.length).toBeLessThanOrEqual(1);
    await server.gql(PRODUCTS);
    expect(productsCalls.mock.calls.length).toBeLessThanOrEqual(1);
  });

  it('answers a repeat before Apollo with the same status, headers and bytes Apollo sent', async () => {
    const post = (headers: Record<string, string> = {}) =>
      fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query: PRODUCTS_FOR_HEADERS }) });
    const first = await post();
    const firstBody = await first.text();
    const calls = productsCalls.mock.calls.length;
    const apollo = jest.spyOn(server.app.apollo, 'executeHTTPGraphQLRequest');
    const second = await post();
    const secondBody = await second.text();
    expect(productsCalls.mock.calls.length).toBe(calls);
    // Not even handed to Apollo.
    expect(apollo).not.toHaveBeenCalled();
    apollo.mockRestore();
    expect(second.status).toBe(first.status);
    expect(secondBody).toBe(firstBody);
    const comparable = (res: Response) => [...res.headers].filter(([name]) => !['date', 'connection', 'keep-alive'].includes(name));
    expect(comparable(second)).toEqual(comparable(first));
    expect(second.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(second.headers.get('content-security-policy')).toMatch(/default-src/);

    // Another Accept goes through Apollo's negotiation, still from the cache.
    const negotiated = await post({ accept: 'application/graphql-response+json' });
    expect(negotiated.headers.get('content-type')).toMatch(/^application\/graphql-response\+json/);
    expect(await negotiated.text()).toBe(firstBody);
    expect(productsCalls.mock.calls.length).toBe(calls);
  });

  it('keys answers by variables', async () => {
    const query = `query($code: String) { product(code: $code) { code name } }`;
    const pro = await server.gql(query, { code: 'pro' });
    const starter = await server.gql(query, { code: 'starter' });
    const proAgain = await server.gql(query, { code: 'pro' });
    expect(pro.data.product.code).toBe('pro');
    expect(starter.data.product.code).toBe('starter');
    expect(proAgain).toEqual(pro);
  });

  it('never keeps an answer that names the caller, even next to a catalog field', async () => {
    const query = `{ products { code } viewer { email } }`;
    const alice = await server.gql(query, undefined, await authHeader('cache-alice', { email: 'alice@example.com' }));
    const bob = await server.gql(query, undefined, await authHeader('cache-bob', { email: 'bob@example.com' }));
    expect(alice.data.viewer.email).toBe('alice@example.com');
    expect(bob.data.viewer.email).toBe('bob@example.com');
  });

  it('still refuses a bad token for a cached query', async () => {
    await server.gql(PRODUCTS);
    const res = await server.gql(PRODUCTS, undefined, { authorization: 'Bearer not-a-token' });
    expect(res.status).toBe(401);
    expect(res.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('keeps no answer with errors', async () => {
    const bad = `{ product(id: "not-a-uuid") { code } }`;
    expect((await server.gql(bad)).errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect((await server.gql(bad)).errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('shows a product renamed in Stripe as soon as its signed product.updated webhook is processed', async () => {
    const before = await server.gql(PRODUCTS);
    const starter = before.data.products.find((p: any) => p.code === 'starter');
    const emulatorKey = { authorization: 'Bearer sk_test_tollgate_local_emulator' };
    const list = (await (await fetch(`${server.emulator!.url}/v1/products?limit=100`, { headers: emulatorKey })).json()) as any;
    const stripeProduct = list.data.find((p: any) => p.metadata?.plan === 'starter' || p.name === starter.name);
    expect(stripeProduct).toBeDefined();
    const renamed = await fetch(`${server.emulator!.url}/v1/products/${stripeProduct.id}`, {
      method: 'POST',
      headers: { ...emulatorKey, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: 'Starter (cache test)' }).toString(),
    });
    const object = await renamed.json();
    const delivered = await deliverSignedEvent(server.url, stripeEvent('product.updated', object), SECRET);
    expect(delivered.status).toBe(200);

    const after = await server.gql(PRODUCTS);
    expect(after.data.products.find((p: any) => p.code === 'starter').name).toBe('Starter (cache test)');
  });
});

describe("whole answers of a caller's subscription queries are kept while the rows they came from are unchanged", () => {
  let server: TestServer;
  let listCalls: jest.SpyInstance;
  const SUBSCRIPTIONS = `{ subscriptions { id status quantity cancelAtPeriodEnd product { code } price { lookupKey unitAmount } } }`;
  const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status } } }`;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let aliceSubscription: string;

  beforeAll(async () => {
    server = await startTestServer();
    alice = await authHeader('sub-cache-alice');
    bob = await authHeader('sub-cache-bob');
    const started = await server.gql(START, { input: { plan: 'starter', trialDays: 14 } }, alice);
    expect(started.errors).toBeUndefined();
    aliceSubscription = started.data.startSubscription.subscription.id;
    expect((await server.gql(START, { input: { plan: 'pro', trialDays: 14 } }, bob)).errors).toBeUndefined();
    // The webhooks that follow (subscription, entitlements) change the rows answers are keyed on.
    await server.emulator!.waitForWebhooks();
  });
  beforeEach(() => {
    listCalls = jest.spyOn(SubscriptionResolver.prototype, 'subscriptions');
  });
  afterEach(() => listCalls.mockRestore());
  afterAll(() => server.stop());

  it('answers a repeated query from the cache, and each caller gets their own answer', async () => {
    const first = await server.gql(SUBSCRIPTIONS, undefined, alice);
    const again = await server.gql(SUBSCRIPTIONS, undefined, alice);
    expect(again).toEqual(first);
    expect(first.data.subscriptions).toEqual([expect.objectContaining({ id: aliceSubscription, status: 'TRIALING', product: { code: 'starter' } })]);
    expect(listCalls).toHaveBeenCalledTimes(1);

    const forBob = await server.gql(SUBSCRIPTIONS, undefined, bob);
    expect(forBob.data.subscriptions).toEqual([expect.objectContaining({ status: 'TRIALING', product: { code: 'pro' } })]);
    expect(forBob.data.subscriptions[0].id).not.toBe(aliceSubscription);
  });

  it('shows a change made in the database by anyone (here raw SQL, as another instance might) at the next request', async () => {
    const before = await server.gql(SUBSCRIPTIONS, undefined, alice);
    expect(before.data.subscriptions[0].status).toBe('TRIALING');
    const connection = server.orm.em.fork().getConnection();
    await connection.execute(`update subscriptions set status = 'past_due' where id = ?`, [aliceSubscription]);
    try {
      const after = await server.gql(SUBSCRIPTIONS, undefined, alice);
      expect(after.data.subscriptions[0].status).toBe('PAST_DUE');
    } finally {
      await connection.execute(`update subscriptions set status = 'trialing' where id = ?`, [aliceSubscription]);
    }
    expect((await server.gql(SUBSCRIPTIONS, undefined, alice)).data.subscriptions[0].status).toBe('TRIALING');
  });

  it('shows a cancellation at period end at once', async () => {
    await server.gql(SUBSCRIPTIONS, undefined, alice);
    const canceled = await server.gql(`mutation($id: ID!) { cancelSubscription(id: $id) { id cancelAtPeriodEnd } }`, { id: aliceSubscription }, alice);
    expect(canceled.data.cancelSubscription.cancelAtPeriodEnd).toBe(true);
    expect((await server.gql(SUBSCRIPTIONS, undefined, alice)).data.subscriptions[0].cancelAtPeriodEnd).toBe(true);
  });

  it("does not cache an admin's query for another customer", async () => {
    const admin = await authHeader('sub-cache-admin', { admin: true });
    const viewer = await server.gql(`{ viewer { id } }`, undefined, bob);
    const query = `query($c: ID) { subscriptions(customerId: $c) { product { code } } }`;
    const first = await server.gql(query, { c: viewer.data.viewer.id }, admin);
    const second = await server.gql(query, { c: viewer.data.viewer.id }, admin);
    expect(first.data.subscriptions).toEqual([{ product: { code: 'pro' } }]);
    expect(second).toEqual(first);
    expect(listCalls).toHaveBeenCalledTimes(2);
  });

  it("refuses an anonymous repeat of someone's cached query, and answers another user from their own rows", async () => {
    await server.gql(SUBSCRIPTIONS, undefined, alice);
    await server.gql(SUBSCRIPTIONS, undefined, alice);
    const anonymous = await server.gql(SUBSCRIPTIONS);
    expect(anonymous.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    const forged = await server.gql(SUBSCRIPTIONS, undefined, { authorization: 'Bearer forged.token.value' });
    expect(forged.status).toBe(401);
    const dave = await server.gql(SUBSCRIPTIONS, undefined, await authHeader('sub-cache-dave'));
    expect(dave.data.subscriptions).toEqual([]);
  });

  it('gives each of many concurrent callers their own answer (their rows are read together)', async () => {
    const headers = { alice, bob, erin: await authHeader('sub-cache-erin') };
    const expected = {
      alice: (await server.gql(SUBSCRIPTIONS, undefined, alice)).data.subscriptions,
      bob: (await server.gql(SUBSCRIPTIONS, undefined, bob)).data.subscriptions,
      erin: [],
    };
    const callers = Array.from({ length: 30 }, (_, i) => (['alice', 'bob', 'erin'] as const)[i % 3]);
    const answers = await Promise.all(callers.map((who) => server.gql(SUBSCRIPTIONS, undefined, headers[who])));
    answers.forEach((answer, i) => expect(answer.data.subscriptions).toEqual(expected[callers[i]]));
  });

  it('answers viewer for a first-time caller (no customer yet), then from the cache', async () => {
    const carol = await authHeader('sub-cache-carol', { email: 'carol@example.com' });
    const query = `{ viewer { email subscriptions { id } } }`;
    const first = await server.gql(query, undefined, carol);
    expect(first.data.viewer).toEqual({ email: 'carol@example.com', subscriptions: [] });
    expect(await server.gql(query, undefined, carol)).toEqual(first);
  });
});
