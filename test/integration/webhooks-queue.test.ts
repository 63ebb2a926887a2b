import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';
import { stripeEvent, stripeSignature } from '../helpers/stripe-signature';

/*
 * The webhook route records and enqueues; the job engine (graphile-worker, inside the app here)
 * applies. Real PostgreSQL, real signatures, the emulator reached through the SDK.
 */

const SECRET = 'whsec_tollgate_queue_test_secret_0123456789';
const NEXT_SECRET = 'whsec_tollgate_queue_test_rolled_secret_987654';
const EMULATOR_KEY = 'Bearer sk_test_tollgate_local_emulator';
/** A fault this large never runs out during a test: what is left of it counts the requests it matched. */
const COUNTER = 100_000;

describe('Stripe webhooks on the job engine', () => {
  let server: TestServer;
  const deliver = (event: object, secret = SECRET) => {
    const body = JSON.stringify(event);
    return fetch(`${server.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(body, secret) },
      body,
    });
  };
  const emulator = async (method: string, route: string, form?: Record<string, string>) => {
    const res = await fetch(`${server.emulator!.url}${route}`, {
      method,
      headers: { authorization: EMULATOR_KEY, ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    expect(res.status).toBe(200);
    return (await res.json()) as any;
  };
  const sql = (query: string, params: unknown[] = []) => server.orm.em.fork().getConnection().execute(query, params);
  /** Polls until `check` holds (the job engine works in the background). */
  const eventually = async <T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 30_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (check(value) || Date.now() > deadline) return value;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const setDelivery = async (enabled: boolean) => {
    const endpoints = await emulator('GET', '/v1/webhook_endpoints');
    for (const we of endpoints.data) await emulator('POST', `/v1/webhook_endpoints/${we.id}`, { disabled: String(!enabled) });
  };
  const subscribe = async (user: string) => {
    const started = await server.gql(`mutation { startSubscription(input: { plan: "starter" }) { subscription { id } } }`, {}, await authHeader(user));
    expect(started.errors).toBeUndefined();
    const [row] = await sql(`select stripe_subscription_id from subscriptions where id = ?`, [started.data.startSubscription.subscription.id]);
    return row.stripe_subscription_id as string;
  };
  /** Jobs of a task run so far by this app's worker, from /metrics. */
  const jobsRun = async (task: string) => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return [...text.matchAll(new RegExp(`^tollgate_job_run_seconds_count\\{task="${task}",outcome="\\w+"\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
  };
  const readsOf = (faultId: number) => COUNTER - (server.emulator!.faults.list().find((f) => f.id === faultId)?.remaining ?? 0);

  beforeAll(async () => {
    server = await startTestServer({
      STRIPE_WEBHOOK_SECRET: `${SECRET},${NEXT_SECRET}`,
      WORKER_CONCURRENCY: '4',
      RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
      STRIPE_REQUESTS_PER_SECOND: '1000',
    });
  });
  afterAll(() => server.stop());
  afterEach(async () => {
    server.emulator!.faults.clear();
    await setDelivery(true);
  });

  it('acknowledges a burst of 200 deliveries over 10 subscriptions and applies it with about one Stripe read per subscription', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await subscribe(`burst-${i}`));
    await server.emulator!.waitForWebhooks();
    // The events of the burst are sent here; the emulator's own deliveries would add reads.
    await setDelivery(false);
    const stale = new Map<string, any>();
    for (const id of ids) {
      stale.set(id, await emulator('GET', `/v1/subscriptions/${id}`));
      const current = stale.get(id);
      await emulator('POST', `/v1/subscriptions/${id}`, { 'items[0][id]': current.items.data[0].id, 'items[0][quantity]': '3' });
    }
    // Stripe answers every read of a subscription in 300 ms, and the fault counts the reads.
    const fault = server.emulator!.faults.add({ delayMs: 300, count: COUNTER, path: '/v1/subscriptions/', method: 'GET' });
    const jobsBefore = await jobsRun('stripe_object');

    // Each event carries the subscription as it was before the change: only a refetch sees quantity 3.
    const events = Array.from({ length: 200 }, (_, i) => stripeEvent('customer.subscription.updated', stale.get(ids[i % 10])));
    const statuses: number[] = [];
    for (let i = 0; i < events.length; i += 50) {
      statuses.push(...(await Promise.all(events.slice(i, i + 50).map(async (e) => (await deliver(e)).status))));
    }
    expect(statuses).toEqual(Array(200).fill(200));

    await server.waitForJobs(60_000);
    const rows = await sql(
      `select status, count(*)::int as n from stripe_events where stripe_event_id in (?) group by status`,
      [events.map((e) => e.id)],
    );
    expect(rows).toEqual([{ status: 'processed', n: 200 }]);
    const quantities = await sql(`select quantity from subscriptions where stripe_subscription_id in (?)`, [ids]);
    expect(quantities.map((r: any) => r.quantity)).toEqual(Array(10).fill(3));
    // One read per event would be 200; coalescing per subscription keeps it near 10.
    const reads = readsOf(fault.id);
    const jobs = (await jobsRun('stripe_object')) - jobsBefore;
    expect({ reads, jobs }).toEqual({ reads: expect.any(Number), jobs: expect.any(Number) });
    expect(reads).toBeGreaterThanOrEqual(10);
    expect(reads).toBeLessThanOrEqual(40);
    // A job per object, replaced while it waits, rather than a job per event.
    expect(jobs).toBeLessThanOrEqual(60);
  }, 120_000);

  it('stores a signed event holding \\u0000 (which jsonb refuses) escaped, and applies it', async () => {
    const id = await subscribe('poison');
    await server.emulator!.waitForWebhooks();
    const object = await emulator('GET', `/v1/subscriptions/${id}`);
    const event = stripeEvent('customer.subscription.updated', { ...object, metadata: { note: 'a\u0000b' } });
    const res = await deliver(event);
    expect(res.status).toBe(200);
    await server.waitForJobs();
    const [row] = await sql(`select status, error, payload->'data'->'object'->'metadata'->>'note' as note from stripe_events where stripe_event_id = ?`, [
      event.id,
    ]);
    expect(row).toEqual({ status: 'processed', error: null, note: 'a\\u0000b' });
    // Redelivered, it is the same event: 200, nothing new.
    expect(await (await deliver(event)).json()).toEqual({ received: true, duplicate: true });
  });

  it('retries the job when Stripe answers 429 to the refetch, without failing the delivery', async () => {
    const id = await subscribe('limited');
    await server.emulator!.waitForWebhooks();
    await setDelivery(false);
    const object = await emulator('GET', `/v1/subscriptions/${id}`);
    await emulator('POST', `/v1/subscriptions/${id}`, { cancel_at_period_end: 'true' });
    // Enough 429s to outlast the gateway's own retries: the first job attempt fails.
    server.emulator!.faults.add({ status: 429, count: 3, path: `/v1/subscriptions/${id}`, method: 'GET' });
    const event = stripeEvent('customer.subscription.updated', object);
    expect((await deliver(event)).status).toBe(200);

    const status = (await sql(`select status, attempts, error from stripe_events where stripe_event_id = ?`, [event.id]))[0];
    const failed = await eventually(
      async () => (await sql(`select status, attempts, error from stripe_events where stripe_event_id = ?`, [event.id]))[0],
      (r) => r.status !== 'received',
    );
    expect(status.status).toBe('received');
    expect(failed).toMatchObject({ status: 'failed', attempts: 1 });
    expect(failed.error).toMatch(/.+/);
    const done = await eventually(
      async () => (await sql(`select status, attempts, error from stripe_events where stripe_event_id = ?`, [event.id]))[0],
      (r) => r.status === 'processed',
    );
    expect(done).toEqual({ status: 'processed', attempts: 2, error: null });
    const [sub] = await sql(`select cancel_at_period_end from subscriptions where stripe_subscription_id = ?`, [id]);
    expect(sub.cancel_at_period_end).toBe(true);
  }, 60_000);

  it('catches up on an event Stripe sent while the endpoint received nothing', async () => {
    const id = await subscribe('missed');
    await server.emulator!.waitForWebhooks();
    await setDelivery(false);
    await emulator('POST', `/v1/subscriptions/${id}`, { cancel_at_period_end: 'true' });
    const missed = server.emulator!.events().filter((e) => e.data.object.id === id && e.type === 'customer.subscription.updated').pop()!;
    expect(await sql(`select 1 from stripe_events where stripe_event_id = ?`, [missed.id])).toEqual([]);

    // What a worker does at start (and its crontab on schedule): run the catch-up job now.
    await sql(`select graphile_worker.add_job('stripe_events_catch_up', '{}'::json, job_key => 'stripe_events_catch_up')`);
    const row = await eventually(
      async () => (await sql(`select status from stripe_events where stripe_event_id = ?`, [missed.id]))[0],
      (r) => r?.status === 'processed',
    );
    expect(row).toEqual({ status: 'processed' });
    const [sub] = await sql(`select cancel_at_period_end from subscriptions where stripe_subscription_id = ?`, [id]);
    expect(sub.cancel_at_period_end).toBe(true);
  });

  it('still catches up after an event dated in the future by a test clock', async () => {
    // A test clock's events carry the clock's time: one a year ahead must not move the catch-up past today's events.
    const ahead = stripeEvent('customer.tax_id.created', { id: 'txi_clock', object: 'tax_id' }, { created: Math.floor(Date.now() / 1000) + 365 * 86_400 });
    expect((await deliver(ahead)).status).toBe(200);
    const id = await subscribe('after-clock');
    await server.emulator!.waitForWebhooks();
    await setDelivery(false);
    await emulator('POST', `/v1/subscriptions/${id}`, { cancel_at_period_end: 'true' });
    const missed = server.emulator!.events().filter((e) => e.data.object.id === id && e.type === 'customer.subscription.updated').pop()!;
    await sql(`select graphile_worker.add_job('stripe_events_catch_up', '{}'::json, job_key => 'stripe_events_catch_up')`);
    const row = await eventually(
      async () => (await sql(`select status from stripe_events where stripe_event_id = ?`, [missed.id]))[0],
      (r) => r?.status === 'processed',
    );
    expect(row).toEqual({ status: 'processed' });
  });

  it('accepts deliveries signed with any of the configured secrets (a secret being rolled)', async () => {
    const event = stripeEvent('customer.tax_id.created', { id: 'txi_rolled', object: 'tax_id' });
    expect((await deliver(event, NEXT_SECRET)).status).toBe(200);
    expect((await deliver(stripeEvent('customer.tax_id.created', { id: 'txi_2', object: 'tax_id' }), 'whsec_unknown_secret')).status).toBe(400);
    expect(await sql(`select status from stripe_events where stripe_event_id = ?`, [event.id])).toEqual([{ status: 'ignored' }]);
  });

  it('shows the queue and the applied events in /metrics', async () => {
    const id = await subscribe('metrics');
    await server.emulator!.waitForWebhooks();
    const object = await emulator('GET', `/v1/subscriptions/${id}`);
    // Stripe answers slowly: the job is still in the queue when /metrics is read.
    server.emulator!.faults.add({ delayMs: 2_000, count: 5, path: `/v1/subscriptions/${id}`, method: 'GET' });
    expect((await deliver(stripeEvent('customer.subscription.updated', object))).status).toBe(200);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/tollgate_job_queue_depth\{task="stripe_object",state="(waiting|running)"\} [1-9]/);
    expect(text).toMatch(/tollgate_stripe_events_applied_total\{type="customer.subscription.updated",outcome="processed"\} \d+/);
    expect(text).toMatch(/tollgate_stripe_events_applied_total\{type="customer.subscription.updated",outcome="failed"\} [1-9]/);
    expect(text).toMatch(/tollgate_job_wait_seconds_count\{task="stripe_object"\} [1-9]/);
    expect(text).toMatch(/tollgate_webhook_deliveries_total\{type="customer.subscription.updated",outcome="recorded"\} [1-9]/);
    await server.waitForJobs();
  });
});
