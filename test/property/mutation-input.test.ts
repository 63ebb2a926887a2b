import fc from 'fast-check';
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLSchema,
} from 'graphql';
import { createSchema } from '../../src/graphql/schema';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

/*
 * Property-based tests over every mutation's input, built from the schema: each argument and
 * input field gets arbitrary values (strings of any kind and length, huge, negative and
 * fractional numbers, wrong types, malformed ids) mixed with valid ones, sent over HTTP as
 * variables. Whatever arrives: never a 500 or INTERNAL_SERVER_ERROR, always data or coded
 * errors, and nothing written (our rows, Stripe's objects) unless the mutation succeeded.
 */

const RUNS = 40;
const RETURN = 'http://localhost:3000/billing';

/** Anything JSON can carry, weighted towards what breaks parsers and validators. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 50 }),
  fc.string({ minLength: 300, maxLength: 5000 }),
  fc.constantFrom('', ' ', '0', '-1', 'NaN', 'Infinity', '1e309', 'null', '🦄🦄', 'é\u0301', '\u0000', "'; drop table customers; --", '{"$gt":""}', 'sub_123', '../../etc/passwd'),
  fc.integer(),
  fc.constantFrom(0, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 + 1, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, 1e-300, 0.5, -0),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.uuid(),
  fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.integer(), fc.string()), { maxKeys: 3 }),
);

describe('every mutation under arbitrary input', () => {
  let server: TestServer;
  let schema: GraphQLSchema;
  let headers: Record<string, string>;
  /** Plausible values by argument or field name, so that some calls get far enough to write. */
  let plausible: Record<string, fc.Arbitrary<unknown>>;
  /** One working call per mutation. */
  let seeds: Record<string, Record<string, unknown>>;

  const sql = (query: string, params: unknown[] = []) => server.orm.em.fork().getConnection().execute(query, params);

  /** All of the user's rows that any mutation could write, and every object Stripe holds (through its event log). */
  async function state() {
    await server.emulator!.waitForWebhooks();
    const user = ['prop'];
    const q = (table: string) =>
      sql(`select t.* from ${table} t join customers c on c.id = t.customer_id where c.user_id = ? order by t.id`, user);
    return {
      customers: await sql(`select * from customers where user_id = ?`, user),
      subscriptions: await q('subscriptions'),
      checkoutSessions: await q('checkout_sessions'),
      usageEvents: await q('usage_events'),
      stripeEvents: server.emulator!.events().length,
    };
  }

  function valueFor(name: string, type: GraphQLInputType, depth = 0): fc.Arbitrary<unknown> {
    const inner = isNonNullType(type) ? type.ofType : type;
    const named = getNamedType(inner);
    let typed: fc.Arbitrary<unknown>;
    if (isListType(inner)) typed = fc.array(valueFor(name, inner.ofType as GraphQLInputType, depth + 1), { maxLength: 3 });
    else if (isInputObjectType(named) && depth < 3) typed = inputObject(named.getFields(), depth + 1);
    else if (isEnumType(named)) typed = fc.constantFrom(...named.getValues().map((v) => v.name));
    else if (named.name === 'Int') typed = fc.oneof(fc.integer({ min: -3, max: 20_000 }), fc.integer());
    else if (named.name === 'Float') typed = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 1, max: 100 }));
    else if (named.name === 'Boolean') typed = fc.boolean();
    else if (named.name === 'DateTimeISO') typed = fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.constant(new Date().toISOString()), fc.string());
    else typed = fc.string({ maxLength: 40 });
    // Junk is rare per field: an input object with several fields would otherwise almost never get past coercion.
    return fc.oneof({ weight: 6, arbitrary: plausible[name] ?? typed }, { weight: 4, arbitrary: typed }, { weight: 1, arbitrary: junk });
  }

  function inputObject(fields: Record<string, { type: GraphQLInputType }>, depth: number): fc.Arbitrary<unknown> {
    const shape = Object.fromEntries(Object.entries(fields).map(([n, f]) => [n, valueFor(n, f.type, depth)]));
    // Any subset of the fields, plus now and then one the type does not have.
    return fc.tuple(fc.record(shape, { requiredKeys: [] }), fc.option(junk, { freq: 15 })).map(([r, extra]) => (extra === null ? r : { ...r, unknownField: extra }));
  }

  /** `mutation($a: T!, ...) { field(a: $a, ...) { __typename } }` and arbitrary variables for it. */
  function operation(field: GraphQLField<unknown, unknown>) {
    const decl = field.args.map((a) => `$${a.name}: ${a.type.toString()}`).join(', ');
    const pass = field.args.map((a) => `${a.name}: $${a.name}`).join(', ');
    const query = `mutation${decl ? `(${decl})` : ''} { ${field.name}${pass ? `(${pass})` : ''} { __typename } }`;
    const arbitrary = fc.record(
      Object.fromEntries(field.args.map((a) => [a.name, fc.oneof({ weight: 5, arbitrary: valueFor(a.name, a.type) }, { weight: 1, arbitrary: fc.constant(undefined) })])),
      { requiredKeys: [] },
    );
    // Near-valid inputs find more than the parser does: a working call with one or two parts
    // replaced by arbitrary values or left out.
    const inputArg = field.args.find((a) => a.name === 'input');
    const inputType = inputArg && getNamedType(inputArg.type);
    const parts: [string[], fc.Arbitrary<unknown>][] = [
      ...field.args.filter((a) => a !== inputArg).map((a) => [[a.name], valueFor(a.name, a.type)] as [string[], fc.Arbitrary<unknown>]),
      ...(inputType && isInputObjectType(inputType)
        ? Object.values(inputType.getFields()).map((f) => [['input', f.name], valueFor(f.name, f.type)] as [string[], fc.Arbitrary<unknown>])
        : []),
    ];
    const change = fc.oneof(...parts.map(([at, value]) => fc.tuple(fc.constant(at), fc.oneof(value, fc.constant(undefined)))));
    const nearValid = fc.array(change, { minLength: 0, maxLength: 2 }).map((changes) => {
      const vars = structuredClone(seeds[field.name]);
      for (const [at, value] of changes) {
        const holder = (at.length === 2 ? (vars.input as Record<string, unknown>) : vars) as Record<string, unknown>;
        if (value === undefined) delete holder[at[at.length - 1]];
        else holder[at[at.length - 1]] = value;
      }
      return vars;
    });
    return { query, variables: fc.oneof(arbitrary, nearValid, nearValid) };
  }

  beforeAll(async () => {
    schema = await createSchema();
    server = await startTestServer({ RATE_LIMIT_MUTATIONS_PER_MINUTE: '0', RATE_LIMIT_USAGE_PER_MINUTE: '0', USAGE_FORWARDER_ENABLED: 'false' });
    headers = await authHeader('prop');
    const catalog = (await server.gql(`{ products(includeInactive: true) { id code prices(includeInactive: true) { id } } }`)).data.products as {
      id: string;
      code: string;
      prices: { id: string }[];
    }[];
    // A Pro subscription on trial: something for update, cancel, resume and recordUsage to act on.
    const started = await server.gql(`mutation { startSubscription(input: { plan: "pro", trialDays: 14 }) { subscription { id } } }`, {}, headers);
    expect(started.errors).toBeUndefined();
    const subscriptionId = started.data.startSubscription.subscription.id as string;
    const customerId = (await server.gql(`{ viewer { id } }`, {}, headers)).data.viewer.id as string;
    const ids = [subscriptionId, customerId, ...catalog.map((p) => p.id), ...catalog.flatMap((p) => p.prices.map((x) => x.id))];
    const micro = catalog.find((p) => p.code === 'micro-feature')!.id;
    seeds = {
      startSubscription: { input: { plan: 'starter', trialDays: 7, idempotencyKey: 'k1' } },
      updateSubscription: { input: { id: subscriptionId, quantity: 2 } },
      cancelSubscription: { id: subscriptionId, atPeriodEnd: true },
      resumeSubscription: { id: subscriptionId },
      cancelPendingChange: { id: subscriptionId },
      createCheckoutSession: { input: { productId: micro, successUrl: RETURN, cancelUrl: RETURN } },
      createBillingPortalSession: { returnUrl: RETURN },
      recordUsage: { input: { subscriptionId, quantity: 1 } },
      recordUsageBatch: { input: { events: [{ subscriptionId, quantity: 1 }, { meter: 'api_calls', quantity: 2, idempotencyKey: 'k2' }] } },
    };
    plausible = {
      plan: fc.constantFrom('starter', 'pro', 'micro-feature', 'enterprise'),
      priceId: fc.constantFrom(...catalog.flatMap((p) => p.prices.map((x) => x.id))),
      productId: fc.constantFrom(...catalog.map((p) => p.id)),
      id: fc.constantFrom(subscriptionId, ...ids),
      subscriptionId: fc.constantFrom(subscriptionId, ...ids),
      customerId: fc.constantFrom(customerId, subscriptionId),
      quantity: fc.integer({ min: 1, max: 3 }),
      trialDays: fc.integer({ min: 1, max: 30 }),
      meter: fc.constantFrom('api_calls', 'nope'),
      idempotencyKey: fc.constantFrom('k1', 'k2', 'k3'),
      successUrl: fc.constantFrom(RETURN, 'https://evil.example/x'),
      cancelUrl: fc.constantFrom(RETURN, 'javascript:alert(1)'),
      returnUrl: fc.constantFrom(RETURN, '//evil.example'),
      occurredAt: fc.constantFrom(new Date().toISOString(), '2001-01-01T00:00:00Z'),
    };
  });
  afterAll(() => server?.stop());

  // cancelSubscription last: once it has ended the subscription, the others can only refuse.
  const mutationNames = ['startSubscription', 'recordUsage', 'recordUsageBatch', 'updateSubscription', 'cancelPendingChange', 'createCheckoutSession', 'createBillingPortalSession', 'resumeSubscription', 'cancelSubscription'];

  it('walks every mutation of the schema', async () => {
    expect(Object.keys((await createSchema()).getMutationType()!.getFields()).sort()).toEqual([...mutationNames].sort());
  });

  it.each(mutationNames)('%s: never a 500, always data or coded errors, nothing written unless it succeeded', async (name) => {
    const { query, variables } = operation(schema.getMutationType()!.getFields()[name]);
    const outcomes: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(variables, async (vars) => {
        const before = await state();
        const res = await server.gql(query, vars, headers);
        expect(res.status).not.toBe(500);
        const codes = (res.errors ?? []).map((e) => e.extensions?.code);
        expect(codes.every((c) => typeof c === 'string' && c !== 'INTERNAL_SERVER_ERROR')).toBe(true);
        const succeeded = !res.errors && res.data?.[name];
        if (!succeeded) {
          expect(codes.length).toBeGreaterThan(0);
          expect(await state()).toEqual(before);
        }
        const key = succeeded ? 'ok' : String(codes[0]);
        outcomes[key] = (outcomes[key] ?? 0) + 1;
      }),
      { numRuns: RUNS },
    );
    // Not only the parser's refusals: the generators reach the services too.
    if (process.env.PROPERTY_OUTCOMES) process.stdout.write(`${name} ${JSON.stringify(outcomes)}\n`);
    expect(Object.keys(outcomes).length).toBeGreaterThan(1);
  }, 120_000);
});
