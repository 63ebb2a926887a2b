import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/common/logger';
import { startServer, type RunningServer } from '../../src/server';
import { StoppablePostgres } from '../helpers/stoppable-postgres';
import { authHeader, postGraphQL, testConfig } from '../helpers/test-server';
import { stripeSignature } from '../helpers/stripe-signature';

/*
 * The fault matrix, database side: PostgreSQL stops under a running server (queries, mutations
 * and a webhook delivery meet it down), then starts again on the same port. The server is not
 * restarted: its pool must find the database again by itself.
 */

const EMULATOR_KEY = 'Bearer sk_test_tollgate_local_emulator';
const SECRET = 'whsec_tollgate_fault_matrix_postgres_0123456789';
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status quantity } } }`;
const SUBSCRIPTIONS = `{ subscriptions { id quantity } }`;

describe('fault matrix: PostgreSQL unavailable under a running server', () => {
  let pg: StoppablePostgres;
  let server: RunningServer;
  let dataDir: string;
  let url: string;
  let alice: Record<string, string>;
  let subscriptionId: string;
  let stripeSubscriptionId: string;

  const gql = (query: string, variables?: Record<string, unknown>, headers?: Record<string, string>) => postGraphQL(`${url}/graphql`, query, variables, headers);
  const sql = (query: string, params: unknown[] = []) => server.orm.em.fork().getConnection().execute(query, params);
  const stripe = async (method: string, p: string, form?: Record<string, string>) => {
    const res = await fetch(`${server.emulator!.url}${p}`, {
      method,
      headers: { authorization: EMULATOR_KEY, ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    expect(res.status).toBe(200);
    return (await res.json()) as any;
  };
  const stripeSubscriptionCount = async () => (await stripe('GET', '/v1/subscriptions?status=all&limit=100')).data.length as number;
  /** Waits until the database answers through the server's own pool. */
  const databaseBack = async () => {
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the server never saw the database again');
  };

  beforeAll(async () => {
    // knex reports lost pool connections with console.log, outside the app's logger; kept out of the test output.
    jest.spyOn(console, 'log').mockImplementation(() => undefined);
    pg = await StoppablePostgres.create();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-fault-pg-'));
    server = await startServer(
      testConfig({ DATA_DIR: dataDir, STRIPE_WEBHOOK_SECRET: SECRET, USAGE_FORWARDER_ENABLED: 'false' }),
      { log: createLogger({ level: 'silent' }), databaseUrl: pg.url },
    );
    url = `http://127.0.0.1:${server.port}`;
    alice = await authHeader('alice');
    const started = await gql(START, { input: { plan: 'starter', trialDays: 7, idempotencyKey: 'alice-first' } }, alice);
    expect(started.errors).toBeUndefined();
    subscriptionId = started.data.startSubscription.subscription.id;
    await server.emulator!.waitForWebhooks();
    stripeSubscriptionId = (await sql(`select stripe_subscription_id from subscriptions where id = ?`, [subscriptionId]))[0].stripe_subscription_id;
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await pg?.destroy();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    jest.restoreAllMocks();
  });

  it('answers a query with a coded error while the database is down, and the data again once it is back', async () => {
    await pg.stop();
    try {
      const res = await gql(SUBSCRIPTIONS, {}, alice);
      expect(res.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(res.errors?.[0]?.message).toBe('Internal server error');
      expect(JSON.stringify(res)).not.toMatch(/ECONNREFUSED|postgres|password|at \w+ \(/i);
      expect((await fetch(`${url}/readyz`)).status).toBe(503);
    } finally {
      await pg.start();
    }
    await databaseBack();
    const again = await gql(SUBSCRIPTIONS, {}, alice);
    expect(again.errors).toBeUndefined();
    expect(again.data.subscriptions).toEqual([{ id: subscriptionId, quantity: 1 }]);
  });

  it('fails a mutation before anything reaches Stripe, and the same request afterwards creates it once', async () => {
    const bob = await authHeader('bob');
    const before = await stripeSubscriptionCount();
    await pg.stop();
    try {
      const res = await gql(START, { input: { plan: 'pro', trialDays: 7, idempotencyKey: 'bob-1' } }, bob);
      expect(res.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(res.data ?? null).toBeNull();
    } finally {
      await pg.start();
    }
    await databaseBack();
    expect(await stripeSubscriptionCount()).toBe(before);
    expect(await sql(`select count(*)::int as n from customers where user_id = 'bob'`)).toEqual([{ n: 0 }]);

    const retried = await gql(START, { input: { plan: 'pro', trialDays: 7, idempotencyKey: 'bob-1' } }, bob);
    expect(retried.errors).toBeUndefined();
    const again = await gql(START, { input: { plan: 'pro', trialDays: 7, idempotencyKey: 'bob-1' } }, bob);
    expect(again.data.startSubscription.subscription.id).toBe(retried.data.startSubscription.subscription.id);
    await server.emulator!.waitForWebhooks();
    expect(await stripeSubscriptionCount()).toBe(before + 1);
    expect(await sql(`select count(*)::int as n from subscriptions s join customers c on c.id = s.customer_id where c.user_id = 'bob'`)).toEqual([{ n: 1 }]);
  });

  it('answers a webhook with 500 while the database is down, and applies the redelivery once when it is back', async () => {
    const eventsBefore = server.emulator!.events().length;
    await pg.stop();
    try {
      // A change made in Stripe itself (the dashboard, the portal): its event finds the database down.
      await stripe('POST', `/v1/subscriptions/${stripeSubscriptionId}`, { 'metadata[changed]': 'while-down', cancel_at_period_end: 'true' });
      const event = server.emulator!.events().slice(eventsBefore).find((e) => e.type === 'customer.subscription.updated');
      expect(event).toBeDefined();
      // The emulator delivers it and gets a 500; deliver the same signed bytes once more to see the answer.
      const delivered = await fetch(`${url}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signatureFor(JSON.stringify(event), SECRET) },
        body: JSON.stringify(event),
      });
      expect(delivered.status).toBe(500);
    } finally {
      await pg.start();
    }
    await databaseBack();
    // Stripe's (the emulator's) own retry schedule brings the event again.
    await server.emulator!.waitForWebhooks(20_000);
    // Acknowledged once recorded; the job engine applies it next. A worker that lost its
    // connection while finishing a job is started again after a pause and first releases what
    // it held (job-runner.ts), which on a loaded machine can take several of those pauses.
    await server.waitForJobs(45_000);
    const rows = await sql(`select status, attempts from stripe_events where type = 'customer.subscription.updated' and stripe_event_id = ?`, [
      server.emulator!.events().slice(eventsBefore).find((e) => e.type === 'customer.subscription.updated')!.id,
    ]);
    expect(rows).toEqual([{ status: 'processed', attempts: 1 }]);
    const sub = await gql(`query($id: ID!) { subscription(id: $id) { cancelAtPeriodEnd } }`, { id: subscriptionId }, alice);
    expect(sub.data.subscription.cancelAtPeriodEnd).toBe(true);
  }, 90_000);
});

const signatureFor = (payload: string, secret: string) => stripeSignature(payload, secret);
