import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client } from 'pg';
import { JobQueueRepository } from '../../src/jobs/job-queue.repository';
import { StripeEventRepository } from '../../src/webhooks/stripe-event.repository';
import { replayEvents } from '../../src/webhooks/webhook-replay';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';
import { stripeSignature } from '../helpers/stripe-signature';

const SECRET = 'whsec_tollgate_order_test_secret_0123456789';
const EMULATOR_KEY = 'Bearer sk_test_tollgate_local_emulator';
const ROOT = path.resolve(__dirname, '../..');

const sign = (payload: string) => stripeSignature(payload, SECRET);

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe('Stripe webhooks: delivery order, failures and replay', () => {
  let server: TestServer;
  const deliver = async (event: object) => {
    const body = JSON.stringify(event);
    return fetch(`${server.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': sign(body) },
      body,
    });
  };
  const emulator = async (method: string, route: string, form?: Record<string, string>) => {
    const res = await fetch(`${server.emulator!.url}${route}`, {
      method,
      headers: { authorization: EMULATOR_KEY, ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    return (await res.json()) as any;
  };
  const sql = (query: string, params: unknown[] = []) => server.orm.em.fork().getConnection().execute(query, params);

  const replay = async (eventIds: string[]) => {
    const client = new Client({ connectionString: server.db.url });
    await client.connect();
    try {
      return await replayEvents(client, new StripeEventRepository(new JobQueueRepository(1)), { eventIds });
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    // One attempt per job: a failed event waits for the replay instead of the engine's own retry.
    server = await startTestServer({ STRIPE_WEBHOOK_SECRET: SECRET, WORKER_MAX_ATTEMPTS: '1' });
  });
  afterAll(() => server.stop());

  it("leaves the row equal to Stripe's subscription whatever order its events arrive in", async () => {
    const user = await authHeader('olivia');
    const started = await server.gql(
      `mutation { startSubscription(input: { plan: "starter" }) { subscription { id } } }`,
      {},
      user,
    );
    const id = started.data.startSubscription.subscription.id;
    const [{ stripe_subscription_id: stripeId }] = await sql(`select stripe_subscription_id from subscriptions where id = ?`, [id]);
    const current = await emulator('GET', `/v1/subscriptions/${stripeId}`);
    await emulator('POST', `/v1/subscriptions/${stripeId}`, { 'items[0][id]': current.items.data[0].id, 'items[0][quantity]': '2' });
    await emulator('POST', `/v1/subscriptions/${stripeId}`, { cancel_at_period_end: 'true' });
    await emulator('DELETE', `/v1/subscriptions/${stripeId}`);
    await server.emulator!.waitForWebhooks();

    const events = server.emulator!
      .events()
      .filter((e) => e.type.startsWith('customer.subscription.') && e.data.object.id === stripeId);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted']),
    );
    const stripeNow = await server.gateway!.retrieveSubscription(stripeId);
    const expected = {
      status: stripeNow.status,
      quantity: stripeNow.items[0].quantity,
      cancel_at_period_end: stripeNow.cancelAtPeriodEnd,
      canceled_at: stripeNow.canceledAt?.toISOString() ?? null,
    };
    expect(expected.status).toBe('canceled');

    expect(events.length).toBeGreaterThanOrEqual(4);
    const orders = permutations(events.slice(0, 4)); // 24 orders
    for (const order of orders) {
      await sql(`delete from subscriptions where stripe_subscription_id = ?`, [stripeId]);
      await sql(`delete from stripe_events where stripe_event_id in (?)`, [order.map((e) => e.id)]);
      // Each delivery is applied by the job engine before the next arrives: the order is the order applied.
      for (const event of order) {
        expect((await deliver(event)).status).toBe(200);
        await server.waitForJobs();
      }
      const [row] = await sql(
        `select status, quantity, cancel_at_period_end, canceled_at from subscriptions where stripe_subscription_id = ?`,
        [stripeId],
      );
      expect({ ...row, canceled_at: row.canceled_at ? new Date(row.canceled_at).toISOString() : null }).toEqual(expected);
    }
    expect(orders).toHaveLength(24);
  }, 120_000);

  it('acknowledges a failing event, keeps it failed with its error, and replays it once the cause is fixed', async () => {
    const user = await authHeader('peggy');
    await server.gql(`mutation { startSubscription(input: { plan: "starter" }) { subscription { id } } }`, {}, user);
    const [{ stripe_customer_id: customerId }] = await sql(`select stripe_customer_id from customers where user_id = 'peggy'`);

    // A subscription Stripe no longer has, on a price the catalog does not know yet: applying fails.
    const eventFor = (subId: string, priceId: string) => ({
      id: `evt_test_${randomUUID().replace(/-/g, '')}`,
      object: 'event',
      api_version: '2026-10-28.endive',
      created: Math.floor(Date.now() / 1000),
      livemode: false,
      type: 'customer.subscription.updated',
      data: {
        object: {
          id: subId,
          object: 'subscription',
          customer: customerId,
          status: 'active',
          cancel_at_period_end: false,
          created: Math.floor(Date.now() / 1000),
          livemode: false,
          metadata: {},
          items: {
            object: 'list',
            data: [
              {
                id: `si_${randomUUID().slice(0, 8)}`,
                object: 'subscription_item',
                quantity: 1,
                current_period_start: Math.floor(Date.now() / 1000),
                current_period_end: Math.floor(Date.now() / 1000) + 30 * 86400,
                price: { id: priceId, object: 'price', product: 'prod_legacy', currency: 'usd', unit_amount: 500, type: 'recurring', active: true, recurring: { interval: 'month', interval_count: 1, usage_type: 'licensed' } },
              },
            ],
          },
        },
      },
    });
    const inProcess = eventFor('sub_legacy_1', 'price_legacy_1');
    const byCli = eventFor('sub_legacy_2', 'price_legacy_2');
    for (const event of [inProcess, byCli]) {
      const res = await deliver(event);
      expect(res.status).toBe(200);
    }
    await server.waitForJobs();
    const failed = await sql(`select stripe_event_id, status, attempts, error from stripe_events where stripe_event_id in (?)`, [
      [inProcess.id, byCli.id],
    ]);
    expect(failed).toHaveLength(2);
    for (const row of failed) {
      expect(row).toMatchObject({ status: 'failed', attempts: 1 });
      expect(row.error).toMatch(/not in the catalog/);
    }
    expect(await sql(`select 1 from subscriptions where stripe_subscription_id like 'sub_legacy_%'`)).toHaveLength(0);

    // The cause is fixed (the legacy prices reach the catalog), then the events are replayed.
    const [{ id: productId }] = await sql(`select id from products where code = 'starter'`);
    for (const price of ['price_legacy_1', 'price_legacy_2']) {
      await sql(
        `insert into prices (id, product_id, stripe_price_id, currency, unit_amount, interval, interval_count, usage_type, active, created_at, updated_at)
         values (?, ?, ?, 'usd', 500, 'month', 1, 'licensed', false, now(), now())`,
        [randomUUID(), productId, price],
      );
    }
    const results = await replay([inProcess.id]);
    expect(results).toEqual([{ eventId: inProcess.id, type: 'customer.subscription.updated', outcome: 'enqueued' }]);
    await server.waitForJobs();
    expect(await sql(`select status from stripe_events where stripe_event_id = ?`, [inProcess.id])).toEqual([{ status: 'processed' }]);

    const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(STRIPE_|DATABASE_URL|AUTH_|NODE_ENV)/.test(k)));
      // Without ids the command replays every failed event: here, the one left.
      // The command only enqueues; the app's worker applies, and --wait prints what became of it.
      const child = spawn(process.execPath, [path.join(ROOT, 'scripts/run.cjs'), 'src/cli/events-replay.ts', '--wait'], {
        cwd: ROOT,
        env: {
          ...env,
          DATABASE_URL: server.db.url,
          LOG_LEVEL: 'silent',
        },
      });
      let stdout = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stdout += d));
      child.on('exit', (code) => resolve({ code, stdout }));
    });
    expect(out.stdout).toContain(`${byCli.id}  customer.subscription.updated  processed`);
    expect(out.code).toBe(0);

    const rows = await sql(`select stripe_event_id, status, attempts, error from stripe_events where stripe_event_id in (?)`, [
      [inProcess.id, byCli.id],
    ]);
    for (const row of rows) expect(row).toMatchObject({ status: 'processed', attempts: 2, error: null });
    expect(await sql(`select 1 from subscriptions where stripe_subscription_id like 'sub_legacy_%'`)).toHaveLength(2);

    // A processed event is not applied again by a replay or a redelivery.
    const again = await replay([inProcess.id]);
    expect(again).toEqual([{ eventId: inProcess.id, type: 'customer.subscription.updated', outcome: 'not_replayable' }]);
    expect((await deliver(inProcess)).status).toBe(200);
  }, 120_000);
});
