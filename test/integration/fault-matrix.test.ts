import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { authHeader, startTestServer, type GqlResponse, type TestServer } from '../helpers/test-server';

/*
 * The fault matrix, Stripe side: every gateway path the API uses, under each Stripe failure the
 * emulator can inject (429, 500, a delay past the SDK timeout, a dropped connection). Each cell
 * checks what the client sees, that nothing is half-written, and that the same request again,
 * once Stripe is back, converges with no duplicate Stripe objects and no duplicate rows.
 */

const EMULATOR_KEY = 'Bearer sk_test_tollgate_local_emulator';
const RETURN = 'http://localhost:3000/billing';
const TIMEOUT_MS = 300;
/** Longer than the SDK timeout: the request is abandoned by the app but still runs in "Stripe". */
const DELAY_MS = 1200;

type FaultName = '429' | '500' | 'timeout' | 'reset';
const FAULTS: Record<FaultName, Record<string, unknown>> = {
  '429': { status: 429 },
  '500': { status: 500 },
  timeout: { delayMs: DELAY_MS },
  reset: { reset: true },
};

const SUB = 'id status quantity cancelAtPeriodEnd';
const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { ${SUB} } } }`;
const UPDATE = `mutation($input: UpdateSubscriptionInput!) { updateSubscription(input: $input) { ${SUB} } }`;
const CANCEL = `mutation($id: ID!, $atPeriodEnd: Boolean!) { cancelSubscription(id: $id, atPeriodEnd: $atPeriodEnd) { ${SUB} } }`;
const RESUME = `mutation($id: ID!) { resumeSubscription(id: $id) { ${SUB} } }`;
const CHECKOUT = `mutation($input: CreateCheckoutSessionInput!) { createCheckoutSession(input: $input) { id status url } }`;
const SESSION = `query($id: ID!) { checkoutSession(id: $id) { id status } }`;
const PORTAL = `mutation { createBillingPortalSession(returnUrl: "${RETURN}") { url } }`;
const INVOICES = `{ invoices { edges { node { status amountDue } } } }`;

interface Cell {
  user: string;
  fault: FaultName;
  headers: Record<string, string>;
  /** Ids the setup produced (subscription, session). */
  ids: Record<string, string>;
}

interface PathSpec {
  /** Which requests to Stripe fail. */
  fault: { path: string; method: string };
  setup?(cell: Cell): Promise<void>;
  call(cell: Cell): Promise<GqlResponse<any>>;
  /** The code the client gets while Stripe fails; null: the request is answered from our tables. */
  failure: string | null;
  /** Our rows and Stripe's objects for this user, in a comparable form. */
  state(cell: Cell): Promise<unknown>;
  /**
   * After a failure that never reached Stripe: by default nothing changed at all. A step that
   * completed before the failing request (a Stripe customer created and linked) may stay.
   */
  intact?(before: any, after: any): void;
  /** Both sides after the retry: the request took effect once. */
  converged(state: any, cell: Cell): void;
}

describe('fault matrix: Stripe failures on every gateway path', () => {
  let server: TestServer;
  const observed: Record<string, Record<string, unknown>> = {};

  const sql = (query: string, params: unknown[] = []) => server.orm.em.fork().getConnection().execute(query, params);
  const stripe = async (p: string) => {
    const res = await fetch(`${server.emulator!.url}${p}${p.includes('?') ? '&' : '?'}limit=100`, { headers: { authorization: EMULATOR_KEY } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { data: any[] }).data;
  };
  const control = (method: string, body?: unknown) =>
    fetch(`${server.emulator!.url}/_emulator/faults`, { method, headers: { 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
  const ok = async (res: Promise<GqlResponse<any>>) => {
    const r = await res;
    expect(r.errors).toBeUndefined();
    return r.data;
  };

  const stripeCustomerId = async (user: string): Promise<string | null> =>
    (await sql(`select stripe_customer_id from customers where user_id = ?`, [user]))[0]?.stripe_customer_id ?? null;
  /** Stripe customers for the user, found by the email the app gives them. */
  const stripeCustomers = async (user: string) => (await stripe(`/v1/customers?email=${encodeURIComponent(`${user}@example.com`)}`)).length;
  const dbSubscriptions = (user: string) =>
    sql(
      `select s.status, s.quantity, s.cancel_at_period_end as "cancelAtPeriodEnd", s.stripe_subscription_id as "stripeId"
         from subscriptions s join customers c on c.id = s.customer_id where c.user_id = ? order by s.created_at`,
      [user],
    );
  const stripeSubscriptions = async (user: string) => {
    const customers = await stripe(`/v1/customers?email=${encodeURIComponent(`${user}@example.com`)}`);
    const all = [];
    for (const c of customers) all.push(...(await stripe(`/v1/subscriptions?customer=${c.id}&status=all`)));
    return all
      .map((s) => ({ status: s.status, quantity: s.items.data[0].quantity, cancelAtPeriodEnd: s.cancel_at_period_end, stripeId: s.id }))
      .sort((x, y) => x.stripeId.localeCompare(y.stripeId));
  };
  const subscriptionState = async (cell: Cell) => ({
    customers: await stripeCustomers(cell.user),
    db: await dbSubscriptions(cell.user),
    stripe: await stripeSubscriptions(cell.user),
  });
  /** Exactly one subscription, the same on both sides. */
  const oneSubscription = (state: any, expected: Record<string, unknown>) => {
    expect(state.customers).toBe(1);
    expect(state.db).toHaveLength(1);
    expect(state.stripe).toEqual(state.db);
    expect(state.db[0]).toMatchObject(expected);
  };
  const startTrial = async (cell: Cell) => {
    const data = await ok(server.gql(START, { input: { plan: 'starter', trialDays: 7 } }, cell.headers));
    cell.ids.subscription = data.startSubscription.subscription.id;
    await server.emulator!.waitForWebhooks();
  };

  const PATHS: Record<string, PathSpec> = {
    'startSubscription: Stripe customer on first use': {
      fault: { path: '/v1/customers', method: 'POST' },
      call: (c) => server.gql(START, { input: { plan: 'starter', trialDays: 7, idempotencyKey: `${c.user}-k` } }, c.headers),
      failure: 'PAYMENT_PROVIDER_ERROR',
      state: subscriptionState,
      converged: (s) => oneSubscription(s, { status: 'trialing', quantity: 1 }),
    },
    startSubscription: {
      // Create the Stripe customer first, so only the subscription request meets the fault.
      setup: async (c) => void (await ok(server.gql(PORTAL, {}, c.headers))),
      fault: { path: '/v1/subscriptions', method: 'POST' },
      call: (c) => server.gql(START, { input: { plan: 'starter', trialDays: 7, idempotencyKey: `${c.user}-k` } }, c.headers),
      failure: 'PAYMENT_PROVIDER_ERROR',
      state: subscriptionState,
      converged: (s) => oneSubscription(s, { status: 'trialing', quantity: 1 }),
    },
    updateSubscription: {
      setup: startTrial,
      fault: { path: '/v1/subscriptions/', method: 'POST' },
      call: (c) => server.gql(UPDATE, { input: { id: c.ids.subscription, quantity: 3 } }, c.headers),
      failure: 'PAYMENT_PROVIDER_ERROR',
      state: subscriptionState,
      converged: (s) => oneSubscription(s, { status: 'trialing', quantity: 3 }),
    },
    'cancelSubscription (at period end)': {
      setup: startTrial,
      fault: { path: '/v1/subscriptions/', method: 'POST' },
      call: (c) => server.gql(CANCEL, { id: c.ids.subscription, atPeriodEnd: true }, c.headers),
      failure: 'PAYMENT_PROVIDER_ERROR',
      state: subscriptionState,
      converged: (s) => oneSubscription(s, { status: 'trialing', cancelAtPeriodEnd: true }),
    },
    'cancelSubscription (now)': {
      setup: startTrial,
      fault: { path: '/v1/subscriptions/', method: 'DELETE' },
      call: (c) => server.gql(CANCEL, { id: c.ids.subscription, atPeriodEnd: false }, c.headers),
      failure: 'PAYMENT_PROVIDER_ERROR',
      state: subscriptionState,
      converged: (s) => oneSubscription(s, { status: 'canceled' }),
    },
    resumeSubscription: {
      setup: async (c) => {
        await startTrial(c);
        await ok(server.gql(CANCEL, { id: c.ids.subscription, atPeriodEnd: true }, c.headers));
        await server.emulator!.waitForWebhooks();
      },
      fault: { path: '/v1/subscriptions/', method: 'POST' },
      call: (c) => server.gql(RESUME, { id: c.ids.subscription }, c.headers),
      failure: 'PAYMENT_PROVIDER_ERROR',
      state: subscriptionState,
      converged: (s) => oneSubscription(s, { status: 'trialing', cancelAtPeriodEnd: false }),
    },
    createCheckoutSession: {
      setup: async (c) => void (await ok(server.gql(PORTAL, {}, c.headers))),
      fault: { path: '/v1/checkout/sessions', method: 'POST' },
      call: async (c) => {
        const products = await ok(server.gql(`{ products { id code } }`));
        const micro = products.products.find((p: { code: string }) => p.code === 'micro-feature').id;
        return server.gql(CHECKOUT, { input: { productId: micro, successUrl: RETURN, cancelUrl: RETURN } }, c.headers);
      },
      failure: 'PAYMENT_PROVIDER_ERROR',
      state: async (c) => {
        const rows = (await sql(
          `select s.stripe_session_id as id, s.status from checkout_sessions s join customers c on c.id = s.customer_id where c.user_id = ?`,
          [c.user],
        )) as { id: string; status: string }[];
        const customer = await stripeCustomerId(c.user);
        const inStripe = customer ? await stripe(`/v1/checkout/sessions?customer=${customer}`) : [];
        return {
          db: rows,
          // Sessions our table knows, and open sessions nobody was given the URL of.
          stripeKnown: inStripe.filter((s) => rows.some((r) => r.id === s.id)).map((s) => ({ id: s.id, status: s.status })),
          stripeOrphans: inStripe.filter((s) => !rows.some((r) => r.id === s.id)).length,
        };
      },
      converged: (s, c) => {
        expect(s.db).toHaveLength(1);
        expect(s.stripeKnown).toEqual(s.db);
        // The API takes no idempotency key here: a session Stripe created after the app gave up
        // stays open and unreferenced (its URL was never given out) until Stripe expires it.
        expect(s.stripeOrphans).toBe(c.fault === 'timeout' ? 1 : 0);
      },
    },
    'checkoutSession (read from Stripe while open)': {
      setup: async (c) => {
        const products = await ok(server.gql(`{ products { id code } }`));
        const micro = products.products.find((p: { code: string }) => p.code === 'micro-feature').id;
        const created = await ok(server.gql(CHECKOUT, { input: { productId: micro, successUrl: RETURN, cancelUrl: RETURN } }, c.headers));
        c.ids.session = created.createCheckoutSession.id;
      },
      fault: { path: '/v1/checkout/sessions/', method: 'GET' },
      call: (c) => server.gql(SESSION, { id: c.ids.session }, c.headers),
      failure: 'PAYMENT_PROVIDER_ERROR',
      state: async (c) => sql(`select status, url, expires_at from checkout_sessions where id = ?`, [c.ids.session]),
      converged: (s) => expect(s).toEqual([expect.objectContaining({ status: 'open' })]),
    },
    createBillingPortalSession: {
      fault: { path: '/v1/billing_portal/sessions', method: 'POST' },
      call: (c) => server.gql(PORTAL, {}, c.headers),
      failure: 'PAYMENT_PROVIDER_ERROR',
      state: async (c) => ({ customers: await stripeCustomers(c.user), linked: Boolean(await stripeCustomerId(c.user)) }),
      // The customer is created on first use before the portal request; it is whole and linked, and the retry reuses it.
      intact: (_before, after) => expect(after).toEqual({ customers: 1, linked: true }),
      converged: (s) => expect(s).toEqual({ customers: 1, linked: true }),
    },
    'invoices (from our table: Stripe is not asked)': {
      // No trial: Stripe opens the first invoice at once, and startSubscription stores it.
      setup: async (c) => void (await ok(server.gql(START, { input: { plan: 'starter' } }, c.headers))),
      fault: { path: '/v1/invoices', method: 'GET' },
      call: async (c) => {
        const res = await server.gql(INVOICES, {}, c.headers);
        // Answered from the table while Stripe's invoice list fails, which it never asked.
        expect(res.data?.invoices.edges.map((e: any) => e.node)).toEqual([{ status: 'OPEN', amountDue: expect.any(Number) }]);
        const faults = (await (await control('GET')).json()) as { faults: { path?: string; count: number; remaining: number }[] };
        for (const f of faults.faults.filter((f) => f.path === '/v1/invoices')) expect(f.remaining).toBe(f.count);
        return res;
      },
      failure: null,
      state: async (c) => {
        const customer = await stripeCustomerId(c.user);
        return {
          db: (await sql(`select i.status from invoices i join customers c on c.id = i.customer_id where c.user_id = ?`, [c.user])).length,
          stripe: customer ? (await stripe(`/v1/invoices?customer=${customer}`)).length : 0,
        };
      },
      converged: (s) => expect(s).toEqual({ db: 1, stripe: 1 }),
    },
  };

  beforeAll(async () => {
    server = await startTestServer({
      STRIPE_TIMEOUT_MS: String(TIMEOUT_MS),
      STRIPE_MAX_NETWORK_RETRIES: '1',
      RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
      USAGE_FORWARDER_ENABLED: 'false',
    });
  });
  afterEach(() => control('DELETE'));
  afterAll(async () => {
    await server?.stop();
    // What the matrix saw, for the Reliability section of the README.
    mkdirSync(path.resolve(__dirname, '../../test-output'), { recursive: true });
    writeFileSync(path.resolve(__dirname, '../../test-output/fault-matrix-stripe.json'), JSON.stringify(observed, null, 2));
  });

  const cells = Object.keys(PATHS).flatMap((name) => (Object.keys(FAULTS) as FaultName[]).map((fault) => [name, fault] as const));

  it.each(cells)('%s under Stripe %s', async (name, faultName) => {
    const spec = PATHS[name];
    const user = `${name.split(' ')[0].replace(/[^a-z]/gi, '')}-${faultName}-${Math.random().toString(36).slice(2, 8)}`.toLowerCase();
    const cell: Cell = { user, fault: faultName, headers: await authHeader(user), ids: {} };
    await spec.setup?.(cell);
    await server.emulator!.waitForWebhooks();
    const before = await spec.state(cell);

    const added = await control('POST', { ...FAULTS[faultName], count: 20, ...spec.fault });
    expect(added.status).toBe(200);
    const failed = await spec.call(cell);
    await control('DELETE');
    // A delayed request still runs in Stripe after the app gave up on it; let it land, and its webhooks.
    if (faultName === 'timeout') await new Promise((r) => setTimeout(r, DELAY_MS * 2));
    await server.emulator!.waitForWebhooks();
    const afterFailure = await spec.state(cell);

    const code = failed.errors?.[0]?.extensions?.code ?? null;
    expect(code).toBe(spec.failure);
    if (spec.failure) expect(failed.errors?.[0]?.message).not.toMatch(/sk_|whsec_|stack|at \w+ \(/);
    // A request that never reached Stripe changed nothing, on either side.
    if (faultName !== 'timeout') {
      if (spec.intact) spec.intact(before, afterFailure);
      else expect(afterFailure).toEqual(before);
    }

    const retried = await spec.call(cell);
    await server.emulator!.waitForWebhooks();
    const final = await spec.state(cell);
    observed[`${name} × ${faultName}`] = {
      client: code ?? 'data (from our table)',
      afterFailure,
      retry: retried.errors?.[0]?.extensions?.code ?? 'ok',
      final,
    };
    expect(retried.errors).toBeUndefined();
    spec.converged(final, cell);
  });
});
