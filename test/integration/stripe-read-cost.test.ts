import 'reflect-metadata';
import { createSchema } from '../../src/graphql/schema';
import { complexityError } from '../../src/security/query-limits';
import { parse } from 'graphql';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { subscription { id } } }`;
const CREATE = `mutation($input: CreateCheckoutSessionInput!) { createCheckoutSession(input: $input) { id status } }`;
const INVOICES = (alias: string) => `${alias}: invoices(first: 5) { edges { node { id status } } }`;

describe('queries that read Stripe are bounded per request and per user', () => {
  let server: TestServer;
  let erin: Record<string, string>;
  let sessionId: string;

  beforeAll(async () => {
    server = await startTestServer({ RATE_LIMIT_STORE: 'memory', RATE_LIMIT_MUTATIONS_PER_MINUTE: '8', USAGE_FORWARDER_ENABLED: 'false' });
    erin = await authHeader('cost-erin');
    expect((await server.gql(START, { input: { plan: 'starter', trialDays: 7 } }, erin)).errors).toBeUndefined();
    const products = await server.gql(`{ products { id code } }`);
    const micro = products.data.products.find((p: { code: string }) => p.code === 'micro-feature').id;
    const created = await server.gql(CREATE, { input: { productId: micro, successUrl: 'http://localhost:3000/ok', cancelUrl: 'http://localhost:3000/no' } }, erin);
    expect(created.errors).toBeUndefined();
    sessionId = created.data.createCheckoutSession.id;
  });
  afterAll(() => server.stop());

  it('asks Stripe once for the same read however many aliases ask for it, and never for invoices', async () => {
    const listInvoices = jest.spyOn(server.gateway!, 'listInvoices');
    const retrieve = jest.spyOn(server.gateway!, 'retrieveCheckoutSession');
    try {
      const res = await server.gql(
        `query($id: ID!) { ${INVOICES('a')} ${INVOICES('b')} s1: checkoutSession(id: $id) { status } s2: checkoutSession(id: $id) { status } }`,
        { id: sessionId },
        erin,
      );
      expect(res.errors).toBeUndefined();
      expect(res.data.s1).toEqual({ status: 'open' });
      expect(res.data.s2).toEqual({ status: 'open' });
      // The first invoice of the trial, stored by startSubscription, read from the table.
      expect(res.data.a.edges).toHaveLength(1);
      expect(res.data.b).toEqual(res.data.a);
      expect(listInvoices).not.toHaveBeenCalled();
      expect(retrieve).toHaveBeenCalledTimes(1);
    } finally {
      listInvoices.mockRestore();
      retrieve.mockRestore();
    }
  });

  it('refuses five aliases of a Stripe-reading field with QUERY_TOO_COMPLEX before anything runs; five of invoices (the table) are fine', async () => {
    const retrieve = jest.spyOn(server.gateway!, 'retrieveCheckoutSession');
    const listInvoices = jest.spyOn(server.gateway!, 'listInvoices');
    try {
      const sessions = ['a', 'b', 'c', 'd', 'e'].map((alias) => `${alias}: checkoutSession(id: $id) { status }`).join(' ');
      const res = await server.gql(`query($id: ID!) { ${sessions} }`, { id: sessionId }, erin);
      expect(res.status).toBe(400);
      expect(res.errors?.[0].extensions?.code).toBe('QUERY_TOO_COMPLEX');
      expect(retrieve).not.toHaveBeenCalled();

      const invoices = await server.gql(`{ ${['a', 'b', 'c', 'd', 'e'].map(INVOICES).join(' ')} }`, undefined, erin);
      expect(invoices.errors).toBeUndefined();
      expect(listInvoices).not.toHaveBeenCalled();
    } finally {
      retrieve.mockRestore();
      listInvoices.mockRestore();
    }
  });

  it('makes invoices(first: 100) cost a hundred times its items, with no Stripe surcharge on any page', async () => {
    const schema = await createSchema();
    const cost = (query: string) => complexityError({ schema, document: parse(query), maxComplexity: 1 })?.extensions.actual as number;
    const one = cost(`{ invoices(first: 1) { edges { node { id status total } } } }`);
    const hundred = cost(`{ invoices(first: 100) { edges { node { id status total } } } }`);
    const laterPage = cost(`{ invoices(first: 100, after: "x") { edges { node { id status total } } } }`);
    expect(hundred - one).toBe(99 * 5);
    expect(laterPage).toBe(hundred);
    expect(hundred).toBeLessThan(1000);
  });

  it("counts Stripe-reading queries against the caller's budget, and not invoices or catalog queries", async () => {
    const frank = await authHeader('cost-frank');
    for (let i = 0; i < 10; i++) expect((await server.gql(`{ invoices { edges { node { id } } } }`, undefined, frank)).errors).toBeUndefined();
    const answers: (string | undefined)[] = [];
    for (let i = 0; i < 10; i++) answers.push((await server.gql(`query($id: ID!) { checkoutSession(id: $id) { id } }`, { id: sessionId }, frank)).errors?.[0]?.extensions?.code);
    // Erin's session is not Frank's to see; the budget counts the calls all the same.
    expect(answers.slice(0, 8)).toEqual(Array(8).fill('NOT_FOUND'));
    expect(answers.slice(8)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
    // Reads of our own database only are not counted.
    expect((await server.gql(`{ products { code } viewer { id } }`, undefined, frank)).errors).toBeUndefined();
  });
});
