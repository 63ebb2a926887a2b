import { catalogCacheFor } from '../../src/billing/catalog/catalog-cache';
import { SubscriptionService } from '../../src/billing/subscriptions/subscription.service';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const FIELDS = `id status quantity cancelAtPeriodEnd canceledAt trialEnd currentPeriodStart currentPeriodEnd createdAt
  product { code } price { lookupKey unitAmount interval }`;
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { clientSecret subscription { ${FIELDS} } } }`;
const UPDATE = `mutation($input: UpdateSubscriptionInput!) { updateSubscription(input: $input) { ${FIELDS} } }`;
const CANCEL = `mutation($id: ID!, $atPeriodEnd: Boolean!) { cancelSubscription(id: $id, atPeriodEnd: $atPeriodEnd) { ${FIELDS} } }`;
const RESUME = `mutation($id: ID!) { resumeSubscription(id: $id) { ${FIELDS} } }`;
const LIST = `query($status: SubscriptionStatus) { subscriptions(status: $status) { ${FIELDS} } }`;

async function stripeCount(server: TestServer, path: string): Promise<number> {
  const res = await fetch(`${server.emulator!.url}${path}${path.includes('?') ? '&' : '?'}limit=100`, {
    headers: { authorization: 'Bearer sk_test_tollgate_local_emulator' },
  });
  return ((await res.json()) as { data: unknown[] }).data.length;
}

describe('subscriptions end to end (HTTP, PostgreSQL, the Stripe emulator)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it('needs a token for everything but the catalog', async () => {
    const res = await server.gql(LIST);
    expect(res.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    const bad = await server.gql(LIST, {}, { authorization: 'Bearer not.a.token' });
    expect(bad.status).toBe(401);
    expect(bad.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('runs the whole lifecycle: start, change plan, change quantity, cancel at period end, resume, cancel now', async () => {
    const alice = await authHeader('alice');
    const started = await server.gql(START, { input: { plan: 'starter', idempotencyKey: 'alice-1' } }, alice);
    expect(started.errors).toBeUndefined();
    const sub = started.data.startSubscription.subscription;
    // default_incomplete: no card yet, so the browser must confirm the first payment.
    expect(sub).toMatchObject({ status: 'INCOMPLETE', quantity: 1, product: { code: 'starter' }, price: { unitAmount: 1900, interval: 'MONTH' } });
    expect(started.data.startSubscription.clientSecret).toMatch(/_secret_/);
    expect(new Date(sub.currentPeriodEnd).getTime()).toBeGreaterThan(new Date(sub.currentPeriodStart).getTime());

    const again = await server.gql(START, { input: { plan: 'starter', idempotencyKey: 'alice-1' } }, alice);
    expect(again.data.startSubscription.subscription.id).toBe(sub.id);
    expect(await stripeCount(server, '/v1/subscriptions?status=all')).toBe(1);

    const upgraded = await server.gql(UPDATE, { input: { id: sub.id, plan: 'starter', interval: 'YEAR' } }, alice);
    expect(upgraded.errors).toBeUndefined();
    expect(upgraded.data.updateSubscription.price).toMatchObject({ unitAmount: 19900, interval: 'YEAR' });

    const seats = await server.gql(UPDATE, { input: { id: sub.id, quantity: 5 } }, alice);
    expect(seats.data.updateSubscription.quantity).toBe(5);

    const scheduled = await server.gql(CANCEL, { id: sub.id, atPeriodEnd: true }, alice);
    expect(scheduled.data.cancelSubscription).toMatchObject({ cancelAtPeriodEnd: true });
    expect(scheduled.data.cancelSubscription.status).not.toBe('CANCELED');

    const resumed = await server.gql(RESUME, { id: sub.id }, alice);
    expect(resumed.data.resumeSubscription.cancelAtPeriodEnd).toBe(false);

    const ended = await server.gql(CANCEL, { id: sub.id, atPeriodEnd: false }, alice);
    expect(ended.data.cancelSubscription.status).toBe('CANCELED');
    expect(ended.data.cancelSubscription.canceledAt).not.toBeNull();

    const listed = await server.gql(LIST, { status: 'CANCELED' }, alice);
    expect(listed.data.subscriptions.map((s: { id: string }) => s.id)).toEqual([sub.id]);
  });

  it('stores the invoice Stripe answers a start or a plan change with, before (and without) its webhook', async () => {
    const emulator = (route: string, init: RequestInit = {}) =>
      fetch(`${server.emulator!.url}${route}`, { ...init, headers: { authorization: 'Bearer sk_test_tollgate_local_emulator', 'content-type': 'application/x-www-form-urlencoded' } });
    const setDelivery = async (enabled: boolean) => {
      const endpoints = (await (await emulator('/v1/webhook_endpoints')).json()) as { data: { id: string }[] };
      expect(endpoints.data.length).toBeGreaterThan(0);
      for (const endpoint of endpoints.data) {
        expect((await emulator(`/v1/webhook_endpoints/${endpoint.id}`, { method: 'POST', body: `disabled=${!enabled}` })).status).toBe(200);
      }
    };
    const ivy = await authHeader('ivy');
    const invoices = async () =>
      (await server.gql(`{ invoices { edges { node { id status total } } } subscriptions { latestInvoice { id } } }`, {}, ivy)).data as {
        invoices: { edges: { node: { id: string; status: string; total: number } }[] };
        subscriptions: { latestInvoice: { id: string } | null }[];
      };
    await setDelivery(false);
    try {
      const started = await server.gql(START, { input: { plan: 'starter' } }, ivy);
      expect(started.errors).toBeUndefined();
      const first = await invoices();
      expect(first.invoices.edges.map((e) => e.node)).toEqual([{ id: expect.any(String), status: 'OPEN', total: 1900 }]);
      expect(first.subscriptions[0].latestInvoice).toEqual({ id: first.invoices.edges[0].node.id });

      // A new interval is invoiced at once: the change's invoice is listed too.
      const id = started.data.startSubscription.subscription.id;
      expect((await server.gql(UPDATE, { input: { id, plan: 'starter', interval: 'YEAR' } }, ivy)).errors).toBeUndefined();
      const changed = await invoices();
      expect(changed.invoices.edges).toHaveLength(2);
      // Both are Stripe-dated in the same second here, so their order is not asserted.
      const ids = changed.invoices.edges.map((e) => e.node.id);
      const firstId = first.invoices.edges[0].node.id;
      expect(ids).toContain(firstId);
      expect(changed.subscriptions[0].latestInvoice).toEqual({ id: ids.find((i) => i !== firstId) });
      // No event about either invoice was received: the mutations stored them.
      const [{ n }] = await server.orm.em
        .fork()
        .getConnection()
        .execute(`select count(*)::int as n from stripe_events e join invoices i on i.stripe_invoice_id = e.object_id where i.id in (?, ?)`, ids);
      expect(n).toBe(0);
    } finally {
      await setDelivery(true);
    }
  });

  it('shows a first-time caller an empty viewer without creating a row, then the started plan under the same id at once', async () => {
    const jo = await authHeader('jo');
    const VIEWER = `{ viewer { id email subscriptions { status } billingAlerts { code } entitlements { feature active } limits { meter limit used } } }`;
    const active = (viewer: any) => viewer.entitlements.filter((e: { active: boolean }) => e.active).map((e: { feature: string }) => e.feature).sort();
    const empty = (await server.gql(VIEWER, {}, jo)).data.viewer;
    expect(empty).toMatchObject({ email: 'jo@example.com', subscriptions: [], billingAlerts: [], limits: [] });
    expect(active(empty)).toEqual([]);
    const sql = server.orm.em.fork().getConnection();
    expect(await sql.execute(`select id from customers where user_id = 'jo'`)).toEqual([]);

    // What was read for the id before the row existed (features, limits) is not served after it.
    const started = await server.gql(START, { input: { plan: 'pro', trialDays: 7 } }, jo);
    expect(started.errors).toBeUndefined();
    expect(await sql.execute(`select id from customers where user_id = 'jo'`)).toEqual([{ id: empty.id }]);
    const now = (await server.gql(VIEWER, {}, jo)).data.viewer;
    expect(now).toMatchObject({ id: empty.id, subscriptions: [{ status: 'TRIALING' }] });
    expect(now.limits.length).toBeGreaterThan(0);
    await server.emulator!.waitForWebhooks();
    expect(active((await server.gql(VIEWER, {}, jo)).data.viewer)).toEqual(['basic_reports', 'priority_support', 'sso']);
  });

  it('starts a trial as TRIALING with no payment needed, and includes the metered item for pro', async () => {
    const bob = await authHeader('bob');
    const res = await server.gql(START, { input: { plan: 'pro', trialDays: 14 } }, bob);
    expect(res.errors).toBeUndefined();
    expect(res.data.startSubscription.subscription.status).toBe('TRIALING');
    expect(res.data.startSubscription.clientSecret).toBeNull();
    const row = await server.orm.em.fork().getConnection().execute(
      `select items from subscriptions where id = ?`,
      [res.data.startSubscription.subscription.id],
    );
    expect(row[0].items.map((i: { meter: string | null }) => i.meter).sort()).toEqual(['api_calls', null]);
  });

  it('resolves a plan code through STRIPE_PRODUCT_PRICE_MAP when the catalog has no such product', async () => {
    const em = server.orm.em.fork();
    const [row] = await em.getConnection().execute(`select id, stripe_price_id from prices where lookup_key = 'starter_yearly'`);
    const service = new SubscriptionService(em, server.gateway, { priceMap: { team: row.stripe_price_id } });
    expect((await service.resolveRecurringPrice({ plan: 'team' })).id).toBe(row.id);
    await expect(service.resolveRecurringPrice({ plan: 'nope' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('moves between a plan with metered usage and one without in place, in either direction', async () => {
    const judy = await authHeader('judy');
    const sub = (await server.gql(START, { input: { plan: 'starter', trialDays: 5 } }, judy)).data.startSubscription.subscription;
    const up = await server.gql(UPDATE, { input: { id: sub.id, plan: 'pro' } }, judy);
    expect(up.errors).toBeUndefined();
    expect(up.data.updateSubscription).toMatchObject({ id: sub.id, status: 'TRIALING', product: { code: 'pro' } });
    const items = async () =>
      (await server.orm.em.fork().getConnection().execute(`select items from subscriptions where id = ?`, [sub.id]))[0].items.map((i: { meter: string | null }) => i.meter).sort();
    expect(await items()).toEqual(['api_calls', null]);
    const down = await server.gql(UPDATE, { input: { id: sub.id, plan: 'starter', effective: 'IMMEDIATELY' } }, judy);
    expect(down.data.updateSubscription).toMatchObject({ id: sub.id, product: { code: 'starter' } });
    expect(await items()).toEqual([null]);
  });

  it('refuses a second live subscription to the same product with CONFLICT', async () => {
    const carol = await authHeader('carol');
    expect((await server.gql(START, { input: { plan: 'starter' } }, carol)).errors).toBeUndefined();
    const second = await server.gql(START, { input: { plan: 'starter', interval: 'YEAR' } }, carol);
    expect(second.errors?.[0].extensions?.code).toBe('CONFLICT');
  });

  it('creates one Stripe customer when 20 first requests race', async () => {
    const dave = await authHeader('dave');
    const before = await stripeCount(server, '/v1/customers');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => server.gql(START, { input: { plan: i % 2 ? 'starter' : 'pro', trialDays: 7 } }, dave)),
    );
    expect(results.filter((r) => !r.errors)).toHaveLength(2); // one per product; the rest are CONFLICT
    expect(results.filter((r) => r.errors?.[0].extensions?.code === 'CONFLICT')).toHaveLength(18);
    expect((await stripeCount(server, '/v1/customers')) - before).toBe(1);
    const rows = await server.orm.em.fork().getConnection().execute(`select count(*)::int as n from customers where user_id = 'dave'`);
    expect(rows[0].n).toBe(1);
  });

  it('rejects bad input with coded errors and writes nothing', async () => {
    const erin = await authHeader('erin');
    const cases: [Record<string, unknown>, string][] = [
      [{ plan: 'enterprise' }, 'BAD_USER_INPUT'],
      [{ plan: 'starter', quantity: 0 }, 'BAD_USER_INPUT'],
      [{ plan: 'starter', quantity: 1_000_000 }, 'BAD_USER_INPUT'],
      [{ plan: 'starter', trialDays: 0 }, 'BAD_USER_INPUT'],
      [{ plan: 'starter', trialDays: 731 }, 'BAD_USER_INPUT'],
      [{ priceId: 'price_123' }, 'BAD_USER_INPUT'],
      [{ priceId: '00000000-0000-4000-8000-000000000000' }, 'BAD_USER_INPUT'],
      [{}, 'BAD_USER_INPUT'],
    ];
    const oneTime = await server.gql(`{ product(code: "micro-feature") { prices { id } } }`);
    cases.push([{ priceId: oneTime.data.product.prices[0].id }, 'BAD_USER_INPUT']);
    const before = await stripeCount(server, '/v1/subscriptions?status=all');
    for (const [input, code] of cases) {
      const res = await server.gql(START, { input }, erin);
      expect([input, res.errors?.[0].extensions?.code]).toEqual([input, code]);
    }
    expect(await stripeCount(server, '/v1/subscriptions?status=all')).toBe(before);
    const rows = await server.orm.em.fork().getConnection().execute(
      `select count(*)::int as n from subscriptions s join customers c on c.id = s.customer_id where c.user_id = 'erin'`,
    );
    expect(rows[0].n).toBe(0);
  });

  it("answers NOT_FOUND for another customer's subscription, and changes nothing", async () => {
    const owner = await authHeader('frank');
    const intruder = await authHeader('mallory');
    const sub = (await server.gql(START, { input: { plan: 'starter' } }, owner)).data.startSubscription.subscription;
    const attempts = [
      server.gql(`query($id: ID!) { subscription(id: $id) { id } }`, { id: sub.id }, intruder),
      server.gql(UPDATE, { input: { id: sub.id, quantity: 3 } }, intruder),
      server.gql(CANCEL, { id: sub.id, atPeriodEnd: false }, intruder),
      server.gql(RESUME, { id: sub.id }, intruder),
    ];
    for (const res of await Promise.all(attempts)) expect(res.errors?.[0].extensions?.code).toBe('NOT_FOUND');
    const forged = await server.gql(LIST, {}, intruder);
    expect(forged.data.subscriptions).toEqual([]);
    const asOther = await server.gql(`query($c: ID) { subscriptions(customerId: $c) { id } }`, { c: sub.id }, intruder);
    expect(asOther.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    const mine = await server.gql(`query($id: ID!) { subscription(id: $id) { quantity status } }`, { id: sub.id }, owner);
    expect(mine.data.subscription).toEqual({ quantity: 1, status: 'INCOMPLETE' });
    const malformed = await server.gql(`{ subscription(id: "sub_123") { id } }`, {}, owner);
    expect(malformed.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('lets an admin act for a customer', async () => {
    const user = await authHeader('grace');
    await server.gql(START, { input: { plan: 'pro', trialDays: 3 } }, user);
    const viewer = await server.gql(`{ viewer { id email subscriptions { product { code } } } }`, {}, user);
    expect(viewer.data.viewer).toMatchObject({ email: 'grace@example.com', subscriptions: [{ product: { code: 'pro' } }] });
    const admin = await authHeader('root', { admin: true });
    const res = await server.gql(`query($c: ID) { subscriptions(customerId: $c) { product { code } } }`, { c: viewer.data.viewer.id }, admin);
    expect(res.data.subscriptions).toEqual([{ product: { code: 'pro' } }]);
  });

  it('leaves the database as it was when Stripe fails, and answers PAYMENT_PROVIDER_ERROR', async () => {
    const heidi = await authHeader('heidi');
    const sub = (await server.gql(START, { input: { plan: 'starter' } }, heidi)).data.startSubscription.subscription;
    // The webhooks of the start are applied first: their refetches would take the faults meant for the mutations.
    await server.emulator!.waitForWebhooks();
    await fetch(`${server.emulator!.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 500, count: 10, path: '/v1/subscriptions' }),
    });
    try {
      const res = await server.gql(UPDATE, { input: { id: sub.id, quantity: 7 } }, heidi);
      expect(res.errors?.[0].extensions?.code).toBe('PAYMENT_PROVIDER_ERROR');
      const failedStart = await server.gql(START, { input: { plan: 'pro' } }, heidi);
      expect(failedStart.errors?.[0].extensions?.code).toBe('PAYMENT_PROVIDER_ERROR');
    } finally {
      await fetch(`${server.emulator!.url}/_emulator/faults`, { method: 'DELETE' });
    }
    const after = await server.gql(LIST, {}, heidi);
    expect(after.data.subscriptions.map((s: { quantity: number; product: { code: string } }) => [s.product.code, s.quantity])).toEqual([
      ['starter', 1],
    ]);
  });

  it('loads product and price of many subscriptions in one query each (no N+1)', async () => {
    const ivan = await authHeader('ivan');
    await server.gql(START, { input: { plan: 'starter' } }, ivan);
    await server.gql(START, { input: { plan: 'pro', trialDays: 5 } }, ivan);
    // The listener hears every statement on the pool: the webhook jobs the two starts set off
    // (which read prices too) finish first, so only the list request's statements are counted.
    await server.emulator!.waitForWebhooks();
    // From a cold catalog cache: warm, it answers without any query.
    catalogCacheFor(server.orm.em).invalidate();
    const queries: string[] = [];
    const knex = server.orm.em.getConnection().getKnex();
    const listener = (q: { sql: string }) => queries.push(q.sql);
    knex.on('query', listener);
    try {
      const res = await server.gql(LIST, {}, ivan);
      expect(res.data.subscriptions).toHaveLength(2);
    } finally {
      knex.off('query', listener);
    }
    expect(queries.filter((q) => /from "prices"/.test(q))).toHaveLength(1);
    expect(queries.filter((q) => /from "products"/.test(q))).toHaveLength(1);
  });
});

describe('with ENABLE_BILLING=false', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ ENABLE_BILLING: 'false' });
  });
  afterAll(() => server.stop());

  it('keeps the catalog and answers billing mutations with BILLING_DISABLED', async () => {
    const products = await server.gql('{ products { code } }');
    expect(products.data.products).toHaveLength(3);
    const res = await server.gql(START, { input: { plan: 'starter' } }, await authHeader('zoe'));
    expect(res.errors?.[0]).toMatchObject({ message: 'Billing is disabled', extensions: { code: 'BILLING_DISABLED' } });
    expect(server.emulator).toBeUndefined();
  });
});
