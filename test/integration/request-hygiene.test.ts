import { createHash } from 'node:crypto';
import { authHeader, startTestServer, type TestServer, PRODUCTION_ENV } from '../helpers/test-server';

const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status } } }`;
const UPDATE = `mutation($input: UpdateSubscriptionInput!) { updateSubscription(input: $input) { id } }`;
const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id idempotencyKey } }`;

describe('input hygiene: NUL, unpaired surrogates and deep nesting are BAD_USER_INPUT everywhere', () => {
  let server: TestServer;
  let dana: Record<string, string>;
  let subscriptionId: string;
  const count = async (table: string) => Number((await server.orm.em.fork().getConnection().execute(`select count(*) as n from ${table}`))[0].n);

  beforeAll(async () => {
    server = await startTestServer({ USAGE_FORWARDER_ENABLED: 'false', RATE_LIMIT_STORE: 'memory' });
    dana = await authHeader('hygiene-dana');
    const started = await server.gql(START, { input: { plan: 'pro', trialDays: 14 } }, dana);
    expect(started.errors).toBeUndefined();
    subscriptionId = started.data.startSubscription.subscription.id;
  });
  afterAll(() => server.stop());

  const refused = (res: { status: number; errors?: { extensions?: { code?: string } }[]; data?: unknown }) => {
    expect(res.status).toBe(400);
    expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.data).toBeUndefined();
  };

  it.each([
    ['a NUL', 'key\u0000nul'],
    ['an unpaired high surrogate', 'key\ud800'],
    ['an unpaired low surrogate', 'key\udc00x'],
  ])("refuses startSubscription's idempotencyKey and plan with %s, writing nothing", async (_what, text) => {
    const subscriptions = await count('subscriptions');
    refused(await server.gql(START, { input: { plan: 'starter', idempotencyKey: text } }, dana));
    refused(await server.gql(START, { input: { plan: text } }, dana));
    refused(await server.gql(UPDATE, { input: { id: subscriptionId, plan: text } }, dana));
    expect(await count('subscriptions')).toBe(subscriptions);
  });

  it('refuses product(code:) with a NUL as a literal and as a variable, anonymously', async () => {
    refused(await server.gql(`{ product(code: "pro\\u0000") { code } }`));
    refused(await server.gql(`query($code: String) { product(code: $code) { code } }`, { code: 'pro\u0000' }));
    expect((await server.gql(`query($code: String) { product(code: $code) { code } }`, { code: 'pro' })).data.product.code).toBe('pro');
  });

  it('never lets two recordUsage keys that differ only in an unpaired surrogate collide', async () => {
    const events = await count('usage_events');
    refused(await server.gql(RECORD, { input: { subscriptionId, quantity: 1, idempotencyKey: 'k\ud800' } }, dana));
    refused(await server.gql(RECORD, { input: { subscriptionId, quantity: 2, idempotencyKey: 'k\udbff' } }, dana));
    expect(await count('usage_events')).toBe(events);
    // A well-formed pair is an ordinary character.
    const ok = await server.gql(RECORD, { input: { subscriptionId, quantity: 1, idempotencyKey: 'k\ud83d\ude00' } }, dana);
    expect(ok.data.recordUsage.idempotencyKey).toBe('k\ud83d\ude00');
  });

  it('answers a 6,000-level nested variable, even one the operation does not use, with a coded 400', async () => {
    // Written out by hand: JSON.stringify itself runs out of stack on such a value.
    const deepArray = `${'['.repeat(6000)}"leaf"${']'.repeat(6000)}`;
    const deepObject = `${'{"a":'.repeat(6000)}"leaf"${'}'.repeat(6000)}`;
    for (const [query, value] of [
      ['{ products { code } }', deepArray],
      ['{ products { code } }', deepObject],
      ['query($code: String) { product(code: $code) { code } }', deepObject],
    ]) {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"query":${JSON.stringify(query)},"variables":{"code":"pro","unused":${value}}}`,
      });
      refused({ status: res.status, ...((await res.json()) as object) });
    }
  });
});

describe('production surface', () => {
  let server: TestServer;
  const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
  beforeAll(async () => {
    server = await startTestServer({
      ...PRODUCTION_ENV,
      METRICS_TOKEN,
      LOG_LEVEL: 'silent',
    });
  });
  afterAll(() => server.stop());

  it('gives no field suggestions that would reveal the schema', async () => {
    const res = await server.gql(`{ viewr { id } }`);
    expect(res.errors?.[0].extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.errors?.[0].message).toBe('Cannot query field "viewr" on type "Query".');
    const enumValue = await server.gql(`{ subscriptions(status: ACTIV) { id } }`);
    expect(JSON.stringify(enumValue.errors)).not.toMatch(/did you mean|ACTIVE/i);
  });

  it('answers a persisted query whose hash does not match its text with a coded 400', async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ products { code } }', extensions: { persistedQuery: { version: 1, sha256Hash: createHash('sha256').update('other').digest('hex') } } }),
    });
    const body = (await res.json()) as any;
    expect(res.status).toBe(400);
    expect(body.errors[0].extensions.code).toBe('BAD_REQUEST');
  });

  it('serves /metrics only with the METRICS_TOKEN', async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
    const ok = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/tollgate_process_resident_memory_bytes/);
  });
});

describe('production without METRICS_TOKEN', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(PRODUCTION_ENV);
  });
  afterAll(() => server.stop());

  it('does not serve /metrics at all', async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toMatch(/tollgate_/);
  });
});

describe('local mode surface', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ RATE_LIMIT_STORE: 'memory' });
  });
  afterAll(() => server.stop());

  const page = (host: string) =>
    new Promise<string>((resolve, reject) => {
      // fetch() does not let a caller set Host; node:http does.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const http = require('node:http') as typeof import('node:http');
      const req = http.get(`${server.url}/graphql`, { headers: { host, accept: 'text/html' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
    });

  it('puts the dev token in the playground only for a loopback Host', async () => {
    expect(server.devToken).toBeDefined();
    const port = new URL(server.url).port;
    expect(await page(`localhost:${port}`)).toContain(server.devToken!);
    expect(await page(`127.0.0.1:${port}`)).toContain(server.devToken!);
    expect(await page(`[::1]:${port}`)).toContain(server.devToken!);
    const rebound = await page(`attacker.example:${port}`);
    expect(rebound).toMatch(/graphiql/i);
    expect(rebound).not.toContain(server.devToken!);
    expect(await page(`localhost.attacker.example:${port}`)).not.toContain(server.devToken!);
  });

  it('refuses a token whose signature has "=" appended', async () => {
    const { authorization } = await authHeader('hygiene-jwt');
    expect((await server.gql(`{ viewer { id } }`, undefined, { authorization })).errors).toBeUndefined();
    const padded = await server.gql(`{ viewer { id } }`, undefined, { authorization: `${authorization}=` });
    expect(padded.status).toBe(401);
    expect(padded.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('serves /metrics outside production without a token', async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
  });
});
