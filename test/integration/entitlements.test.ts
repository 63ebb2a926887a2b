import path from 'node:path';
import { loadCatalogFile, type CatalogDefinition } from '../../src/billing/catalog/catalog-file';
import { CatalogSyncService } from '../../src/billing/catalog/catalog-sync.service';
import { EntitlementService } from '../../src/billing/entitlements/entitlement.service';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const EMULATOR_KEY = 'Bearer sk_test_tollgate_local_emulator';
const PRO_FEATURES = ['basic_reports', 'priority_support', 'sso'];

const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { clientSecret subscription { id status currentPeriodEnd } } }`;
const CANCEL = `mutation($id: ID!) { cancelSubscription(id: $id, atPeriodEnd: false) { id status } }`;
const VIEWER = `{ viewer { id entitlements { feature active } } }`;
const HAS = `query($feature: String!, $customerId: ID) { hasEntitlement(feature: $feature, customerId: $customerId) }`;

describe(EntitlementService.name, () => {
  let server: TestServer;
  let defaultCatalog: CatalogDefinition;

  const stripe = async (method: 'GET' | 'POST' | 'DELETE', p: string, body?: Record<string, string>) => {
    const res = await fetch(`${server.emulator!.url}${p}`, {
      method,
      headers: { authorization: EMULATOR_KEY, ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: body ? new URLSearchParams(body).toString() : undefined,
    });
    const json = (await res.json()) as any;
    if (res.status !== 200) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const sql = (query: string, params: unknown[] = []) => server.orm.em.fork().getConnection().execute(query, params);
  const settle = () => server.emulator!.waitForWebhooks(10_000);

  /** The features a user has, as `viewer.entitlements` shows them. */
  async function activeFeatures(headers: Record<string, string>): Promise<string[]> {
    const res = await server.gql(VIEWER, {}, headers);
    expect(res.errors).toBeUndefined();
    return res.data.viewer.entitlements.filter((e: { active: boolean }) => e.active).map((e: { feature: string }) => e.feature);
  }
  async function has(headers: Record<string, string>, feature: string, customerId?: string) {
    return server.gql(HAS, { feature, ...(customerId ? { customerId } : {}) }, headers);
  }
  async function startPro(headers: Record<string, string>, input: Record<string, unknown> = {}) {
    const res = await server.gql(START, { input: { plan: 'pro', ...input } }, headers);
    expect(res.errors).toBeUndefined();
    return res.data.startSubscription;
  }
  function sync(catalog: CatalogDefinition) {
    return new CatalogSyncService(server.gateway!, server.orm.em.fork()).sync(catalog);
  }

  beforeAll(async () => {
    server = await startTestServer();
    defaultCatalog = await loadCatalogFile(path.resolve(__dirname, '../../catalog/default.json'));
  });
  afterAll(() => server.stop());

  it('gives a Pro customer its features the moment the subscription is active, and takes them when it ends', async () => {
    const alice = await authHeader('ent-alice');
    const started = await startPro(alice);
    expect(started.subscription.status).toBe('INCOMPLETE');
    await settle();
    expect(await activeFeatures(alice)).toEqual([]);
    expect((await has(alice, 'sso')).data.hasEntitlement).toBe(false);

    // The browser confirms the first payment: Stripe activates the subscription and sends its events.
    const paymentIntent = started.clientSecret.split('_secret_')[0];
    await stripe('POST', `/v1/payment_intents/${paymentIntent}/confirm`, { payment_method: 'pm_card_visa' });
    await settle();
    expect(await activeFeatures(alice)).toEqual(PRO_FEATURES);
    expect((await has(alice, 'sso')).data.hasEntitlement).toBe(true);
    expect((await has(alice, 'no_such_feature')).data.hasEntitlement).toBe(false);
    // Both sources agree: Stripe's active entitlements and the catalog applied to the subscription.
    const rows = await sql(`select e.feature, e.source from entitlements e join customers c on c.id = e.customer_id where c.user_id = 'ent-alice' order by feature`);
    expect(rows).toEqual(PRO_FEATURES.map((feature) => ({ feature, source: 'stripe+catalog' })));

    const ended = await server.gql(CANCEL, { id: started.subscription.id }, alice);
    expect(ended.data.cancelSubscription.status).toBe('CANCELED');
    await settle();
    expect(await activeFeatures(alice)).toEqual([]);
    expect((await has(alice, 'sso')).data.hasEntitlement).toBe(false);
  });

  it("keeps granting a subscriber's features from the catalog while Stripe's entitlements cannot be read, and agrees with Stripe once they can", async () => {
    const faults = server.emulator!.faults;
    faults.failNext(500, 1000, { path: '/v1/entitlements/active_entitlements' });
    const frank = await authHeader('ent-frank');
    await startPro(frank, { trialDays: 7 });
    const deadline = Date.now() + 5_000;
    while (!(await has(frank, 'sso')).data.hasEntitlement && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await activeFeatures(frank)).toEqual(PRO_FEATURES);
    const sources = `select distinct e.source from entitlements e join customers c on c.id = e.customer_id where c.user_id = 'ent-frank'`;
    expect(await sql(sources)).toEqual([{ source: 'catalog' }]);

    // Stripe's retry of the summary event succeeds once the API answers again.
    faults.clear();
    await settle();
    expect(await sql(sources)).toEqual([{ source: 'stripe+catalog' }]);
  });

  it('gives existing Pro customers a feature added to Pro in the catalog at once, without a new period', async () => {
    const bob = await authHeader('ent-bob');
    const started = await startPro(bob, { trialDays: 14 });
    await settle();
    expect(await activeFeatures(bob)).toEqual(PRO_FEATURES);

    const withAuditLog = structuredClone(defaultCatalog);
    withAuditLog.products.find((p) => p.code === 'pro')!.features.push({ lookupKey: 'audit_log', name: 'Audit log' });
    const features = async () => (await stripe('GET', '/v1/entitlements/features?limit=100')).data.map((f: { lookup_key: string }) => f.lookup_key).sort();
    const before = await features();
    const planned = await new CatalogSyncService(server.gateway!, server.orm.em.fork()).sync(withAuditLog, { dryRun: true });
    expect(planned.changes.map((c) => `${c.where} ${c.action} ${c.object} ${c.key}`)).toEqual([
      'stripe create feature audit_log',
      'stripe create product feature pro/audit_log',
      'database create product feature pro/audit_log',
    ]);
    expect(await features()).toEqual(before);
    expect((await has(bob, 'audit_log')).data.hasEntitlement).toBe(false);

    const result = await sync(withAuditLog);
    expect(result.changes.filter((c) => c.where === 'stripe').map((c) => `${c.action} ${c.object} ${c.key}`)).toEqual([
      'create feature audit_log',
      'create product feature pro/audit_log',
    ]);
    // Granted by the sync itself, before any webhook: the catalog's side is recomputed at once.
    expect((await has(bob, 'audit_log')).data.hasEntitlement).toBe(true);
    await settle();
    expect(await activeFeatures(bob)).toEqual(['audit_log', ...PRO_FEATURES]);
    const after = await server.gql(`{ subscriptions { id currentPeriodEnd } }`, {}, bob);
    expect(after.data.subscriptions).toEqual([{ id: started.subscription.id, currentPeriodEnd: started.subscription.currentPeriodEnd }]);

    // A second run has nothing to do; taking the feature out of the plan detaches it again.
    expect((await sync(withAuditLog)).changes).toEqual([]);
    const removed = await sync(defaultCatalog);
    expect(removed.changes.filter((c) => c.where === 'stripe').map((c) => `${c.action} ${c.object} ${c.key}`)).toEqual([
      'archive feature audit_log',
      'detach product feature pro/audit_log',
    ]);
    await settle();
    expect(await activeFeatures(bob)).toEqual(PRO_FEATURES);
  });

  it('applies a summary event with 25 entitlements whole, though the event carries 10, and counts what only Stripe grants', async () => {
    // 25 features attached to Pro in Stripe by hand (not through the catalog): Stripe grants
    // them, the catalog does not know them.
    const pro = (await sql(`select stripe_product_id from products where code = 'pro'`))[0].stripe_product_id;
    const attached: string[] = [];
    for (let i = 0; i < 25; i++) {
      const feature = await stripe('POST', '/v1/entitlements/features', { name: `Extra ${i}`, lookup_key: `extra_${String(i).padStart(2, '0')}` });
      attached.push((await stripe('POST', `/v1/products/${pro}/features`, { entitlement_feature: feature.id })).id);
    }
    const carol = await authHeader('ent-carol');
    await startPro(carol, { trialDays: 7 });
    await settle();

    const [customer] = await sql(`select stripe_customer_id from customers where user_id = 'ent-carol'`);
    const summaries = server.emulator!.events().filter(
      (e) => e.type === 'entitlements.active_entitlement_summary.updated' && e.data.object.customer === customer.stripe_customer_id,
    );
    expect(summaries).toHaveLength(1);
    expect(summaries[0].data.object.entitlements.data).toHaveLength(10);
    expect(summaries[0].data.object.entitlements.has_more).toBe(true);

    const features = await activeFeatures(carol);
    expect(features).toHaveLength(28);
    expect(features).toEqual(expect.arrayContaining([...PRO_FEATURES, 'extra_00', 'extra_12', 'extra_24']));
    expect((await has(carol, 'extra_24')).data.hasEntitlement).toBe(true);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const counted = /tollgate_entitlement_mismatches_total\{granted_by="stripe"\} (\d+)/.exec(metrics);
    expect(Number(counted?.[1])).toBeGreaterThanOrEqual(25);

    for (const id of attached) await stripe('DELETE', `/v1/products/${pro}/features/${id}`);
    await settle();
    expect(await activeFeatures(carol)).toEqual(PRO_FEATURES);
  });

  it("never shows another customer's entitlements: FORBIDDEN for a non-admin naming a customer, the admin's answer otherwise", async () => {
    const dave = await authHeader('ent-dave');
    await startPro(dave, { trialDays: 7 });
    await settle();
    const daveId = (await server.gql(VIEWER, {}, dave)).data.viewer.id;

    const erin = await authHeader('ent-erin');
    expect((await has(erin, 'sso')).data.hasEntitlement).toBe(false);
    expect(await activeFeatures(erin)).toEqual([]);
    const forbidden = await has(erin, 'sso', daveId);
    expect(forbidden.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    expect(forbidden.data?.hasEntitlement ?? null).toBeNull();

    const admin = await authHeader('ent-admin', { admin: true });
    expect((await has(admin, 'sso', daveId)).data.hasEntitlement).toBe(true);
    expect((await has(admin, 'sso', '00000000-0000-4000-8000-000000000000')).errors?.[0].extensions?.code).toBe('NOT_FOUND');
    expect((await has(admin, 'sso')).data.hasEntitlement).toBe(false);

    expect((await has(erin, 'not a key!')).errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect((await server.gql(HAS, { feature: 'sso' })).errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });
});
