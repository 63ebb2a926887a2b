import { createLogger } from '../../src/common/logger';
import { startServer } from '../../src/server';
import { StoppablePostgres } from '../helpers/stoppable-postgres';
import { startTestServer, testConfig, type TestServer, PRODUCTION_ENV } from '../helpers/test-server';

const production = PRODUCTION_ENV;

describe('HTTP surface', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  describe('playground', () => {
    it('serves GraphiQL to a browser, with every asset inline (no CDN)', async () => {
      const res = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toMatch(/graphiql/i);
      expect(html).not.toMatch(/<script[^>]+src=["']https?:/i);
      expect(html).not.toMatch(/<link[^>]+href=["']https?:/i);
    });
  });

  describe('health', () => {
    it('answers /healthz and /readyz with JSON', async () => {
      const health = await fetch(`${server.url}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', database: 'up' });
    });
  });

  describe('metrics', () => {
    it('serves Prometheus metrics: process figures and the usage forwarding lag', async () => {
      const res = await fetch(`${server.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await res.text();
      expect(text).toMatch(/^tollgate_process_resident_memory_bytes \d+/m);
      expect(text).toContain('# TYPE tollgate_usage_forward_lag_seconds gauge');
    });
  });

  describe('bad input', () => {
    const post = (body: string, contentType = 'application/json') =>
      fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': contentType }, body });

    it('answers malformed GraphQL with GRAPHQL_PARSE_FAILED', async () => {
      const res = await server.gql('{ products { code ');
      expect(res.status).toBe(400);
      expect(res.errors?.[0].extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    });

    it('answers unknown fields with GRAPHQL_VALIDATION_FAILED', async () => {
      const res = await server.gql('{ products { code price } }');
      expect(res.status).toBe(400);
      expect(res.errors?.[0]).toMatchObject({ extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
      expect(res.errors?.[0].message).toMatch(/Cannot query field "price"/);
    });

    it('answers an unknown operation name with OPERATION_RESOLUTION_FAILURE', async () => {
      for (const query of ['query Catalog { products { code } }', 'mutation Cancel { cancelSubscription(id: "x") { status } }']) {
        const res = await post(JSON.stringify({ query, operationName: 'Other' }));
        expect(res.status).toBe(400);
        const body = (await res.json()) as any;
        expect(body.errors[0]).toMatchObject({ extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } });
        expect(body.errors[0].message).toMatch(/Unknown operation named "Other"/);
      }
    });

    it('answers wrong variable types with BAD_USER_INPUT', async () => {
      const res = await server.gql('query($all: Boolean) { products(includeInactive: $all) { code } }', { all: 'yes' });
      expect(res.status).toBe(400);
      expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    });

    it('answers a body that is not JSON with 400 and a code, never a stack', async () => {
      const res = await post('{"query": ');
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body).toEqual({ errors: [{ message: 'Request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
    });

    it('answers a body over the limit with 413', async () => {
      const res = await post(JSON.stringify({ query: `{ products { code } } # ${'x'.repeat(200_000)}` }));
      expect(res.status).toBe(413);
      expect((await res.json()).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    });

    it('answers a missing query with a coded 400', async () => {
      const res = await post(JSON.stringify({ variables: {} }));
      expect(res.status).toBe(400);
      const text = await res.text();
      expect(text).not.toMatch(/at .*\.(ts|js):\d+/);
    });

    it('answers unknown routes with a coded 404', async () => {
      const res = await fetch(`${server.url}/nope`);
      expect(res.status).toBe(404);
      expect((await res.json()).errors[0].extensions.code).toBe('NOT_FOUND');
    });
  });
});

describe('production mode', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(production);
  });
  afterAll(() => server.stop());

  it('turns the playground and introspection off', async () => {
    const page = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(await page.text()).not.toMatch(/graphiql/i);
    const res = await server.gql('{ __schema { queryType { name } } }');
    expect(res.errors?.[0].extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.errors?.[0].message).toMatch(/introspection/i);
  });

  it('still answers catalog queries', async () => {
    const res = await server.gql('{ products { code } }');
    expect(res.errors).toBeUndefined();
  });
});

describe('/readyz', () => {
  it('answers 503 while the database is down, and 200 again when it is back', async () => {
    const pg = await StoppablePostgres.create();
    const app = await startServer(testConfig(), { log: createLogger({ level: 'silent' }), databaseUrl: pg.url });
    try {
      const url = `http://127.0.0.1:${app.port}/readyz`;
      expect((await fetch(url)).status).toBe(200);
      await pg.stop();
      const down = await fetch(url);
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({ status: 'unavailable', database: 'down' });
      await pg.start();
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        status = (await fetch(url)).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(200);
    } finally {
      await app.close();
      await pg.destroy();
    }
  });
});
