import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { signToken } from '../../src/auth/dev-secret';
import { loadCatalogFile } from '../../src/billing/catalog/catalog-file';
import { seedCatalog } from '../../src/billing/catalog/catalog-seeder';
import { createLogger } from '../../src/common/logger';
import { loadConfig } from '../../src/config/env';
import { startServer, type RunningServer } from '../../src/server';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { postGraphQL } from '../helpers/test-server';

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

describe('log redaction', () => {
  const stripeKey = `sk_test_${hex(16)}`;
  const restrictedKey = `rk_live_${hex(16)}`;
  const webhookSecret = `whsec_${hex(16)}`;
  const jwtSecret = `jwt-secret-${hex(20)}`;
  const dbPassword = `pw${hex(12)}`;
  const lines: string[] = [];
  const log = createLogger({ level: 'trace', destination: { write: (line: string) => void lines.push(line) } });
  const receivedByStripe: string[] = [];
  let stripe: http.Server;
  let db: TestDatabase;
  let server: RunningServer;
  let endpoint: string;
  let userToken: string;

  beforeAll(async () => {
    // Stands in for Stripe and does the worst a provider or proxy could: it echoes the key it was
    // sent, and the webhook secret, in its error messages.
    stripe = http.createServer((req, res) => {
      receivedByStripe.push(String(req.headers.authorization));
      req.resume();
      res.writeHead(401, { 'content-type': 'application/json', 'request-id': 'req_redaction' });
      res.end(JSON.stringify({ error: { type: 'invalid_request_error', message: `Invalid API Key provided: ${req.headers.authorization} (${webhookSecret})` } }));
    });
    await new Promise<void>((resolve) => stripe.listen(0, '127.0.0.1', resolve));
    db = await createTestDatabase();
    const config = loadConfig(
      {
        NODE_ENV: 'test',
        PORT: '0',
        LOG_LEVEL: 'trace',
        DATABASE_URL: db.url,
        STRIPE_SECRET_KEY: stripeKey,
        STRIPE_WEBHOOK_SECRET: webhookSecret,
        STRIPE_API_BASE: `http://127.0.0.1:${(stripe.address() as AddressInfo).port}`,
        STRIPE_MAX_NETWORK_RETRIES: '0',
        AUTH_JWT_SECRET: jwtSecret,
        RATE_LIMIT_STORE: 'memory',
      },
      { envFiles: [] },
    );
    server = await startServer(config, { log, databaseUrl: db.url });
    // Plans with Stripe ids, so a subscription request gets as far as calling "Stripe".
    const catalog = await loadCatalogFile(config.catalogFile);
    const ids = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, `id_${k}`]));
    await seedCatalog(server.orm.em.fork(), catalog, {
      meters: ids(catalog.meters.map((m) => m.eventName)),
      products: ids(catalog.products.map((p) => p.code)),
      prices: ids(catalog.products.flatMap((p) => p.prices.map((price) => price.lookupKey))),
    });
    endpoint = `http://127.0.0.1:${server.port}/graphql`;
    userToken = await signToken(jwtSecret, 'redaction-user', { email: 'redaction@example.com', expiresIn: '1h' });
  });

  afterAll(async () => {
    await server?.close();
    await db?.drop();
    await new Promise((resolve) => stripe?.close(resolve));
  });

  it('keeps Stripe keys, webhook secrets, JWTs and authorization headers out of every log line', async () => {
    const bearer = { authorization: `Bearer ${userToken}` };
    const forged = await signToken(`another-secret-${hex(16)}`, 'mallory', { expiresIn: '1h' });
    const answers: unknown[] = [];

    // Requests through the real app: authenticated calls that reach "Stripe", a forged token,
    // secrets in query text and variables, a webhook with a bad signature.
    answers.push(await postGraphQL(endpoint, '{ viewer { id email subscriptions { id } } }', undefined, bearer));
    answers.push(
      await postGraphQL(
        endpoint,
        'mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { clientSecret } }',
        { input: { plan: 'pro', idempotencyKey: `key-${stripeKey}` } },
        bearer,
      ),
    );
    answers.push(await postGraphQL(endpoint, '{ viewer { id } }', undefined, { authorization: `Bearer ${forged}` }));
    answers.push(await postGraphQL(endpoint, `{ product(code: "${stripeKey} ${webhookSecret} ${userToken}") { code } }`, undefined, bearer));
    answers.push(await postGraphQL(endpoint, `{ product(code: "${stripeKey}") { code `, undefined, bearer));
    const hook = await fetch(`http://127.0.0.1:${server.port}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': `t=1,v1=${webhookSecret}`, authorization: `Bearer ${userToken}` },
      body: JSON.stringify({ id: 'evt_1', object: 'event', secret: webhookSecret, key: stripeKey }),
    });
    answers.push({ status: hook.status, body: await hook.text() });

    // What code elsewhere in the app might log: configuration, environments, request headers
    // under any letter case, errors carrying secrets in messages and in extra properties.
    log.info({ config: server.config }, 'configuration');
    log.info({ env: { STRIPE_SECRET_KEY: stripeKey, STRIPE_API_KEY: restrictedKey, STRIPE_WEBHOOK_SECRET: webhookSecret, AUTH_JWT_SECRET: jwtSecret } }, 'environment');
    log.info({ req: { headers: { Authorization: `Bearer ${userToken}`, cookie: `session=${userToken}` } } }, 'request');
    log.debug({ upstream: { request: { headers: { authorization: `Bearer ${stripeKey}` } } } }, 'upstream call');
    log.info({ database: `postgres://tollgate:${dbPassword}@db.internal:5432/tollgate` }, 'database');
    const failure = Object.assign(new Error(`Stripe refused ${stripeKey} while verifying with ${webhookSecret}`), {
      raw: { message: `echo ${restrictedKey}`, headers: { Authorization: `Bearer ${stripeKey}` } },
    });
    log.error({ err: failure }, 'stripe call failed');
    log.error(failure);
    log.warn({ nested: { error: failure } }, 'nested failure');
    log.info(`token in free text: ${userToken} and key ${stripeKey}`);
    log.child({ component: 'stripe' }).warn({ apiKey: stripeKey, token: userToken, clientSecret: 'pi_1_secret_abc' }, 'child logger');

    const output = lines.join('');
    // The secrets were really in play: Stripe received the key and the app wrote plenty of lines.
    expect(receivedByStripe).toContain(`Bearer ${stripeKey}`);
    expect(lines.length).toBeGreaterThan(10);
    expect(output).toContain('[redacted]');
    for (const secret of [stripeKey, restrictedKey, webhookSecret, jwtSecret, userToken, forged, dbPassword, 'pi_1_secret_abc']) {
      expect(output).not.toContain(secret);
    }
    expect(output).not.toMatch(/Bearer ey/);
    // Nor in what callers were told.
    const told = JSON.stringify(answers);
    for (const secret of [stripeKey, webhookSecret, jwtSecret]) expect(told).not.toContain(secret);
  });
});
