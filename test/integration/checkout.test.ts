import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkRedirectUrl } from '../../src/billing/checkout/redirect-url';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const EMULATOR_KEY = 'Bearer sk_test_tollgate_local_emulator';
const APP_ORIGIN = 'https://app.example.com';

const SESSION = 'id url status mode paymentStatus quantity expiresAt completedAt product { code } price { unitAmount interval } subscription { id status product { code } }';
const CREATE = `mutation($input: CreateCheckoutSessionInput!) { createCheckoutSession(input: $input) { ${SESSION} } }`;
const GET = `query($id: ID!) { checkoutSession(id: $id) { ${SESSION} } }`;
const SUBSCRIPTIONS = `{ subscriptions { id status product { code } price { unitAmount } } }`;
const INVOICES = `{ invoices { edges { node { status currency amountDue amountPaid total paidAt hostedInvoiceUrl } } pageInfo { hasNextPage } } }`;
const PRODUCTS = `{ products { id code prices { id interval usageType } } }`;
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id status product { code } } } }`;

const BAD_URLS = [
  'javascript:alert(1)',
  '//evil.com/ok',
  'https://evil.com/ok',
  'https://app.example.com.evil.com/ok',
  'https://app.example.com@evil.com/ok',
  '/billing/ok',
  'billing/ok',
  'ftp://app.example.com/ok',
  'data:text/html,hi',
  ' https://app.example.com/ok',
  'https://app.example.com\\@evil.com/ok',
  '',
];

/** A stand-in for the frontend's success page: records what the browser was sent to. */
async function startReturnSite(): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    res.setHeader('content-type', 'text/plain');
    res.end('back in the app');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, hits, close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** What a customer does on the emulator's hosted page: open it, then press Pay with a test card. */
async function payOnHostedPage(sessionUrl: string, card = 'pm_card_visa'): Promise<Response> {
  const page = await fetch(sessionUrl);
  expect(page.status).toBe(200);
  const html = await page.text();
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  expect(action).toBeDefined();
  const form = new URLSearchParams({ name: 'Test Customer', card });
  if (html.includes('name="email"')) form.set('email', 'customer@example.com');
  return fetch(new URL(action!, sessionUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    redirect: 'follow',
  });
}

describe('checkRedirectUrl', () => {
  const policy = { allowedOrigins: [APP_ORIGIN, 'http://shop.example.org:8080/'], allowLoopback: false };

  it('accepts absolute http(s) URLs on an allowed origin, keeping them exactly as given', () => {
    const url = `${APP_ORIGIN}/billing/done?session={CHECKOUT_SESSION_ID}`;
    expect(checkRedirectUrl(url, 'successUrl', policy)).toBe(url);
    expect(checkRedirectUrl('HTTPS://APP.EXAMPLE.COM/x', 'successUrl', policy)).toBe('HTTPS://APP.EXAMPLE.COM/x');
    expect(checkRedirectUrl('http://shop.example.org:8080/back', 'returnUrl', policy)).toBe('http://shop.example.org:8080/back');
  });

  it.each(BAD_URLS)('refuses %j', (url) => {
    expect(() => checkRedirectUrl(url, 'successUrl', policy)).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT' }));
  });

  it('refuses another port or scheme of an allowed host', () => {
    expect(() => checkRedirectUrl('http://app.example.com/ok', 'successUrl', policy)).toThrow();
    expect(() => checkRedirectUrl('https://app.example.com:8443/ok', 'successUrl', policy)).toThrow();
  });

  it('allows localhost and 127.0.0.1 on any port only when loopback is allowed (local mode)', () => {
    expect(() => checkRedirectUrl('http://localhost:3000/ok', 'successUrl', policy)).toThrow();
    const local = { ...policy, allowLoopback: true };
    expect(checkRedirectUrl('http://localhost:3000/ok', 'successUrl', local)).toBe('http://localhost:3000/ok');
    expect(checkRedirectUrl('http://127.0.0.1:5173/ok', 'successUrl', local)).toBe('http://127.0.0.1:5173/ok');
    expect(() => checkRedirectUrl('http://localhost.evil.com/ok', 'successUrl', local)).toThrow();
    expect(() => checkRedirectUrl('http://127.0.0.2/ok', 'successUrl', local)).toThrow();
  });
});

describe('Checkout end to end (HTTP, PostgreSQL, the Stripe emulator)', () => {
  let server: TestServer;
  let site: Awaited<ReturnType<typeof startReturnSite>>;
  let dataDir: string;
  let productIds: Record<string, string>;

  const stripe = async (method: string, path: string, form?: Record<string, string>) => {
    const res = await fetch(`${server.emulator!.url}${path}`, {
      method,
      headers: { authorization: EMULATOR_KEY, ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    expect(res.status).toBe(200);
    return (await res.json()) as any;
  };
  const stripeCount = async (path: string) => (await stripe('GET', `${path}${path.includes('?') ? '&' : '?'}limit=100`)).data.length as number;
  const setWebhooks = async (enabled: boolean) => {
    for (const endpoint of (await stripe('GET', '/v1/webhook_endpoints?limit=100')).data) {
      await stripe('POST', `/v1/webhook_endpoints/${endpoint.id}`, { disabled: String(!enabled) });
    }
  };
  const sql = () => server.orm.em.fork().getConnection();
  const stripeSessionOf = async (id: string) => (await sql().execute('select stripe_session_id from checkout_sessions where id = ?', [id]))[0].stripe_session_id as string;
  const stripeCustomerOf = async (userId: string) => (await sql().execute('select stripe_customer_id from customers where user_id = ?', [userId]))[0].stripe_customer_id as string;
  const urls = () => ({ successUrl: `${site.url}/billing/done?session={CHECKOUT_SESSION_ID}`, cancelUrl: `${APP_ORIGIN}/billing` });

  beforeAll(async () => {
    // The emulator keeps its state in DATA_DIR: a directory of its own keeps counts exact.
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-checkout-'));
    server = await startTestServer({ ALLOWED_REDIRECT_ORIGINS: APP_ORIGIN, DATA_DIR: dataDir });
    site = await startReturnSite();
    const products = await server.gql(PRODUCTS);
    productIds = Object.fromEntries(products.data.products.map((p: { code: string; id: string }) => [p.code, p.id]));
  });
  afterAll(async () => {
    await site.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  describe('createCheckoutSession', () => {
    it('needs a token', async () => {
      const res = await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } });
      expect(res.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    });

    it('refuses every URL off the allowed origins with BAD_USER_INPUT and creates nothing in Stripe', async () => {
      const mallory = await authHeader('mallory');
      const sessions = await stripeCount('/v1/checkout/sessions');
      const customers = await stripeCount('/v1/customers');
      for (const bad of BAD_URLS) {
        for (const field of ['successUrl', 'cancelUrl'] as const) {
          const res = await server.gql(CREATE, { input: { productId: productIds.starter, ...urls(), [field]: bad } }, mallory);
          expect({ bad, field, code: res.errors?.[0].extensions?.code }).toEqual({ bad, field, code: 'BAD_USER_INPUT' });
        }
      }
      expect(await stripeCount('/v1/checkout/sessions')).toBe(sessions);
      expect(await stripeCount('/v1/customers')).toBe(customers);
    });

    it('accepts an allowed origin and, in local mode, localhost on any port', async () => {
      const carol = await authHeader('carol');
      const allowed = await server.gql(CREATE, { input: { productId: productIds.starter, successUrl: `${APP_ORIGIN}/ok`, cancelUrl: 'http://localhost:3000/no' } }, carol);
      expect(allowed.errors).toBeUndefined();
      expect(allowed.data.createCheckoutSession).toMatchObject({ status: 'open', mode: 'subscription', paymentStatus: 'unpaid', subscription: null });
      expect(allowed.data.createCheckoutSession.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/checkout\/cs_test_/);
      expect(new Date(allowed.data.createCheckoutSession.expiresAt).getTime()).toBeGreaterThan(Date.now());
    });

    it('refuses unknown and malformed products, and bad quantities', async () => {
      const dave = await authHeader('dave');
      const cases = [
        { productId: '00000000-0000-4000-8000-000000000000' },
        { productId: 'starter' },
        { productId: productIds.starter, quantity: 0 },
        {},
      ];
      for (const input of cases) {
        const res = await server.gql(CREATE, { input: { ...urls(), ...input } }, dave);
        expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      }
    });
  });

  describe('checkoutSession', () => {
    it('answers NOT_FOUND for another user\'s session and for unknown ids, BAD_USER_INPUT for malformed ids', async () => {
      const erin = await authHeader('erin');
      const created = await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, erin);
      const id = created.data.createCheckoutSession.id;
      expect((await server.gql(GET, { id }, erin)).data.checkoutSession.status).toBe('open');

      const frank = await authHeader('frank');
      expect((await server.gql(GET, { id }, frank)).errors?.[0].extensions?.code).toBe('NOT_FOUND');
      expect((await server.gql(GET, { id: '00000000-0000-4000-8000-000000000000' }, erin)).errors?.[0].extensions?.code).toBe('NOT_FOUND');
      expect((await server.gql(GET, { id: 'cs_test_123' }, erin)).errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    });
  });

  describe('the whole flow', () => {
    it('subscribes to Starter through the hosted page, and the return page sees it complete before any webhook', async () => {
      await setWebhooks(false);
      try {
        const alice = await authHeader('alice');
        const created = await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, alice);
        expect(created.errors).toBeUndefined();
        const session = created.data.createCheckoutSession;

        const landed = await payOnHostedPage(session.url);
        expect(landed.status).toBe(200);
        expect(await landed.text()).toBe('back in the app');
        const stripeSessionId = new URL(landed.url).searchParams.get('session');
        expect(stripeSessionId).toMatch(/^cs_test_/);

        const back = await server.gql(GET, { id: session.id }, alice);
        expect(back.errors).toBeUndefined();
        expect(back.data.checkoutSession).toMatchObject({
          id: session.id,
          status: 'complete',
          mode: 'subscription',
          paymentStatus: 'paid',
          url: null,
          subscription: { status: 'ACTIVE', product: { code: 'starter' } },
        });
        expect(back.data.checkoutSession.completedAt).not.toBeNull();

        const subs = await server.gql(SUBSCRIPTIONS, {}, alice);
        expect(subs.data.subscriptions).toEqual([
          expect.objectContaining({ status: 'ACTIVE', product: { code: 'starter' }, price: { unitAmount: 1900 } }),
        ]);

        // `invoices` reads our table only: the invoice arrives with its events (below).
        const invoices = await server.gql(INVOICES, {}, alice);
        expect(invoices.errors).toBeUndefined();
        expect(invoices.data.invoices.edges).toEqual([]);

        // A second live subscription to the same product is refused before Stripe is asked.
        const sessions = await stripeCount('/v1/checkout/sessions');
        const again = await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, alice);
        expect(again.errors?.[0].extensions?.code).toBe('CONFLICT');
        expect(await stripeCount('/v1/checkout/sessions')).toBe(sessions);
      } finally {
        await setWebhooks(true);
      }
      // The events the endpoint missed are fetched by the catch-up job (run at worker start and on a schedule).
      await sql().execute(`select graphile_worker.add_job('stripe_events_catch_up', '{}'::json, job_key => 'stripe_events_catch_up')`);
      const alice = await authHeader('alice');
      let edges: any[] = [];
      for (const deadline = Date.now() + 30_000; !edges.length && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
        edges = (await server.gql(INVOICES, {}, alice)).data.invoices.edges;
      }
      expect(edges).toHaveLength(1);
      expect(edges[0].node).toMatchObject({ status: 'PAID', currency: 'usd', amountDue: 1900, amountPaid: 1900, total: 1900 });
      expect(edges[0].node.paidAt).not.toBeNull();
      expect(edges[0].node.hostedInvoiceUrl).toMatch(/^http/);
    });

    it('subscribes to Pro with its metered price as a line item, so usage on it is billed', async () => {
      const henry = await authHeader('henry');
      const created = await server.gql(CREATE, { input: { productId: productIds.pro, ...urls() } }, henry);
      expect(created.errors).toBeUndefined();
      expect((await payOnHostedPage(created.data.createCheckoutSession.url)).status).toBe(200);
      const back = await server.gql(GET, { id: created.data.createCheckoutSession.id }, henry);
      expect(back.data.checkoutSession).toMatchObject({ status: 'complete', subscription: { status: 'ACTIVE', product: { code: 'pro' } } });
      const [row] = await server.orm.em
        .fork()
        .getConnection()
        .execute(`select s.items from subscriptions s join customers c on c.id = s.customer_id where c.user_id = 'henry'`);
      expect(row.items.map((i: { meter: string | null }) => i.meter).sort()).toEqual(['api_calls', null]);
    });

    it('is completed by the webhook alone: session, subscription and paid invoice are in the database without a read', async () => {
      const grace = await authHeader('grace');
      const created = await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, grace);
      const id = created.data.createCheckoutSession.id;
      expect((await payOnHostedPage(created.data.createCheckoutSession.url)).status).toBe(200);
      await server.emulator!.waitForWebhooks();

      const sql = server.orm.em.fork().getConnection();
      const [session] = await sql.execute('select status, payment_status, completed_at, customer_id, stripe_subscription_id from checkout_sessions where id = ?', [id]);
      expect(session).toMatchObject({ status: 'complete', payment_status: 'paid' });
      expect(session.completed_at).not.toBeNull();
      const subs = await sql.execute('select status from subscriptions where customer_id = ? and stripe_subscription_id = ?', [session.customer_id, session.stripe_subscription_id]);
      expect(subs).toEqual([{ status: 'active' }]);
      const invoices = await sql.execute('select status, amount_paid, currency from invoices where customer_id = ?', [session.customer_id]);
      expect(invoices).toEqual([{ status: 'paid', amount_paid: 1900, currency: 'usd' }]);
      const events = await sql.execute(
        `select type, status from stripe_events where type in ('checkout.session.completed', 'invoice.paid') and payload->'data'->'object'->>'customer' = (select stripe_customer_id from customers where id = ?)`,
        [session.customer_id],
      );
      expect(events).toEqual(expect.arrayContaining([{ type: 'checkout.session.completed', status: 'processed' }, { type: 'invoice.paid', status: 'processed' }]));

      const back = await server.gql(GET, { id }, grace);
      expect(back.data.checkoutSession).toMatchObject({ status: 'complete', subscription: { status: 'ACTIVE' } });
    });

    it('buys the one-time micro-feature in payment mode', async () => {
      const bob = await authHeader('bob');
      const created = await server.gql(CREATE, { input: { productId: productIds['micro-feature'], ...urls() } }, bob);
      expect(created.errors).toBeUndefined();
      expect(created.data.createCheckoutSession).toMatchObject({ mode: 'payment', status: 'open' });
      const stripeSession = await stripe('GET', `/v1/checkout/sessions/${(await server.orm.em.fork().getConnection().execute(
        'select stripe_session_id from checkout_sessions where id = ?',
        [created.data.createCheckoutSession.id],
      ))[0].stripe_session_id}`);
      expect(stripeSession).toMatchObject({ mode: 'payment', amount_total: 49900, currency: 'usd', client_reference_id: created.data.createCheckoutSession.id });

      expect((await payOnHostedPage(created.data.createCheckoutSession.url)).status).toBe(200);
      const back = await server.gql(GET, { id: created.data.createCheckoutSession.id }, bob);
      expect(back.data.checkoutSession).toMatchObject({
        status: 'complete',
        mode: 'payment',
        paymentStatus: 'paid',
        quantity: 1,
        product: { code: 'micro-feature' },
        price: { unitAmount: 49900, interval: null },
        subscription: null,
      });
      expect((await server.gql(SUBSCRIPTIONS, {}, bob)).data.subscriptions).toEqual([]);
    });

    it('expires the open session when a new one for the same product is made, so only one of them can be paid', async () => {
      const ivan = await authHeader('ivan');
      const first = (await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, ivan)).data.createCheckoutSession;
      const second = await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, ivan);
      expect(second.errors).toBeUndefined();
      expect(second.data.createCheckoutSession).toMatchObject({ status: 'open', mode: 'subscription' });

      expect((await server.gql(GET, { id: first.id }, ivan)).data.checkoutSession).toMatchObject({ status: 'expired', url: null, subscription: null });
      expect(await stripe('GET', `/v1/checkout/sessions/${await stripeSessionOf(first.id)}`)).toMatchObject({ status: 'expired' });
      expect((await fetch(first.url)).status).toBe(410);

      expect((await payOnHostedPage(second.data.createCheckoutSession.url)).status).toBe(200);
      await server.emulator!.waitForWebhooks();
      expect((await server.gql(SUBSCRIPTIONS, {}, ivan)).data.subscriptions).toEqual([expect.objectContaining({ status: 'ACTIVE', product: { code: 'starter' } })]);
      expect(await stripeCount(`/v1/subscriptions?status=all&customer=${await stripeCustomerOf('ivan')}`)).toBe(1);
    });

    it('changes nothing when Stripe fails to expire the open session, and succeeds on a retry', async () => {
      const olga = await authHeader('olga');
      const first = (await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, olga)).data.createCheckoutSession;
      const stripeId = await stripeSessionOf(first.id);
      const faults = (method: string, body?: unknown) =>
        fetch(`${server.emulator!.url}/_emulator/faults`, { method, headers: { 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
      expect((await faults('POST', { status: 500, count: 20, path: `/v1/checkout/sessions/${stripeId}/expire`, method: 'POST' })).status).toBeLessThan(300);
      const sessions = await stripeCount('/v1/checkout/sessions');
      try {
        const failed = await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, olga);
        expect(failed.errors?.[0].extensions?.code).toBe('PAYMENT_PROVIDER_ERROR');
      } finally {
        await faults('DELETE');
      }
      // No new session anywhere; the first one is still open and payable, in our table and in Stripe.
      expect(await stripeCount('/v1/checkout/sessions')).toBe(sessions);
      const rows = await sql().execute(`select s.id, s.status from checkout_sessions s join customers c on c.id = s.customer_id where c.user_id = 'olga'`);
      expect(rows).toEqual([{ id: first.id, status: 'open' }]);
      expect(await stripe('GET', `/v1/checkout/sessions/${stripeId}`)).toMatchObject({ status: 'open' });

      const retried = await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, olga);
      expect(retried.errors).toBeUndefined();
      expect((await server.gql(GET, { id: first.id }, olga)).data.checkoutSession.status).toBe('expired');
    });

    it('leaves one session open when two are made at once for the same product', async () => {
      const jane = await authHeader('jane');
      const made = await Promise.all([1, 2].map(() => server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, jane)));
      expect(made.map((r) => r.errors)).toEqual([undefined, undefined]);
      const rows = await sql().execute(
        `select s.status, s.stripe_session_id from checkout_sessions s join customers c on c.id = s.customer_id where c.user_id = 'jane' order by s.status`,
      );
      expect(rows.map((r) => r.status)).toEqual(['expired', 'open']);
      for (const row of rows) expect(await stripe('GET', `/v1/checkout/sessions/${row.stripe_session_id}`)).toMatchObject({ status: row.status });
    });

    it('records a session paid in another tab, and refuses a new session for its product without creating one', async () => {
      await setWebhooks(false);
      try {
        const kate = await authHeader('kate');
        const first = (await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, kate)).data.createCheckoutSession;
        expect((await payOnHostedPage(first.url)).status).toBe(200);

        const sessions = await stripeCount('/v1/checkout/sessions');
        const again = await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, kate);
        expect(again.errors?.[0].extensions?.code).toBe('CONFLICT');
        expect(await stripeCount('/v1/checkout/sessions')).toBe(sessions);
        // No webhook arrived and nobody read the session: the refusal itself recorded it.
        const [row] = await sql().execute('select status, payment_status from checkout_sessions where id = ?', [first.id]);
        expect(row).toEqual({ status: 'complete', payment_status: 'paid' });
        expect((await server.gql(SUBSCRIPTIONS, {}, kate)).data.subscriptions).toEqual([expect.objectContaining({ status: 'ACTIVE', product: { code: 'starter' } })]);
      } finally {
        await setWebhooks(true);
      }
    });

    it('startSubscription expires an open session for the same product, or is refused when it was paid', async () => {
      const liam = await authHeader('liam');
      const open = (await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, liam)).data.createCheckoutSession;
      const started = await server.gql(START, { input: { plan: 'starter' } }, liam);
      expect(started.errors).toBeUndefined();
      expect((await server.gql(GET, { id: open.id }, liam)).data.checkoutSession).toMatchObject({ status: 'expired', url: null });
      expect((await fetch(open.url)).status).toBe(410);

      await setWebhooks(false);
      try {
        const mia = await authHeader('mia');
        const paid = (await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, mia)).data.createCheckoutSession;
        expect((await payOnHostedPage(paid.url)).status).toBe(200);
        const refused = await server.gql(START, { input: { plan: 'starter' } }, mia);
        expect(refused.errors?.[0].extensions?.code).toBe('CONFLICT');
        expect(await stripeCount(`/v1/subscriptions?status=all&customer=${await stripeCustomerOf('mia')}`)).toBe(1);
        expect((await server.gql(SUBSCRIPTIONS, {}, mia)).data.subscriptions).toEqual([expect.objectContaining({ status: 'ACTIVE', product: { code: 'starter' } })]);
      } finally {
        await setWebhooks(true);
      }
    });

    it('leaves one-time purchases alone: two payment sessions for the same product both stay open', async () => {
      const noah = await authHeader('noah');
      const made = [];
      for (let i = 0; i < 2; i++) made.push((await server.gql(CREATE, { input: { productId: productIds['micro-feature'], ...urls() } }, noah)).data.createCheckoutSession);
      for (const session of made) expect((await server.gql(GET, { id: session.id }, noah)).data.checkoutSession).toMatchObject({ mode: 'payment', status: 'open' });
    });

    it('marks a session Stripe expired as expired (webhook), without a url', async () => {
      const hana = await authHeader('hana');
      const created = await server.gql(CREATE, { input: { productId: productIds.starter, ...urls() } }, hana);
      const id = created.data.createCheckoutSession.id;
      server.emulator!.advanceClock(25 * 3600);
      await server.emulator!.waitForWebhooks();
      const [row] = await server.orm.em.fork().getConnection().execute('select status, url from checkout_sessions where id = ?', [id]);
      expect(row).toEqual({ status: 'expired', url: null });
      expect((await server.gql(GET, { id }, hana)).data.checkoutSession).toMatchObject({ status: 'expired', url: null, subscription: null });
      expect((await fetch(created.data.createCheckoutSession.url)).status).toBe(410);
    });
  });
});
