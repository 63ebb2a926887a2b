import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvoiceService } from '../../src/billing/invoices/invoice.service';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';
import { deliverSignedEvent, stripeEvent } from '../helpers/stripe-signature';

const SECRET = 'whsec_tollgate_invoices_test_secret_0123456789';
const EMULATOR_KEY = 'Bearer sk_test_tollgate_local_emulator';
const DAY = 86_400;

const NODE = 'id number status currency amountDue amountPaid amountRemaining total hostedInvoiceUrl periodStart periodEnd paidAt createdAt';
const INVOICES = `query($first: Int, $after: String, $customerId: ID) { invoices(first: $first, after: $after, customerId: $customerId) {
  edges { cursor node { ${NODE} } } pageInfo { hasNextPage endCursor } } }`;
const VIEWER = `{ viewer { id email
  subscriptions { id status quantity cancelAtPeriodEnd price { id } product { code } latestInvoice { id status } }
  billingAlerts { code invoice { id } subscription { id } }
  entitlements { feature active }
  limits { meter limit used remaining overLimit } } }`;
const isWrite = (statement: string) => /^\s*(insert|update|delete|merge|truncate)\b/i.test(statement) || /\b(insert\s+into|update\s+"?\w+"?\s+set|delete\s+from)\b/i.test(statement);
const CREATE = `mutation($input: CreateCheckoutSessionInput!) { createCheckoutSession(input: $input) { id url } }`;


describe(InvoiceService.name, () => {
  let server: TestServer;
  let dataDir: string;

  const stripe = async (p: string) => {
    const res = await fetch(`${server.emulator!.url}${p}`, { headers: { authorization: EMULATOR_KEY } });
    expect(res.status).toBe(200);
    return (await res.json()) as any;
  };
  const sql = (query: string, params: unknown[] = []) => server.orm.em.fork().getConnection().execute(query, params);
  const deliver = (type: string, object: Record<string, unknown>) => deliverSignedEvent(server.url, stripeEvent(type, object), SECRET);
  const setDelivery = async (enabled: boolean) => {
    for (const endpoint of (await stripe('/v1/webhook_endpoints')).data) {
      const res = await fetch(`${server.emulator!.url}/v1/webhook_endpoints/${endpoint.id}`, {
        method: 'POST',
        headers: { authorization: EMULATOR_KEY, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ disabled: String(!enabled) }).toString(),
      });
      expect(res.status).toBe(200);
    }
  };
  /** The SQL the app's ORM connection runs while `run` runs. */
  const statementsOf = async (run: () => Promise<unknown>): Promise<string[]> => {
    const statements: string[] = [];
    const knex = server.orm.em.getConnection().getKnex();
    const listener = (q: { sql: string }) => statements.push(q.sql);
    knex.on('query', listener);
    try {
      await run();
    } finally {
      knex.off('query', listener);
    }
    return statements;
  };
  const eventually = async <T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 30_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (check(value) || Date.now() > deadline) return value;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  /** A user with an active Starter subscription paid by card through Checkout; returns their Stripe customer id. */
  async function subscribeThroughCheckout(userId: string): Promise<string> {
    const products = await server.gql(`{ products { id code } }`);
    const starter = products.data.products.find((p: { code: string }) => p.code === 'starter').id;
    const created = await server.gql(CREATE, { input: { productId: starter, successUrl: 'http://localhost:3000/ok', cancelUrl: 'http://localhost:3000/no' } }, await authHeader(userId));
    expect(created.errors).toBeUndefined();
    const html = await (await fetch(created.data.createCheckoutSession.url)).text();
    const action = /<form method="post" action="([^"]+)"/.exec(html)![1];
    const paid = await fetch(new URL(action, created.data.createCheckoutSession.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: 'Test Customer', card: 'pm_card_visa' }).toString(),
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    await server.emulator!.waitForWebhooks();
    const [row] = await sql('select stripe_customer_id from customers where user_id = ?', [userId]);
    return row.stripe_customer_id;
  }

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-invoices-'));
    server = await startTestServer({ STRIPE_WEBHOOK_SECRET: SECRET, DATA_DIR: dataDir });
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  describe('invoices', () => {
    it('needs a token, and is empty for a user without a customer', async () => {
      expect((await server.gql(INVOICES)).errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
      const res = await server.gql(INVOICES, {}, await authHeader('nobody'));
      expect(res.data.invoices).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
    });

    it('pages through renewals newest first, each invoice once, and matches Stripe', async () => {
      const stripeCustomer = await subscribeThroughCheckout('rita');
      for (let i = 0; i < 4; i++) {
        server.emulator!.advanceClock(32 * DAY);
        await server.emulator!.waitForWebhooks();
      }
      const inStripe = (await stripe(`/v1/invoices?customer=${stripeCustomer}&limit=100`)).data as any[];
      expect(inStripe.length).toBeGreaterThanOrEqual(5);
      // The webhooks alone kept the table in step.
      const [{ count }] = await sql('select count(*)::int as count from invoices i join customers c on c.id = i.customer_id where c.user_id = ?', ['rita']);
      expect(count).toBe(inStripe.length);

      const rita = await authHeader('rita');
      const seen: any[] = [];
      let after: string | null = null;
      let pages = 0;
      do {
        const res: any = await server.gql(INVOICES, { first: 2, after }, rita);
        expect(res.errors).toBeUndefined();
        const { edges, pageInfo } = res.data.invoices;
        expect(edges.length).toBeLessThanOrEqual(2);
        seen.push(...edges.map((e: any) => e.node));
        expect(pageInfo.endCursor).toBe(edges.length ? edges[edges.length - 1].cursor : null);
        after = pageInfo.hasNextPage ? pageInfo.endCursor : null;
        pages++;
      } while (after && pages < 20);

      expect(seen).toHaveLength(inStripe.length);
      expect(new Set(seen.map((n) => n.id)).size).toBe(seen.length);
      const created = seen.map((n) => new Date(n.createdAt).getTime());
      expect([...created].sort((a, b) => b - a)).toEqual(created);
      expect(seen.map((n) => n.number)).toEqual(inStripe.map((i) => i.number));
      for (const node of seen) {
        expect(node).toMatchObject({ status: 'PAID', currency: 'usd', amountDue: 1900, amountPaid: 1900, amountRemaining: 0, total: 1900 });
        expect(node.paidAt).not.toBeNull();
        expect(new Date(node.periodEnd).getTime()).toBeGreaterThanOrEqual(new Date(node.periodStart).getTime());
      }

      // The first page reads the table only: no write.
      const statements = await statementsOf(() => server.gql(INVOICES, { first: 2 }, rita));
      expect(statements.filter(isWrite)).toEqual([]);

      // Another user sees none of them; an admin may look.
      expect((await server.gql(INVOICES, {}, await authHeader('sam'))).data.invoices.edges).toEqual([]);
      const [customer] = await sql('select id from customers where user_id = ?', ['rita']);
      const admin = await server.gql(INVOICES, { first: 100, customerId: customer.id }, await authHeader('root', { admin: true }));
      expect(admin.data.invoices.edges).toHaveLength(inStripe.length);
      expect((await server.gql(INVOICES, { customerId: customer.id }, await authHeader('sam'))).errors?.[0].extensions?.code).toBe('FORBIDDEN');
    });

    it('lists an invoice whose webhook never came once the event catch-up has fetched its events', async () => {
      const stripeCustomer = await subscribeThroughCheckout('uma');
      const uma = await authHeader('uma');
      const listed = async () => (await server.gql(INVOICES, {}, uma)).data.invoices.edges.map((e: any) => e.node.id);
      const [first] = await listed();
      await setDelivery(false);
      try {
        // The renewal is invoiced and paid in Stripe while the endpoint receives nothing.
        server.emulator!.advanceClock(32 * DAY);
        const inStripe = async () => (await stripe(`/v1/invoices?customer=${stripeCustomer}`)).data as any[];
        await eventually(async () => (await inStripe()).length, (n) => n === 2);
        const [renewal] = await inStripe();
        expect(renewal.status).toBe('paid');
        // The query reads only the table: the renewal is not there yet.
        expect(await listed()).toEqual([first]);

        // What a worker does at start and on its schedule: run the catch-up job.
        await sql(`select graphile_worker.add_job('stripe_events_catch_up', '{}'::json, job_key => 'stripe_events_catch_up')`);
        const ids = await eventually(listed, (l) => l.length === 2);
        expect(ids[1]).toBe(first);
        const [row] = await sql('select status, amount_paid from invoices where stripe_invoice_id = ?', [renewal.id]);
        expect(row).toEqual({ status: 'paid', amount_paid: 1900 });
      } finally {
        await setDelivery(true);
      }
    }, 60_000);

    it('refuses bad page sizes and cursors with BAD_USER_INPUT', async () => {
      const rita = await authHeader('rita');
      for (const variables of [{ first: 0 }, { first: 101 }, { after: 'not-a-cursor' }, { after: Buffer.from('[1,"x"]').toString('base64url') }]) {
        expect((await server.gql(INVOICES, variables, rita)).errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      }
    });
  });

  describe('queries write nothing', () => {
    it('answers viewer (every field) and invoices without a write, for a caller with no customer row yet and for one with', async () => {
      const kim = await authHeader('kim');
      const statements = await statementsOf(async () => {
        const viewer = await server.gql(VIEWER, {}, kim);
        expect(viewer.errors).toBeUndefined();
        expect(viewer.data.viewer).toMatchObject({ email: 'kim@example.com', subscriptions: [], billingAlerts: [], limits: [] });
        expect(viewer.data.viewer.entitlements.filter((e: { active: boolean }) => e.active)).toEqual([]);
        expect((await server.gql(INVOICES, {}, kim)).data.invoices.edges).toEqual([]);
      });
      expect(statements.length).toBeGreaterThan(0);
      expect(statements.filter(isWrite)).toEqual([]);
      expect(await sql('select id from customers where user_id = ?', ['kim'])).toEqual([]);

      // The id viewer showed is the one the row gets when a mutation creates it.
      const shown = (await server.gql(VIEWER, {}, kim)).data.viewer.id;
      await subscribeThroughCheckout('kim');
      expect(await sql('select id from customers where user_id = ?', ['kim'])).toEqual([{ id: shown }]);

      const after = await statementsOf(async () => {
        const viewer = await server.gql(VIEWER, {}, kim);
        expect(viewer.errors).toBeUndefined();
        expect(viewer.data.viewer).toMatchObject({ id: shown, subscriptions: [{ status: 'ACTIVE', product: { code: 'starter' }, latestInvoice: { status: 'PAID' } }] });
        expect((await server.gql(INVOICES, {}, kim)).data.invoices.edges).toHaveLength(1);
      });
      expect(after.filter(isWrite)).toEqual([]);
    });
  });

  describe('applySnapshot', () => {
    it('never lets an older version overwrite a newer one', async () => {
      const stripeCustomer = await subscribeThroughCheckout('vera');
      const [invoice] = (await stripe(`/v1/invoices?customer=${stripeCustomer}`)).data;
      const current = await server.gateway!.retrieveInvoice(invoice.id);
      const em = server.orm.em.fork();
      const service = new InvoiceService(em);
      const older = new Date(Date.now() - 60_000);
      expect(await service.applySnapshot(em, { ...current, status: 'open', amountPaid: 0, paidAt: null }, older)).toBe('stale');
      const [row] = await sql('select status, amount_paid from invoices where stripe_invoice_id = ?', [invoice.id]);
      expect(row).toEqual({ status: 'paid', amount_paid: 1900 });
      expect(await service.applySnapshot(em, current, new Date())).toBe('applied');
    });
  });

  describe('invoice webhooks', () => {
    it('ignores invoices of Stripe customers we do not know', async () => {
      const res = await deliver('invoice.paid', { id: 'in_unknown_1', object: 'invoice', customer: 'cus_not_ours', status: 'paid', currency: 'usd', amount_due: 100, amount_paid: 100, amount_remaining: 0, total: 100, created: 1 });
      expect(res.status).toBe(200);
      await server.waitForJobs();
      expect(await sql(`select status from stripe_events where object_id = ?`, ['in_unknown_1'])).toEqual([{ status: 'ignored' }]);
      expect(await sql('select id from invoices where stripe_invoice_id = ?', ['in_unknown_1'])).toEqual([]);
    });

    it('applies Stripe\'s current invoice whatever the event carried (a late payment_failed does not undo paid)', async () => {
      const stripeCustomer = await subscribeThroughCheckout('wes');
      const [invoice] = (await stripe(`/v1/invoices?customer=${stripeCustomer}`)).data;
      const res = await deliver('invoice.payment_failed', { ...invoice, status: 'open', amount_paid: 0, amount_remaining: 1900 });
      expect(res.status).toBe(200);
      await server.waitForJobs();
      expect(await sql(`select status from stripe_events where object_id = ? and type = 'invoice.payment_failed'`, [invoice.id])).toEqual([
        { status: 'processed' },
      ]);
      const [row] = await sql('select status, amount_paid, amount_remaining from invoices where stripe_invoice_id = ?', [invoice.id]);
      expect(row).toEqual({ status: 'paid', amount_paid: 1900, amount_remaining: 0 });
    });
  });
});
