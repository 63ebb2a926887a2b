import { createLogger } from '../../src/common/logger';
import { startServer, type RunningServer } from '../../src/server';
import { RATE_LIMIT_SCHEMA } from '../../src/security/mutation-rate-limiter';
import { authHeader, postGraphQL, startTestServer, testConfig, type TestServer, PRODUCTION_ENV } from '../helpers/test-server';

const ALLOWED_ORIGIN = 'https://app.example.com';
const cancelUnknown = 'mutation { cancelSubscription(id: "00000000-0000-4000-8000-000000000000") { id } }';

describe('security limits', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      GRAPHQL_MAX_DEPTH: '3',
      GRAPHQL_MAX_COMPLEXITY: '25',
      GRAPHQL_MAX_ALIASES: '4',
      CORS_ORIGINS: ALLOWED_ORIGIN,
      RATE_LIMIT_STORE: 'memory',
    });
  });
  afterAll(() => server.stop());

  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  describe('query shape', () => {
    it('refuses a query nested deeper than GRAPHQL_MAX_DEPTH with QUERY_TOO_DEEP and HTTP 400, before any resolver runs', async () => {
      expect((await server.gql('{ products { prices { id } } }')).errors).toBeUndefined();
      const res = await server.gql('{ products { prices { id } } viewer { subscriptions { product { code } } } }');
      expect(res.status).toBe(400);
      expect(res.data).toBeUndefined();
      // Anonymous: had `viewer` run it would have answered UNAUTHENTICATED, so nothing ran.
      expect(res.errors).toEqual([
        { message: 'The operation is nested 4 levels deep; the maximum is 3', locations: expect.any(Array), extensions: { code: 'QUERY_TOO_DEEP', limit: 3, actual: 4 } },
      ]);
    });

    it('refuses a query costing more than GRAPHQL_MAX_COMPLEXITY with QUERY_TOO_COMPLEX and HTTP 400', async () => {
      const wide = '{ products { code name description active prices { id lookupKey currency unitAmount interval usageType meter } } }';
      expect((await server.gql(wide)).errors).toBeUndefined();
      const res = await server.gql(`{ a: ${wide.slice(2, -2)} b: ${wide.slice(2, -2)} }`);
      expect(res.status).toBe(400);
      expect(res.errors?.[0].extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', limit: 25 });
      expect(res.errors?.[0].extensions?.actual).toBeGreaterThan(25);
    });

    it('keeps refusing a too complex query, and checks the cost of an operation with variables on every request', async () => {
      const wide = '{ products { code name description active prices { id lookupKey currency unitAmount interval usageType meter } } }';
      const twice = `{ a: ${wide.slice(2, -2)} b: ${wide.slice(2, -2)} }`;
      for (let i = 0; i < 3; i++) {
        expect((await server.gql(wide)).errors).toBeUndefined();
        expect((await server.gql(twice)).errors?.[0].extensions?.code).toBe('QUERY_TOO_COMPLEX');
      }
      const withVariable = `query($all: Boolean) { a: ${wide.slice(2, -2).replace('products', 'products(includeInactive: $all)')} b: ${wide.slice(2, -2)} }`;
      for (const all of [false, true]) {
        expect((await server.gql(withVariable, { all })).errors?.[0].extensions?.code).toBe('QUERY_TOO_COMPLEX');
      }
    });

    it('refuses more aliases than GRAPHQL_MAX_ALIASES with TOO_MANY_ALIASES', async () => {
      const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `p${i}: product(code: "pro") { code }`).join(' ')} }`;
      expect((await server.gql(aliases(4))).errors).toBeUndefined();
      const res = await server.gql(aliases(5));
      expect(res.status).toBe(400);
      expect(res.errors?.[0]).toMatchObject({ locations: [{ line: 1, column: 1 }], extensions: { code: 'TOO_MANY_ALIASES', limit: 4, actual: 5 } });
    });

    it('refuses batched operations (a JSON array) with a coded 400', async () => {
      const res = await post(JSON.stringify([{ query: '{ products { code } }' }, { query: '{ products { name } }' }]));
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body.errors[0].extensions.code).toBe('BAD_REQUEST');
      expect(body.data).toBeUndefined();
    });

    it('answers a webhook body over WEBHOOK_BODY_LIMIT with a coded 413 before any signature check (/graphql: http.test.ts)', async () => {
      const res = await fetch(`${server.url}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=00' },
        body: JSON.stringify({ id: 'evt_big', padding: 'x'.repeat(600_000) }),
      });
      expect(res.status).toBe(413);
      expect((await res.json()).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    });
  });

  describe('CSRF prevention', () => {
    const query = encodeURIComponent('{ products { code } }');

    it('refuses a GET query that a cross-site page could send without a preflight', async () => {
      const res = await fetch(`${server.url}/graphql?query=${query}`, { headers: { accept: 'application/json' } });
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body.errors[0].extensions.code).toBe('BAD_REQUEST');
      expect(body.errors[0].message).toMatch(/Cross-Site Request Forgery/);
    });

    it('answers the same GET when it carries apollo-require-preflight', async () => {
      const res = await fetch(`${server.url}/graphql?query=${query}`, { headers: { accept: 'application/json', 'apollo-require-preflight': 'true' } });
      expect(res.status).toBe(200);
      expect((await res.json()).data.products.length).toBeGreaterThan(0);
    });

    it('refuses a simple-request POST (content-type text/plain)', async () => {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ query: cancelUnknown }),
      });
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body.errors[0].message).toMatch(/Cross-Site Request Forgery/);
    });
  });

  describe('CORS', () => {
    it('gives an allowed origin access-control-allow-origin', async () => {
      const res = await post(JSON.stringify({ query: '{ products { code } }' }), { origin: ALLOWED_ORIGIN });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    });

    it('gives any other origin no CORS headers', async () => {
      const res = await post(JSON.stringify({ query: '{ products { code } }' }), { origin: 'https://evil.example.net' });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    });

    it('answers a preflight from an allowed origin with the methods and headers a client needs', async () => {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'OPTIONS',
        headers: {
          origin: ALLOWED_ORIGIN,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type,authorization',
        },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
      expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
      expect(res.headers.get('access-control-allow-headers')).toMatch(/authorization/);
      expect(res.headers.get('access-control-allow-headers')).toMatch(/content-type/);
    });

    it('answers a preflight from another origin without allowing it', async () => {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'POST' },
      });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    });
  });

  describe('security headers', () => {
    it('puts helmet headers on /healthz, /readyz, GraphQL answers and unknown routes', async () => {
      for (const res of [
        await fetch(`${server.url}/healthz`),
        await fetch(`${server.url}/readyz`),
        await post(JSON.stringify({ query: '{ products { code } }' })),
        await fetch(`${server.url}/nope`),
      ]) {
        expect(res.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
        expect(res.headers.get('strict-transport-security')).toMatch(/max-age=/);
        expect(res.headers.get('referrer-policy')).toBe('no-referrer');
        expect(res.headers.get('x-powered-by')).toBeNull();
      }
    });

    it('still renders the playground, without the CSP that would block its inline scripts', async () => {
      const res = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/graphiql/i);
      expect(res.headers.get('content-security-policy')).toBeNull();
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    });
  });
});

describe('production', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(PRODUCTION_ENV);
  });
  afterAll(() => server.stop());

  it('masks an unexpected failure as INTERNAL_SERVER_ERROR with no stack, SQL or table names', async () => {
    const connection = server.orm.em.getConnection();
    await connection.execute('alter table products rename to products_moved');
    try {
      const res = await postGraphQL(`${server.url}/graphql`, '{ products { code } }');
      expect(res.errors).toEqual([
        { message: 'Internal server error', locations: expect.any(Array), path: ['products'], extensions: { code: 'INTERNAL_SERVER_ERROR' } },
      ]);
      const raw = JSON.stringify(res);
      expect(raw).not.toMatch(/products_moved|relation|select|stacktrace|\.ts:\d+|\.js:\d+/i);
    } finally {
      await connection.execute('alter table products_moved rename to products');
    }
  });

  it('keeps the playground off and the security headers on', async () => {
    const page = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(await page.text()).not.toMatch(/graphiql/i);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
  });
});

describe('mutation rate limit', () => {
  describe('with the postgres store', () => {
    let first: TestServer;
    let second: RunningServer;
    let secondUrl: string;
    const env = { RATE_LIMIT_MUTATIONS_PER_MINUTE: '3', RATE_LIMIT_STORE: 'postgres' };

    beforeAll(async () => {
      first = await startTestServer(env);
      second = await startServer(testConfig(env), { log: createLogger({ level: 'silent' }), databaseUrl: first.db.url });
      secondUrl = `http://127.0.0.1:${second.port}/graphql`;
    });
    afterAll(async () => {
      await second?.close();
      await first?.stop();
    });

    it('shares one budget per user across instances and answers RATE_LIMITED with a retry hint', async () => {
      const alice = await authHeader('rate-alice');
      const answers = [
        await first.gql(cancelUnknown, undefined, alice),
        await postGraphQL(secondUrl, cancelUnknown, undefined, alice),
        await first.gql(cancelUnknown, undefined, alice),
      ];
      for (const res of answers) expect(res.errors?.[0].extensions?.code).toBe('NOT_FOUND');

      const res = await fetch(secondUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...alice },
        body: JSON.stringify({ query: cancelUnknown }),
      });
      expect(res.status).toBe(429);
      const body = await res.json();
      expect(body.data).toBeUndefined();
      expect(body.errors).toHaveLength(1);
      expect(body.errors[0].extensions.code).toBe('RATE_LIMITED');
      const retryAfter = body.errors[0].extensions.retryAfterSeconds;
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(res.headers.get('retry-after')).toBe(String(retryAfter));
    });

    it('keeps budgets per user and leaves queries unlimited', async () => {
      const bob = await authHeader('rate-bob');
      expect((await first.gql(cancelUnknown, undefined, bob)).errors?.[0].extensions?.code).toBe('NOT_FOUND');
      const alice = await authHeader('rate-alice');
      for (let i = 0; i < 5; i++) {
        const res = await first.gql('{ products { code } }', undefined, alice);
        expect(res.errors).toBeUndefined();
      }
    });

    it('counts every mutation field of a request, so aliases cannot multiply the budget', async () => {
      const carol = await authHeader('rate-carol');
      const packed = `mutation { ${[1, 2, 3, 4].map((i) => `c${i}: cancelSubscription(id: "00000000-0000-4000-8000-00000000000${i}") { id }`).join(' ')} }`;
      const res = await first.gql(packed, undefined, carol);
      expect(res.status).toBe(429);
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['RATE_LIMITED']);
    });

    it('keeps its table outside the schema the ORM manages', async () => {
      const diff = await first.orm.getSchemaGenerator().getUpdateSchemaSQL({ wrap: false });
      expect(diff).not.toContain(RATE_LIMIT_SCHEMA);
      const rows = await first.orm.em.getConnection().execute(`select count(*)::int as n from "${RATE_LIMIT_SCHEMA}".mutation_budget`);
      expect(rows[0].n).toBeGreaterThan(0);
    });
  });

  describe('with the memory store', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({ RATE_LIMIT_MUTATIONS_PER_MINUTE: '1', RATE_LIMIT_USAGE_PER_MINUTE: '2', RATE_LIMIT_STORE: 'memory' });
    });
    afterAll(() => server.stop());

    it('gives recordUsage a budget of its own, which neither spends nor is spent by other mutations', async () => {
      const erin = await authHeader('rate-erin');
      const record = 'mutation { recordUsage(input: { meter: "api_calls", quantity: 1 }) { id } }';
      for (let i = 0; i < 2; i++) {
        expect((await server.gql(record, undefined, erin)).errors?.[0].extensions?.code).not.toBe('RATE_LIMITED');
      }
      const third = await server.gql(record, undefined, erin);
      expect(third.status).toBe(429);
      expect(third.errors?.[0].extensions?.code).toBe('RATE_LIMITED');
      expect((await server.gql(cancelUnknown, undefined, erin)).errors?.[0].extensions?.code).toBe('NOT_FOUND');
      expect((await server.gql(cancelUnknown, undefined, erin)).errors?.[0].extensions?.code).toBe('RATE_LIMITED');
    });

    it('limits within the process', async () => {
      const dave = await authHeader('rate-dave');
      expect((await server.gql(cancelUnknown, undefined, dave)).errors?.[0].extensions?.code).toBe('NOT_FOUND');
      const res = await server.gql(cancelUnknown, undefined, dave);
      expect(res.status).toBe(429);
      expect(res.errors?.[0].extensions?.code).toBe('RATE_LIMITED');
    });
  });
});
