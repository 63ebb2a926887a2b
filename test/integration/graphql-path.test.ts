import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { CatalogResolver } from '../../src/billing/catalog/catalog.resolver';
import { SubscriptionResolver } from '../../src/billing/subscriptions/subscription.resolver';
import { deliverSignedEvent, stripeEvent } from '../helpers/stripe-signature';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const SECRET = 'whsec_tollgate_graphql_path_secret_0123456789';
const PRODUCTS = `{ products { id code name prices { id lookupKey unitAmount } } }`;
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status } } }`;
const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id meter quantity idempotencyKey } }`;
const SUBSCRIPTIONS = `{ subscriptions { id status quantity cancelAtPeriodEnd product { code } price { lookupKey unitAmount } } }`;

describe('every GraphQL request goes through Apollo', () => {
  let server: TestServer;
  let alice: Record<string, string>;
  let aliceSubscription: string;
  const ledger = (where: string, params: unknown[] = []) =>
    server.orm.em.fork().getConnection().execute(`select * from usage_events where ${where}`, params);

  beforeAll(async () => {
    server = await startTestServer({ STRIPE_WEBHOOK_SECRET: SECRET, USAGE_FORWARDER_ENABLED: 'false', RATE_LIMIT_STORE: 'memory' });
    alice = await authHeader('path-alice');
    const started = await server.gql(START, { input: { plan: 'pro', trialDays: 14 } }, alice);
    expect(started.errors).toBeUndefined();
    aliceSubscription = started.data.startSubscription.subscription.id;
  });
  afterAll(() => server.stop());

  describe('the route', () => {
    it('has no middleware on /graphql that could answer before Apollo: only the body parser and scopes that call next', () => {
      const stack = (server.app.express as unknown as { router: { stack: { name: string; matchers?: unknown[]; match?: (p: string) => boolean }[] } }).router.stack;
      const onGraphql = stack.filter((layer) => layer.match?.('/graphql')).map((layer) => layer.name);
      // helmet's headers and CORS set headers and call next; express.json parses; the request
      // scope is opened and next called; then Apollo (the express5 integration's handler, the
      // one unnamed layer), and after it only the 404 and the error handler.
      expect(onGraphql).toEqual(['securityHeaders', 'corsMiddleware', 'jsonParser', 'requestScope', '<anonymous>', 'notFound', 'onError']);
    });

    it('hands every kind of request to Apollo: catalog repeats, subscriptions, recordUsage, GET', async () => {
      const apollo = jest.spyOn(server.app.apollo, 'executeHTTPGraphQLRequest');
      try {
        await server.gql(PRODUCTS);
        await server.gql(PRODUCTS);
        await server.gql(SUBSCRIPTIONS, undefined, alice);
        await server.gql(SUBSCRIPTIONS, undefined, alice);
        await server.gql(RECORD, { input: { subscriptionId: aliceSubscription, quantity: 1 } }, alice);
        await fetch(`${server.url}/graphql?query=${encodeURIComponent(PRODUCTS)}`, { headers: { 'apollo-require-preflight': 'true' } });
        expect(apollo).toHaveBeenCalledTimes(6);
      } finally {
        apollo.mockRestore();
      }
    });

    it('refuses recordUsage sent with operationName "" and records nothing', async () => {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...alice },
        body: JSON.stringify({ query: RECORD, operationName: '', variables: { input: { subscriptionId: aliceSubscription, quantity: 1, idempotencyKey: 'empty-op-name' } } }),
      });
      const body = (await res.json()) as any;
      expect(res.status).toBe(400);
      expect(body.data).toBeUndefined();
      expect(body.errors[0].extensions.code).toBe('OPERATION_RESOLUTION_FAILURE');
      expect(await ledger(`idempotency_key = 'empty-op-name'`)).toEqual([]);
    });

    it('answers recordUsage under aliases named like Object.prototype members with the record it wrote', async () => {
      for (const alias of ['constructor', 'toString', '__proto__']) {
        const key = `alias-${alias}`;
        const res = await server.gql(
          `mutation($input: RecordUsageInput!) { ${alias}: recordUsage(input: $input) { id constructor: meter toString: quantity idempotencyKey } }`,
          { input: { subscriptionId: aliceSubscription, quantity: 2, idempotencyKey: key } },
          alice,
        );
        expect(res.errors).toBeUndefined();
        const [row] = await ledger('idempotency_key = ?', [key]);
        expect((res.data as Record<string, unknown>)[alias]).toEqual({ id: row.id, constructor: 'api_calls', toString: 2, idempotencyKey: key });
      }
    });
  });

  describe('the catalog cache, inside Apollo', () => {
    let productsCalls: jest.SpyInstance;
    beforeEach(() => {
      productsCalls = jest.spyOn(CatalogResolver.prototype, 'products');
    });
    afterEach(() => productsCalls.mockRestore());

    it('answers a repeated catalog query without running its resolvers, with an ETag', async () => {
      const post = () => fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: PRODUCTS }) });
      const first = await post();
      const firstBody = await first.text();
      const calls = productsCalls.mock.calls.length;
      const second = await post();
      expect(await second.text()).toBe(firstBody);
      expect(productsCalls.mock.calls.length).toBe(calls);
      expect(second.headers.get('etag')).toBe(first.headers.get('etag'));
      expect(JSON.parse(firstBody).data.products.map((p: any) => p.code).sort()).toEqual(['micro-feature', 'pro', 'starter']);
    });

    it('answers a GET with Cache-Control and an ETag, and a GET naming that ETag with 304 and no body', async () => {
      const url = `${server.url}/graphql?query=${encodeURIComponent(PRODUCTS)}`;
      const first = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
      expect(first.status).toBe(200);
      expect(first.headers.get('cache-control')).toMatch(/^public, max-age=\d+$/);
      const etag = first.headers.get('etag')!;
      expect(etag).toMatch(/^W\/".+"$/);
      const again = await fetch(url, { headers: { 'apollo-require-preflight': 'true', 'if-none-match': etag } });
      expect(again.status).toBe(304);
      expect(await again.text()).toBe('');
      const other = await fetch(url, { headers: { 'apollo-require-preflight': 'true', 'if-none-match': 'W/"something-else"' } });
      expect(other.status).toBe(200);
    });

    it('does the same for a persisted query sent by hash over GET', async () => {
      const sha256Hash = createHash('sha256').update(PRODUCTS).digest('hex');
      const extensions = encodeURIComponent(JSON.stringify({ persistedQuery: { version: 1, sha256Hash } }));
      const headers = { 'apollo-require-preflight': 'true' };
      const unknown = await fetch(`${server.url}/graphql?extensions=${extensions}`, { headers });
      expect(((await unknown.json()) as any).errors[0].extensions.code).toBe('PERSISTED_QUERY_NOT_FOUND');
      const registered = await fetch(`${server.url}/graphql?query=${encodeURIComponent(PRODUCTS)}&extensions=${extensions}`, { headers });
      expect(registered.status).toBe(200);
      const byHash = await fetch(`${server.url}/graphql?extensions=${extensions}`, { headers });
      expect(byHash.status).toBe(200);
      expect(byHash.headers.get('cache-control')).toMatch(/^public, max-age=\d+$/);
      const etag = byHash.headers.get('etag')!;
      const notModified = await fetch(`${server.url}/graphql?extensions=${extensions}`, { headers: { ...headers, 'if-none-match': etag } });
      expect(notModified.status).toBe(304);
    });

    it('still refuses a GET that a cross-site page could send without a preflight (CSRF prevention)', async () => {
      const res = await fetch(`${server.url}/graphql?query=${encodeURIComponent(PRODUCTS)}`);
      expect(res.status).toBe(400);
      expect(res.headers.get('cache-control')).toBeNull();
    });

    it('still refuses a bad token for a cached catalog query', async () => {
      await server.gql(PRODUCTS);
      const res = await server.gql(PRODUCTS, undefined, { authorization: 'Bearer not-a-token' });
      expect(res.status).toBe(401);
      expect(res.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    });

    it('keys answers by variables and keeps no answer with errors', async () => {
      const query = `query($code: String) { product(code: $code) { code name } }`;
      expect((await server.gql(query, { code: 'pro' })).data.product.code).toBe('pro');
      expect((await server.gql(query, { code: 'starter' })).data.product.code).toBe('starter');
      expect((await server.gql(query, { code: 'pro' })).data.product.code).toBe('pro');
      const bad = `{ product(id: "not-a-uuid") { code } }`;
      expect((await server.gql(bad)).errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      expect((await server.gql(bad)).errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    });

    it('shows a product renamed in Stripe as soon as its signed product.updated webhook is processed, with a new ETag', async () => {
      const url = `${server.url}/graphql?query=${encodeURIComponent(PRODUCTS)}`;
      const headers = { 'apollo-require-preflight': 'true' };
      const before = await fetch(url, { headers });
      const etag = before.headers.get('etag')!;
      const starter = ((await before.json()) as any).data.products.find((p: any) => p.code === 'starter');
      const emulatorKey = { authorization: 'Bearer sk_test_tollgate_local_emulator' };
      const list = (await (await fetch(`${server.emulator!.url}/v1/products?limit=100`, { headers: emulatorKey })).json()) as any;
      const stripeProduct = list.data.find((p: any) => p.metadata?.plan === 'starter' || p.name === starter.name);
      const renamed = await fetch(`${server.emulator!.url}/v1/products/${stripeProduct.id}`, {
        method: 'POST',
        headers: { ...emulatorKey, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ name: 'Starter (cache test)' }).toString(),
      });
      expect((await deliverSignedEvent(server.url, stripeEvent('product.updated', await renamed.json()), SECRET)).status).toBe(200);
      // The route records the event; the job engine applies it.
      await server.waitForJobs();

      const after = await fetch(url, { headers: { ...headers, 'if-none-match': etag } });
      expect(after.status).toBe(200);
      expect(after.headers.get('etag')).not.toBe(etag);
      expect(((await after.json()) as any).data.products.find((p: any) => p.code === 'starter').name).toBe('Starter (cache test)');
    });
  });

  describe("a caller's subscriptions, with no whole-response cache", () => {
    it('runs the resolver for every request and shows a change made in the database by anyone at once', async () => {
      const calls = jest.spyOn(SubscriptionResolver.prototype, 'subscriptions');
      try {
        const before = await server.gql(SUBSCRIPTIONS, undefined, alice);
        expect(before.data.subscriptions).toEqual([
          expect.objectContaining({ id: aliceSubscription, status: 'TRIALING', product: { code: 'pro' }, price: { lookupKey: 'pro_monthly', unitAmount: 9900 } }),
        ]);
        const connection = server.orm.em.fork().getConnection();
        await connection.execute(`update subscriptions set status = 'past_due' where id = ?`, [aliceSubscription]);
        try {
          expect((await server.gql(SUBSCRIPTIONS, undefined, alice)).data.subscriptions[0].status).toBe('PAST_DUE');
        } finally {
          await connection.execute(`update subscriptions set status = 'trialing' where id = ?`, [aliceSubscription]);
        }
        expect(calls).toHaveBeenCalledTimes(2);
      } finally {
        calls.mockRestore();
      }
    });

    it('gives each caller their own subscriptions, and an admin another customer’s', async () => {
      const bob = await authHeader('path-bob');
      expect((await server.gql(SUBSCRIPTIONS, undefined, bob)).data.subscriptions).toEqual([]);
      expect((await server.gql(`{ subscriptions(status: CANCELED) { id } }`, undefined, alice)).data.subscriptions).toEqual([]);
      expect((await server.gql(`{ subscriptions(status: TRIALING) { id } }`, undefined, alice)).data.subscriptions).toEqual([{ id: aliceSubscription }]);
      const viewer = await server.gql(`{ viewer { id subscriptions { id } } }`, undefined, alice);
      expect(viewer.data.viewer.subscriptions).toEqual([{ id: aliceSubscription }]);
      const admin = await authHeader('path-admin', { admin: true });
      const forAlice = await server.gql(`query($c: ID) { subscriptions(customerId: $c) { id product { code } } }`, { c: viewer.data.viewer.id }, admin);
      expect(forAlice.data.subscriptions).toEqual([{ id: aliceSubscription, product: { code: 'pro' } }]);
    });
  });
});
