import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BillingPortalService } from '../../src/billing/portal/billing-portal.service';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const EMULATOR_KEY = 'Bearer sk_test_tollgate_local_emulator';
const PORTAL = `mutation($returnUrl: String!, $customerId: ID) { createBillingPortalSession(returnUrl: $returnUrl, customerId: $customerId) { url } }`;

describe(BillingPortalService.name, () => {
  let server: TestServer;
  let dataDir: string;

  const stripeCustomers = async (): Promise<number> => {
    const res = await fetch(`${server.emulator!.url}/v1/customers?limit=100`, { headers: { authorization: EMULATOR_KEY } });
    return ((await res.json()) as { data: unknown[] }).data.length;
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-portal-'));
    server = await startTestServer({ ALLOWED_REDIRECT_ORIGINS: 'https://app.example.com', DATA_DIR: dataDir });
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  describe('createBillingPortalSession', () => {
    it('needs a token', async () => {
      const res = await server.gql(PORTAL, { returnUrl: 'https://app.example.com/account' });
      expect(res.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    });

    it('refuses return URLs off the allowed origins with BAD_USER_INPUT, creating nothing in Stripe', async () => {
      const mallory = await authHeader('mallory');
      const before = await stripeCustomers();
      for (const returnUrl of ['javascript:alert(1)', '//evil.com', 'https://evil.com', 'https://app.example.com.evil.com/', '/account', 'http://app.example.com/account']) {
        const res = await server.gql(PORTAL, { returnUrl }, mallory);
        expect({ returnUrl, code: res.errors?.[0].extensions?.code }).toEqual({ returnUrl, code: 'BAD_USER_INPUT' });
      }
      expect(await stripeCustomers()).toBe(before);
    });

    it('creates the Stripe customer on first use and returns a portal URL that opens', async () => {
      const nina = await authHeader('nina');
      const before = await stripeCustomers();
      const res = await server.gql(PORTAL, { returnUrl: 'https://app.example.com/account' }, nina);
      expect(res.errors).toBeUndefined();
      const { url } = res.data.createBillingPortalSession;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/billing_portal\//);
      expect(await stripeCustomers()).toBe(before + 1);
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('https://app.example.com/account');

      // The second visit reuses the customer and gets a fresh session.
      const again = await server.gql(PORTAL, { returnUrl: 'http://localhost:5173/account' }, nina);
      expect(again.errors).toBeUndefined();
      expect(again.data.createBillingPortalSession.url).not.toBe(url);
      expect(await stripeCustomers()).toBe(before + 1);
    });

    it('lets only admins open the portal for another customer', async () => {
      await server.gql(PORTAL, { returnUrl: 'https://app.example.com/account' }, await authHeader('olga'));
      const [olga] = await server.orm.em.fork().getConnection().execute('select id from customers where user_id = ?', ['olga']);
      const denied = await server.gql(PORTAL, { returnUrl: 'https://app.example.com/account', customerId: olga.id }, await authHeader('nina'));
      expect(denied.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      const admin = await server.gql(PORTAL, { returnUrl: 'https://app.example.com/account', customerId: olga.id }, await authHeader('root', { admin: true }));
      expect(admin.errors).toBeUndefined();
      expect(admin.data.createBillingPortalSession.url).toMatch(/billing_portal/);
    });
  });
});

describe('with ENABLE_BILLING=false', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ ENABLE_BILLING: 'false' });
  });
  afterAll(() => server.stop());

  it('answers Checkout and portal with BILLING_DISABLED and still lists invoices from the database', async () => {
    const user = await authHeader('pat');
    const portal = await server.gql(PORTAL, { returnUrl: 'http://localhost:3000/account' }, user);
    expect(portal.errors?.[0].extensions?.code).toBe('BILLING_DISABLED');
    const checkout = await server.gql(
      `mutation($input: CreateCheckoutSessionInput!) { createCheckoutSession(input: $input) { id } }`,
      { input: { priceId: '00000000-0000-4000-8000-000000000000', successUrl: 'http://localhost:3000/ok', cancelUrl: 'http://localhost:3000/no' } },
      user,
    );
    expect(checkout.errors?.[0].extensions?.code).toBe('BILLING_DISABLED');
    const invoices = await server.gql(`{ invoices { edges { cursor } pageInfo { hasNextPage } } }`, {}, user);
    expect(invoices.errors).toBeUndefined();
    expect(invoices.data.invoices).toEqual({ edges: [], pageInfo: { hasNextPage: false } });
  });
});
