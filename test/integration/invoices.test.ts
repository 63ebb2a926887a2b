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

      // Stripe has nothing new: the first page reads it but writes no invoice row.
      const statements: string[] = [];
      const knex = server.orm.em.getConnection().getKnex();
      const listener = (q: { sql: string }) => statements.push(q.sql);
      knex.on('query', listener);
      try {
        expect((await server.gql(INVOICES, { first: 2 }, rita)).data.invoices.edges).toHaveLength(2);
      } finally {
        knex.off('query', listener);
      }
      expect(statements.filter((q) => /insert into "?invoices"?/i.test(q))).toEqual([]);

      // Another user sees none of them; an admin may look.
      expect((await server.gql(INVOICES, {}, await authHeader('sam'))).data.invoices.edges).toEqual([]);
      const [customer] = await sql('select id from customers where user_id = ?', ['rita']);
      const admin = await server.gql(INVOICES, { first: 100, customerId: customer.id }, await authHeader('root', { admin: true }));
      expect(admin.data.invoices.edges).toHaveLength(inStripe.length);
      expect((await server.gql(INVOICES, { customerId: customer.id }, await authHeader('sam'))).errors?.[0].extensions?.code).toBe('FORBIDDEN');
    });

    it('reads Stripe on the first page, so an invoice whose webhook never came is listed', async () => {
      const stripeCustomer = await subscribeThroughCheckout('uma');
      const [customer] = await sql('select id from customers where user_id = ?', ['uma']);
      await sql('delete from invoices where customer_id = ?', [customer.id]);
      const res = await server.gql(INVOICES, {}, await authHeader('uma'));
      expect(res.data.invoices.edges.map((e: any) => e.node.amountPaid)).toEqual([1900]);
      expect((await stripe(`/v1/invoices?customer=${stripeCustomer}`)).data).toHaveLength(1);
    });

    it('refuses bad page sizes and cursors with BAD_USER_INPUT', async () => {
      const rita = await authHeader('rita');
      for (const variables of [{ first: 0 }, { first: 101 }, { after: 'not-a-cursor' }, { after: Buffer.from('[1,"x"]').toString('base64url') }]) {
        expect((await server.gql(INVOICES, variables, rita)).errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      }
    });
  });

  describe('applySnapshot', () => {
    it('never lets an older version overwrite a newer one', async () => {
      const stripeCustomer = await subscribeThroughCheckout('vera');
      const [invoice] = (await stripe(`/v1/invoices?customer=${stripeCustomer}`)).data;
      const current = await server.gateway!.retrieveInvoice(invoice.id);
      const em = server.orm.em.fork();
      const service = new InvoiceService(em, server.gateway);
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
