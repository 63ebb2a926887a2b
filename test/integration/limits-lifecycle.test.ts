import type { MikroORM } from '@mikro-orm/postgresql';
import type Stripe from 'stripe';
import type { CatalogDefinition } from '../../src/billing/catalog/catalog-file';
import { CatalogSyncService } from '../../src/billing/catalog/catalog-sync.service';
import { initORM } from '../../src/db/orm';
import { emulatorSdk, eventually, paidSubscription, UPDATE } from '../helpers/plan-changes';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id quantity } }`;
const LIMITS = `{ viewer { limits { subscriptionId meter limit used remaining resetsAt kind overLimit } } }`;
const HAS = `query($feature: String!) { hasEntitlement(feature: $feature) }`;

/**
 * How limits and features follow a customer's plan and period over time, through the whole
 * stack: the Stripe emulator's clock, its signed webhooks, the job engine, PostgreSQL, and the
 * per-customer cache of features and limits (definitions-cache.ts) that every write must reach.
 * Pro allows 100 API calls a period (hard), Lite 10 (hard).
 */
describe('limits and features over plan changes and billing periods', () => {
  let server: TestServer;
  let stripe: Stripe;
  let catalog: CatalogDefinition;

  const record = (headers: Record<string, string>, input: Record<string, unknown>) => server.gql(RECORD, { input }, headers);
  async function limits(headers: Record<string, string>) {
    const res = await server.gql(LIMITS, {}, headers);
    expect(res.errors).toBeUndefined();
    return res.data.viewer.limits;
  }
  async function has(headers: Record<string, string>, feature: string): Promise<boolean> {
    const res = await server.gql(HAS, { feature }, headers);
    expect(res.errors).toBeUndefined();
    return res.data.hasEntitlement;
  }
  const settle = async () => {
    await server.emulator!.waitForWebhooks(10_000);
    await server.waitForJobs();
  };
  async function advanceClock(seconds: number) {
    const res = await fetch(`${server.emulator!.url}/_emulator/clock/advance`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ seconds }),
    });
    expect(res.status).toBe(200);
    await settle();
  }

  beforeAll(async () => {
    server = await startTestServer({ RATE_LIMIT_MUTATIONS_PER_MINUTE: '0', RATE_LIMIT_USAGE_PER_MINUTE: '0', USAGE_FORWARDER_ENABLED: 'false' }, {
      catalog: (c) => {
        c.products.find((p) => p.code === 'pro')!.limits = [{ meter: 'api_calls', limit: 100, period: 'billing_period', kind: 'hard' }];
        c.products.push({
          code: 'lite',
          name: 'Lite',
          prices: [
            { lookupKey: 'lite_monthly', currency: 'usd', unitAmount: 900, interval: 'month' },
            { lookupKey: 'lite_api_calls', currency: 'usd', unitAmount: 2, interval: 'month', usageType: 'metered', meter: 'api_calls' },
          ],
          features: [],
          limits: [{ meter: 'api_calls', limit: 10, period: 'billing_period', kind: 'hard' }],
        });
        catalog = structuredClone(c);
      },
    });
    stripe = emulatorSdk(server);
  });
  afterAll(async () => {
    await server.stop();
  });

  it('gives an existing subscriber a feature and a limit that another process adds to its plan, at once', async () => {
    const carol = await authHeader('lifecycle-carol');
    await paidSubscription(server, stripe, carol, { plan: 'pro' });
    // Both answers are now held by the server's cache.
    expect(await has(carol, 'audit_log')).toBe(false);
    expect((await limits(carol)).map((l: { limit: number }) => l.limit)).toEqual([100]);

    // Another process (a second instance, or `npm run catalog:sync`) changes the catalog through its own ORM.
    const changed = structuredClone(catalog);
    const pro = changed.products.find((p) => p.code === 'pro')!;
    pro.features.push({ lookupKey: 'audit_log', name: 'Audit log' });
    pro.limits[0].limit = 120;
    const other: MikroORM = await initORM({ url: server.database.url, poolMax: 2 });
    try {
      await new CatalogSyncService(server.gateway, other.em.fork()).sync(changed);
    } finally {
      await other.close();
    }
    // Heard through NOTIFY well within the cache's 5 s time-to-live.
    await eventually(async () => {
      expect(await has(carol, 'audit_log')).toBe(true);
      expect((await limits(carol)).map((l: { limit: number }) => l.limit)).toEqual([120]);
    }, 1_000);
  });

  it('listens again after its connection drops, and hears the next change at once', async () => {
    const carol = await authHeader('lifecycle-carol');
    expect(await has(carol, 'audit_log')).toBe(true);
    const sql = (query: string): Promise<{ pid: number }[]> => server.orm.em.fork().getConnection().execute(query);
    const listeners = `select pid from pg_stat_activity where application_name = 'tollgate-definitions-listener' and datname = current_database()`;
    const [before] = await sql(listeners);
    await sql(`select pg_terminate_backend(${Number(before.pid)})`);
    await eventually(async () => {
      const now = await sql(listeners);
      expect(now.map((r) => r.pid)).toEqual([expect.any(Number)]);
      expect(now[0].pid).not.toBe(before.pid);
    }, 5_000);
    expect(await has(carol, 'audit_log')).toBe(true);

    const other: MikroORM = await initORM({ url: server.database.url, poolMax: 2 });
    try {
      const changed = structuredClone(catalog);
      changed.products.find((p) => p.code === 'pro')!.limits[0].limit = 120;
      await new CatalogSyncService(server.gateway, other.em.fork()).sync(changed);
    } finally {
      await other.close();
    }
    await eventually(async () => expect(await has(carol, 'audit_log')).toBe(false), 1_000);
  });

  it("shows the customer's new email once Stripe's customer.updated is applied, though the customer is cached", async () => {
    const gina = await authHeader('lifecycle-gina', { email: 'gina@example.com' });
    await paidSubscription(server, stripe, gina, { plan: 'pro' });
    const viewer = async () => (await server.gql(`{ viewer { email } }`, {}, gina)).data.viewer.email;
    expect(await viewer()).toBe('gina@example.com');
    const [row] = await server.orm.em.fork().getConnection().execute(`select stripe_customer_id from customers where user_id = 'lifecycle-gina'`);
    await stripe.customers.update(row.stripe_customer_id, { email: 'gina@new.example.com' });
    await settle();
    await eventually(async () => expect(await viewer()).toBe('gina@new.example.com'), 1_000);
  });

  it('lowers the limit the moment updateSubscription downgrades at once, and refuses usage past the new limit', async () => {
    const dave = await authHeader('lifecycle-dave');
    const sub = await paidSubscription(server, stripe, dave, { plan: 'pro' });
    expect((await record(dave, { meter: 'api_calls', quantity: 8 })).errors).toBeUndefined();
    expect(await limits(dave)).toEqual([expect.objectContaining({ subscriptionId: sub.id, limit: 120, used: 8 })]);

    const changed = await server.gql(UPDATE, { input: { id: sub.id, plan: 'lite', effective: 'IMMEDIATELY' } }, dave);
    expect(changed.errors).toBeUndefined();
    expect(changed.data.updateSubscription.product.code).toBe('lite');
    // No webhook awaited: the mutation's own write moves the limit.
    expect(await limits(dave)).toEqual([expect.objectContaining({ subscriptionId: sub.id, limit: 10, used: 8, remaining: 2, kind: 'hard' })]);
    expect((await record(dave, { meter: 'api_calls', quantity: 2 })).errors).toBeUndefined();
    const refused = await record(dave, { meter: 'api_calls', quantity: 1 });
    expect(refused.errors?.[0].extensions).toMatchObject({ code: 'USAGE_LIMIT_EXCEEDED', limit: 10, used: 10 });
  });

  it('starts counting again when the billing period renews: used 0, resetsAt moved, usage accepted after the hard limit was hit', async () => {
    const erin = await authHeader('lifecycle-erin');
    const sub = await paidSubscription(server, stripe, erin, { plan: 'pro' });
    // The period is made to end a minute from now, so that the renewed period starts within the
    // 5 minutes ahead that usage may be dated (the app's clock is real time, the emulator's is moved).
    const periodEnd = Math.floor(Date.now() / 1000) + 60;
    await stripe.subscriptions.update(sub.stripeId, { trial_end: periodEnd });
    await settle();
    const [before] = await limits(erin);
    expect(before).toMatchObject({ limit: 120, used: 0, resetsAt: new Date(periodEnd * 1000).toISOString() });

    expect((await record(erin, { meter: 'api_calls', quantity: 120 })).errors).toBeUndefined();
    const refused = await record(erin, { meter: 'api_calls', quantity: 1 });
    expect(refused.errors?.[0].extensions).toMatchObject({ code: 'USAGE_LIMIT_EXCEEDED', limit: 120, used: 120 });

    await advanceClock(120);
    const renewed = await eventually(async () => {
      const [l] = await limits(erin);
      expect(new Date(l.resetsAt).getTime()).toBeGreaterThan(periodEnd * 1000 + 27 * 86400_000);
      return l;
    });
    expect(renewed).toMatchObject({ subscriptionId: sub.id, limit: 120, used: 0, remaining: 120, overLimit: false });
    const inNewPeriod = new Date((periodEnd + 1) * 1000).toISOString();
    const accepted = await record(erin, { meter: 'api_calls', quantity: 5, occurredAt: inNewPeriod });
    expect(accepted.errors).toBeUndefined();
    expect((await limits(erin))[0]).toMatchObject({ used: 5, remaining: 115 });
  });

  it('keeps the current limit until the period end when the downgrade is scheduled for then, and lowers it when the period turns', async () => {
    const frank = await authHeader('lifecycle-frank');
    const sub = await paidSubscription(server, stripe, frank, { plan: 'pro' });
    const changed = await server.gql(UPDATE, { input: { id: sub.id, plan: 'lite', effective: 'PERIOD_END' } }, frank);
    expect(changed.errors).toBeUndefined();
    expect(changed.data.updateSubscription.pendingChange).toMatchObject({ plan: 'lite' });
    const [current] = await limits(frank);
    expect(current).toMatchObject({ limit: 120 });

    await advanceClock(Math.ceil((new Date(current.resetsAt).getTime() - Date.now()) / 1000) + 3600);
    await eventually(async () => {
      expect((await limits(frank)).map((l: { limit: number }) => l.limit)).toEqual([10]);
    });
  });
});
