import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';
import { stripeEvent, stripeSignature } from '../helpers/stripe-signature';

const SECRET = 'whsec_tollgate_webhook_test_secret_0123456789';
const EMULATOR_KEY = 'Bearer sk_test_tollgate_local_emulator';

/** Signs like Stripe: HMAC-SHA256 over `t.payload` with the endpoint secret, hex encoded. */
const sign = (payload: string, secret = SECRET, timestamp?: number) => stripeSignature(payload, secret, timestamp);

describe('Stripe webhooks (HTTP, PostgreSQL, the Stripe emulator)', () => {
  let server: TestServer;
  let endpoint: string;

  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const deliver = (event: object, secret = SECRET) => {
    const body = JSON.stringify(event);
    return post(body, { 'stripe-signature': sign(body, secret) });
  };
  const eventRows = (stripeEventId?: string) =>
    server.orm.em
      .fork()
      .getConnection()
      .execute(
        `select stripe_event_id, type, status, attempts, error, processed_at from stripe_events ${stripeEventId ? 'where stripe_event_id = ?' : ''}`,
        stripeEventId ? [stripeEventId] : [],
      );
  const emulator = async (method: string, path: string, form?: Record<string, string>) => {
    const res = await fetch(`${server.emulator!.url}${path}`, {
      method,
      headers: { authorization: EMULATOR_KEY, ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    expect(res.status).toBe(200);
    return (await res.json()) as any;
  };

  beforeAll(async () => {
    server = await startTestServer({ STRIPE_WEBHOOK_SECRET: SECRET });
    endpoint = `${server.url}/webhooks/stripe`;
  });
  afterAll(() => server.stop());

  describe('rejects anything unverified with 400 and stores nothing', () => {
    const event = () => stripeEvent('product.updated', { id: 'prod_x', object: 'product', name: 'X', active: true });

    it('a tampered body', async () => {
      const body = JSON.stringify(event());
      const header = sign(body);
      const res = await post(body.replace('"X"', '"Y"'), { 'stripe-signature': header });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: expect.any(String) });
    });

    it('a signature made with another secret', async () => {
      const res = await deliver(event(), 'whsec_someone_else');
      expect(res.status).toBe(400);
    });

    it('a stale timestamp (older than 300 s)', async () => {
      const body = JSON.stringify(event());
      const res = await post(body, { 'stripe-signature': sign(body, SECRET, Math.floor(Date.now() / 1000) - 301) });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatch(/too old/);
    });

    it('a missing Stripe-Signature header', async () => {
      const res = await post(JSON.stringify(event()));
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatch(/Missing/);
    });

    it('a correctly signed body that is not JSON', async () => {
      const body = 'this is not json {';
      const res = await post(body, { 'stripe-signature': sign(body), 'content-type': 'text/plain' });
      expect(res.status).toBe(400);
    });

    it('an event whose livemode does not match the key', async () => {
      const res = await deliver(stripeEvent('product.updated', { id: 'prod_x', object: 'product', name: 'X' }, { livemode: true }));
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatch(/livemode/);
    });

    afterAll(async () => {
      expect(await eventRows()).toEqual([]);
    });
  });

  it('records 10 identical deliveries arriving at once as one event, processed once', async () => {
    const products = await emulator('GET', '/v1/products?limit=100');
    const product = products.data[0];
    const event = stripeEvent('product.updated', product);
    const body = JSON.stringify(event);
    const header = sign(body);
    const responses = await Promise.all(Array.from({ length: 10 }, () => post(body, { 'stripe-signature': header })));
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    const bodies = await Promise.all(responses.map((r) => r.json()));
    expect(bodies.filter((b) => b.duplicate !== true)).toHaveLength(1);
    await server.waitForJobs();
    const rows = await eventRows(event.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'processed', attempts: 1, error: null });
    expect(rows[0].processed_at).not.toBeNull();
  });

  it('stores an event type it does not handle as ignored and answers 200', async () => {
    const event = stripeEvent('customer.tax_id.created', { id: 'txi_1', object: 'tax_id' });
    const res = await deliver(event);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: true, status: 'ignored' });
    expect(await eventRows(event.id)).toEqual([expect.objectContaining({ type: 'customer.tax_id.created', status: 'ignored' })]);
  });

  it('ignores a subscription of a customer that is not ours', async () => {
    const event = stripeEvent('customer.subscription.updated', {
      id: 'sub_not_ours',
      object: 'subscription',
      customer: 'cus_not_ours',
      status: 'active',
      items: { object: 'list', data: [] },
      created: Math.floor(Date.now() / 1000),
    });
    const res = await deliver(event);
    expect(res.status).toBe(200);
    await server.waitForJobs();
    expect(await eventRows(event.id)).toEqual([expect.objectContaining({ status: 'ignored' })]);
  });

  it('applies a subscription changed in Stripe directly (the emulator delivers the event)', async () => {
    const carol = await authHeader('carol');
    const started = await server.gql(
      `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id cancelAtPeriodEnd } } }`,
      { input: { plan: 'starter' } },
      carol,
    );
    expect(started.errors).toBeUndefined();
    const id = started.data.startSubscription.subscription.id;
    expect(started.data.startSubscription.subscription.cancelAtPeriodEnd).toBe(false);
    const [row] = await server.orm.em.fork().getConnection().execute(`select stripe_subscription_id from subscriptions where id = ?`, [id]);

    await emulator('POST', `/v1/subscriptions/${row.stripe_subscription_id}`, { cancel_at_period_end: 'true' });
    await server.emulator!.waitForWebhooks();

    const read = await server.gql(`query($id: ID!) { subscription(id: $id) { id cancelAtPeriodEnd } }`, { id }, carol);
    expect(read.errors).toBeUndefined();
    expect(read.data.subscription).toEqual({ id, cancelAtPeriodEnd: true });

    const events = await server.orm.em
      .fork()
      .getConnection()
      .execute(`select type, status from stripe_events where type like 'customer.subscription.%'`);
    expect(events).toContainEqual({ type: 'customer.subscription.updated', status: 'processed' });
    expect(events.filter((e: any) => e.status === 'failed')).toEqual([]);
  });

  it('applies a product renamed in Stripe to the catalog', async () => {
    const before = await server.gql(`{ products { code name } }`);
    const [rowBefore] = await server.orm.em.fork().getConnection().execute(`select stripe_product_id from products where code = 'starter'`);
    await emulator('POST', `/v1/products/${rowBefore.stripe_product_id}`, { name: 'Starter (renamed)' });
    await server.emulator!.waitForWebhooks();

    const after = await server.gql(`{ products { code name } }`);
    expect(before.data.products.find((p: any) => p.code === 'starter').name).not.toBe('Starter (renamed)');
    expect(after.data.products.find((p: any) => p.code === 'starter').name).toBe('Starter (renamed)');
  });
});
