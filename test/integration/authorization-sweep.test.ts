import { getNamedType, isInputObjectType, type GraphQLField, type GraphQLSchema } from 'graphql';
import { createSchema } from '../../src/graphql/schema';
import { authHeader, startTestServer, type GqlResponse, type TestServer } from '../helpers/test-server';

/*
 * The authorization sweep: every Query and Mutation field of the schema is called by a second
 * user with the first user's ids, and without a token. The list of fields comes from the schema
 * itself, so an operation added without a case here fails the sweep.
 */

const EMULATOR_KEY = 'Bearer sk_test_tollgate_local_emulator';
const RETURN = 'http://localhost:3000/billing';

/** What user A owns once the fixture is built. */
interface Owned {
  customerId: string;
  /** Pro, active: bought and paid through Checkout (so it has an invoice and usage). */
  proSubscriptionId: string;
  /** Starter, trialing, scheduled to cancel at period end (so it can be resumed). */
  starterSubscriptionId: string;
  completedSessionId: string;
  openSessionId: string;
  usageKey: string;
  starterProductId: string;
  microPriceId: string;
}

interface Case {
  /** Public fields need no token and show everyone the same data. */
  public?: true;
  /** The operation, with variables naming A's objects; it declares $customerId where the field takes one. */
  query: string;
  variables(a: Owned): Record<string, unknown>;
  /**
   * What user B gets with A's ids: an error code (NOT_FOUND or FORBIDDEN), or, for lists and the
   * viewer, a check that the data is B's own (and so holds none of A's objects).
   */
  intruder: 'NOT_FOUND' | 'FORBIDDEN' | ((data: any, a: Owned) => void);
}

const CASES: Record<string, Case> = {
  // ---- queries ------------------------------------------------------------------------------
  products: {
    public: true,
    query: `{ products { id code } }`,
    variables: () => ({}),
    intruder: (data) => expect(data.products.map((p: { code: string }) => p.code).sort()).toEqual(['micro-feature', 'pro', 'starter']),
  },
  product: {
    public: true,
    query: `query($id: ID) { product(id: $id) { id code } }`,
    variables: (a) => ({ id: a.starterProductId }),
    intruder: (data, a) => expect(data.product).toEqual({ id: a.starterProductId, code: 'starter' }),
  },
  subscriptions: {
    query: `query($customerId: ID) { subscriptions(customerId: $customerId) { id } }`,
    variables: () => ({}),
    intruder: (data) => expect(data.subscriptions).toEqual([]),
  },
  subscription: {
    query: `query($id: ID!, $customerId: ID) { subscription(id: $id, customerId: $customerId) { id } }`,
    variables: (a) => ({ id: a.proSubscriptionId }),
    intruder: 'NOT_FOUND',
  },
  viewer: {
    query: `{ viewer { id email subscriptions { id } entitlements { feature active } } }`,
    variables: () => ({}),
    intruder: (data, a) => {
      expect(data.viewer.id).not.toBe(a.customerId);
      expect(data.viewer).toMatchObject({ email: 'mallory@example.com', subscriptions: [] });
      expect(data.viewer.entitlements.filter((e: { active: boolean }) => e.active)).toEqual([]);
    },
  },
  hasEntitlement: {
    query: `query($customerId: ID) { hasEntitlement(feature: "sso", customerId: $customerId) }`,
    variables: () => ({}),
    // Without customerId it answers for the caller alone: A's Pro features are not B's.
    intruder: (data) => expect(data.hasEntitlement).toBe(false),
  },
  checkoutSession: {
    query: `query($id: ID!, $customerId: ID) { checkoutSession(id: $id, customerId: $customerId) { id url } }`,
    variables: (a) => ({ id: a.openSessionId }),
    intruder: 'NOT_FOUND',
  },
  invoices: {
    query: `query($customerId: ID) { invoices(customerId: $customerId) { edges { node { id } } } }`,
    variables: () => ({}),
    intruder: (data) => expect(data.invoices.edges).toEqual([]),
  },
  usage: {
    query: `query($subscriptionId: ID, $customerId: ID) { usage(subscriptionId: $subscriptionId, customerId: $customerId) { total } }`,
    variables: (a) => ({ subscriptionId: a.proSubscriptionId }),
    intruder: 'NOT_FOUND',
  },
  previewSubscriptionChange: {
    query: `query($input: UpdateSubscriptionInput!) { previewSubscriptionChange(input: $input) { amountDueNow amountDueAtRenewal } }`,
    variables: (a) => ({ input: { id: a.proSubscriptionId, plan: 'starter' } }),
    intruder: 'NOT_FOUND',
  },
  // ---- mutations ----------------------------------------------------------------------------
  startSubscription: {
    // The only foreign reference it takes is customerId: acting for A is the attack.
    query: `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id } } }`,
    variables: () => ({ input: { plan: 'starter', trialDays: 7, idempotencyKey: 'sweep' } }),
    intruder: 'FORBIDDEN',
  },
  updateSubscription: {
    query: `mutation($input: UpdateSubscriptionInput!) { updateSubscription(input: $input) { id quantity } }`,
    variables: (a) => ({ input: { id: a.starterSubscriptionId, quantity: 9 } }),
    intruder: 'NOT_FOUND',
  },
  cancelSubscription: {
    query: `mutation($id: ID!, $customerId: ID) { cancelSubscription(id: $id, atPeriodEnd: false, customerId: $customerId) { id status } }`,
    variables: (a) => ({ id: a.proSubscriptionId }),
    intruder: 'NOT_FOUND',
  },
  resumeSubscription: {
    query: `mutation($id: ID!, $customerId: ID) { resumeSubscription(id: $id, customerId: $customerId) { id } }`,
    variables: (a) => ({ id: a.starterSubscriptionId }),
    intruder: 'NOT_FOUND',
  },
  cancelPendingChange: {
    query: `mutation($id: ID!, $customerId: ID) { cancelPendingChange(id: $id, customerId: $customerId) { id } }`,
    variables: (a) => ({ id: a.proSubscriptionId }),
    intruder: 'NOT_FOUND',
  },
  createCheckoutSession: {
    query: `mutation($input: CreateCheckoutSessionInput!) { createCheckoutSession(input: $input) { id } }`,
    variables: (a) => ({ input: { priceId: a.microPriceId, successUrl: RETURN, cancelUrl: RETURN } }),
    intruder: 'FORBIDDEN',
  },
  createBillingPortalSession: {
    query: `mutation($customerId: ID) { createBillingPortalSession(returnUrl: "${RETURN}", customerId: $customerId) { url } }`,
    variables: () => ({}),
    intruder: 'FORBIDDEN',
  },
  recordUsage: {
    query: `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id } }`,
    // A's key too: a replay of A's record must not answer with it.
    variables: (a) => ({ input: { subscriptionId: a.proSubscriptionId, quantity: 1, idempotencyKey: a.usageKey } }),
    intruder: 'NOT_FOUND',
  },
  recordUsageBatch: {
    query: `mutation($input: RecordUsageBatchInput!) { recordUsageBatch(input: $input) { results { status record { id } error { code } } } }`,
    // A's subscription and key: each event is answered on its own, and neither records nor replays.
    variables: (a) => ({ input: { events: [{ subscriptionId: a.proSubscriptionId, quantity: 1, idempotencyKey: a.usageKey }, { subscriptionId: a.proSubscriptionId, quantity: 2 }] } }),
    intruder: (data) =>
      expect(data.recordUsageBatch.results).toEqual([
        { status: 'FAILED', record: null, error: { code: 'NOT_FOUND' } },
        { status: 'FAILED', record: null, error: { code: 'NOT_FOUND' } },
      ]),
  },
};

/** Where a field takes `customerId`: as its own argument, inside its input object, or not at all. */
function customerIdPlace(field: GraphQLField<unknown, unknown>): 'arg' | 'input' | null {
  if (field.args.some((a) => a.name === 'customerId')) return 'arg';
  const input = field.args.find((a) => a.name === 'input');
  const type = input && getNamedType(input.type);
  if (type && isInputObjectType(type) && type.getFields().customerId) return 'input';
  return null;
}

function operations(schema: GraphQLSchema): GraphQLField<unknown, unknown>[] {
  return [...Object.values(schema.getQueryType()!.getFields()), ...Object.values(schema.getMutationType()!.getFields())];
}

function withCustomerId(field: GraphQLField<unknown, unknown>, vars: Record<string, unknown>, customerId: string): Record<string, unknown> | null {
  const place = customerIdPlace(field);
  if (place === 'arg') return { ...vars, customerId };
  if (place === 'input') return { ...vars, input: { ...(vars.input as object), customerId } };
  return null;
}

describe('authorization sweep: every query and mutation, as another user and as nobody', () => {
  let server: TestServer;
  let schema: GraphQLSchema;
  let a: Owned;
  let alice: Record<string, string>;
  let mallory: Record<string, string>;

  const sql = (query: string, params: unknown[] = []) => server.orm.em.fork().getConnection().execute(query, params);
  const stripeList = async (path: string) => {
    const res = await fetch(`${server.emulator!.url}${path}${path.includes('?') ? '&' : '?'}limit=100`, { headers: { authorization: EMULATOR_KEY } });
    return ((await res.json()) as { data: { id: string }[] }).data.map((o) => o.id).sort();
  };
  const ok = async <T = any>(res: Promise<GqlResponse<T>>): Promise<T> => {
    const r = await res;
    expect(r.errors).toBeUndefined();
    return r.data as T;
  };

  /** Everything of A's, in our tables and in Stripe, that a foreign call could touch. */
  async function snapshot() {
    const byCustomer = (table: string) => sql(`select * from ${table} where customer_id = ? order by id`, [a.customerId]);
    await server.emulator!.waitForWebhooks();
    return {
      customers: await sql(`select * from customers where id = ?`, [a.customerId]),
      subscriptions: await byCustomer('subscriptions'),
      checkoutSessions: await byCustomer('checkout_sessions'),
      invoices: await byCustomer('invoices'),
      usageEvents: await byCustomer('usage_events'),
      stripe: {
        customers: await stripeList('/v1/customers'),
        subscriptions: await stripeList('/v1/subscriptions?status=all'),
        checkoutSessions: await stripeList('/v1/checkout/sessions'),
        invoices: await stripeList('/v1/invoices'),
        meterEvents: server.emulator!.meterEventCount(),
        // Any write in Stripe leaves an event behind, also for objects that cannot be listed (portal sessions).
        events: server.emulator!.events().length,
      },
    };
  }

  /** A buys a plan through Checkout and pays on the emulator's hosted page. */
  async function buyThroughCheckout(headers: Record<string, string>, productId: string): Promise<string> {
    const created = await ok(
      server.gql(`mutation($input: CreateCheckoutSessionInput!) { createCheckoutSession(input: $input) { id url } }`, { input: { productId, successUrl: RETURN, cancelUrl: RETURN } }, headers),
    );
    const url = created.createCheckoutSession.url;
    const html = await (await fetch(url)).text();
    const action = /<form method="post" action="([^"]+)"/.exec(html)![1];
    const paid = await fetch(new URL(action, url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: 'Alice', card: 'pm_card_visa' }).toString(),
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    await server.emulator!.waitForWebhooks();
    return created.createCheckoutSession.id;
  }

  beforeAll(async () => {
    schema = await createSchema();
    // No forwarder: it would move A's usage rows from pending to sent while the sweep compares them.
    server = await startTestServer({ USAGE_FORWARDER_ENABLED: 'false', RATE_LIMIT_MUTATIONS_PER_MINUTE: '0' });
    alice = await authHeader('alice');
    mallory = await authHeader('mallory');

    const catalog = await ok(server.gql(`{ products { id code prices { id interval } } }`));
    const product = (code: string) => catalog.products.find((p: { code: string }) => p.code === code);

    const completedSessionId = await buyThroughCheckout(alice, product('pro').id);
    const session = await ok(server.gql(`query($id: ID!) { checkoutSession(id: $id) { status subscription { id status } } }`, { id: completedSessionId }, alice));
    expect(session.checkoutSession).toMatchObject({ status: 'complete', subscription: { status: 'ACTIVE' } });
    const proSubscriptionId = session.checkoutSession.subscription.id;

    const usageKey = 'alice-usage-1';
    await ok(server.gql(CASES.recordUsage.query, { input: { subscriptionId: proSubscriptionId, quantity: 5, idempotencyKey: usageKey } }, alice));

    const started = await ok(server.gql(CASES.startSubscription.query, { input: { plan: 'starter', trialDays: 7 } }, alice));
    const starterSubscriptionId = started.startSubscription.subscription.id;
    await ok(server.gql(`mutation($id: ID!) { cancelSubscription(id: $id) { cancelAtPeriodEnd } }`, { id: starterSubscriptionId }, alice));

    const microPriceId = product('micro-feature').prices[0].id;
    const open = await ok(server.gql(CASES.createCheckoutSession.query, { input: { priceId: microPriceId, successUrl: RETURN, cancelUrl: RETURN } }, alice));

    const viewer = await ok(server.gql(`{ viewer { id } }`, {}, alice));
    a = {
      customerId: viewer.viewer.id,
      proSubscriptionId,
      starterSubscriptionId,
      completedSessionId,
      openSessionId: open.createCheckoutSession.id,
      usageKey,
      starterProductId: product('starter').id,
      microPriceId,
    };
    await server.emulator!.waitForWebhooks();
  });
  afterAll(() => server?.stop());

  it('has a case for every query and mutation of the schema, and none for a field that is gone', () => {
    const fields = operations(schema).map((f) => f.name);
    for (const name of fields) {
      if (!CASES[name]) throw new Error(`no authorization case for ${name}`);
    }
    expect(Object.keys(CASES).filter((name) => !fields.includes(name))).toEqual([]);
  });

  it('builds a fixture in which A owns a subscription, sessions, an invoice and a usage record', async () => {
    const state = await snapshot();
    expect(state.subscriptions).toHaveLength(2);
    expect(state.checkoutSessions).toHaveLength(2);
    expect(state.invoices.length).toBeGreaterThanOrEqual(1);
    expect(state.usageEvents).toHaveLength(1);
  });

  it('answers UNAUTHENTICATED without a token for every field that is not public, and serves public ones', async () => {
    for (const field of operations(schema)) {
      const c = CASES[field.name];
      const res = await server.gql(c.query, c.variables(a));
      if (c.public) {
        expect([field.name, res.errors]).toEqual([field.name, undefined]);
      } else {
        expect([field.name, res.errors?.[0]?.extensions?.code, res.data?.[field.name] ?? null]).toEqual([field.name, 'UNAUTHENTICATED', null]);
      }
    }
  });

  it("gives another user NOT_FOUND, FORBIDDEN or only their own data for A's ids, and changes nothing of A's", async () => {
    const before = await snapshot();
    for (const field of operations(schema)) {
      const c = CASES[field.name];
      // Operations that create something take no id of A's but customerId: acting for A is the attack.
      const vars = c.intruder === 'FORBIDDEN' ? withCustomerId(field, c.variables(a), a.customerId) : c.variables(a);
      expect([field.name, vars !== null]).toEqual([field.name, true]);
      const res = await server.gql(c.query, vars!, mallory);
      if (typeof c.intruder === 'string') {
        expect([field.name, res.errors?.[0]?.extensions?.code]).toEqual([field.name, c.intruder]);
        expect([field.name, res.data?.[field.name] ?? null]).toEqual([field.name, null]);
      } else {
        expect([field.name, res.errors]).toEqual([field.name, undefined]);
        c.intruder(res.data, a);
      }
    }
    expect(await snapshot()).toEqual(before);
  });

  it("answers FORBIDDEN to a non-admin naming A's customerId, on every field that takes one, and changes nothing", async () => {
    const before = await snapshot();
    const tried: string[] = [];
    for (const field of operations(schema)) {
      const c = CASES[field.name];
      const vars = withCustomerId(field, c.variables(a), a.customerId);
      if (!vars) continue;
      if (customerIdPlace(field) === 'arg') expect([field.name, c.query.includes('$customerId')]).toEqual([field.name, true]);
      tried.push(field.name);
      const res = await server.gql(c.query, vars, mallory);
      expect([field.name, res.errors?.[0]?.extensions?.code]).toEqual([field.name, 'FORBIDDEN']);
    }
    expect(tried.length).toBeGreaterThanOrEqual(10);
    expect(await snapshot()).toEqual(before);
  });

  it("lets A itself, and an admin for A, see what the intruder could not (the fixture is reachable)", async () => {
    const root = await authHeader('root', { admin: true });
    for (const [headers, customerId] of [[alice, undefined], [root, a.customerId]] as const) {
      const vars = (v: Record<string, unknown>) => (customerId ? { ...v, customerId } : v);
      expect((await ok(server.gql(CASES.subscription.query, vars({ id: a.proSubscriptionId }), headers))).subscription.id).toBe(a.proSubscriptionId);
      expect((await ok(server.gql(CASES.checkoutSession.query, vars({ id: a.completedSessionId }), headers))).checkoutSession.id).toBe(a.completedSessionId);
      expect((await ok(server.gql(CASES.invoices.query, vars({}), headers))).invoices.edges.length).toBeGreaterThanOrEqual(1);
      expect((await ok(server.gql(CASES.usage.query, vars({ subscriptionId: a.proSubscriptionId }), headers))).usage.total).toBe(5);
      expect((await ok(server.gql(CASES.subscriptions.query, vars({}), headers))).subscriptions).toHaveLength(2);
      expect((await ok(server.gql(CASES.hasEntitlement.query, vars({}), headers))).hasEntitlement).toBe(true);
    }
  });
});
