import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Stripe from 'stripe';
import { UsageForwarder } from '../../src/billing/usage/usage-forwarder';
import { createLogger } from '../../src/common/logger';
import { startServer, type RunningServer } from '../../src/server';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { emulatorSdk, eventually, GET, invoicesOf, paidSubscription, PREVIEW, RECORD, UPDATE } from '../helpers/plan-changes';
import { authHeader, postGraphQL, testConfig, type TestServer } from '../helpers/test-server';

/*
 * A downgrade scheduled for the period end survives a restart of the app (same database, same
 * emulator state) and lands when the emulator's clock passes the period end: the row shows the
 * new plan, the renewal invoice bills the old plan's usage of the ending period at its price and
 * the new plan for the next one, and the preview shown before equals that invoice.
 */
describe('a downgrade at the period end, across a restart (HTTP, PostgreSQL, the Stripe emulator)', () => {
  const log = createLogger({ level: 'silent' });
  let db: TestDatabase;
  let dataDir: string;
  let running: RunningServer | undefined;

  const boot = async (): Promise<TestServer> => {
    const config = testConfig({ DATA_DIR: dataDir, USAGE_FORWARDER_ENABLED: 'false', RATE_LIMIT_MUTATIONS_PER_MINUTE: '0', RATE_LIMIT_USAGE_PER_MINUTE: '0' });
    running = await startServer(config, { log, databaseUrl: db.url });
    const url = `http://127.0.0.1:${running.port}`;
    return { ...running, url, db, gql: (q, v, h) => postGraphQL(`${url}/graphql`, q, v, h), stop: () => running!.close() };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-plan-change-'));
  });
  afterAll(async () => {
    await running?.close();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps the scheduled change through a restart and applies it when the period rolls over, billing usage per period', async () => {
    const alice = await authHeader('period-alice');
    const bob = await authHeader('period-bob');
    let server = await boot();
    let stripe: Stripe = emulatorSdk(server);

    // Alice uses Pro's meter in this period, then downgrades; Bob downgrades without usage.
    const a = await paidSubscription(server, stripe, alice, { plan: 'pro' });
    const b = await paidSubscription(server, stripe, bob, { plan: 'pro' });
    const recorded = await server.gql(RECORD, { input: { subscriptionId: a.id, quantity: 30 } }, alice);
    expect(recorded.errors).toBeUndefined();
    await new UsageForwarder({ orm: server.orm, gateway: server.gateway!, log, baseBackoffMs: 10, maxBackoffMs: 50 }).drain();
    expect(server.emulator!.meterEventCount(recorded.data.recordUsage.id)).toBe(1);

    const preview = (await server.gql(PREVIEW, { input: { id: b.id, plan: 'starter' } }, bob)).data.previewSubscriptionChange;
    expect(preview).toMatchObject({ effective: 'PERIOD_END', amountDueNow: 0, amountDueAtRenewal: 1900 });
    for (const [sub, headers] of [[a, alice], [b, bob]] as const) {
      const res = await server.gql(UPDATE, { input: { id: sub.id, plan: 'starter' } }, headers);
      expect(res.errors).toBeUndefined();
      expect(res.data.updateSubscription).toMatchObject({ product: { code: 'pro' }, pendingChange: { plan: 'starter', status: 'SCHEDULED' } });
    }
    const before = (await server.gql(GET, { id: a.id }, alice)).data.subscription;
    const bobBefore = (await server.gql(GET, { id: b.id }, bob)).data.subscription;
    await server.emulator!.waitForWebhooks();
    await server.stop();

    server = await boot();
    stripe = emulatorSdk(server);
    const afterRestart = (await server.gql(GET, { id: a.id }, alice)).data.subscription;
    expect(afterRestart).toMatchObject({ product: { code: 'pro' }, pendingChange: { plan: 'starter', effectiveAt: before.currentPeriodEnd } });

    const periodEnd = Math.max(...[before, bobBefore].map((s) => Math.floor(new Date(s.currentPeriodEnd).getTime() / 1000)));
    server.emulator!.advanceClock(periodEnd - server.emulator!.now() + 60);
    await server.emulator!.waitForWebhooks();

    for (const [sub, headers, was] of [[a, alice, before], [b, bob, bobBefore]] as const) {
      const moved = await eventually(async () => {
        const read = (await server.gql(GET, { id: sub.id }, headers)).data.subscription;
        expect(read).toMatchObject({ product: { code: 'starter' }, price: { unitAmount: 1900 }, pendingChange: null });
        return read;
      });
      expect(moved.currentPeriodStart).toBe(was.currentPeriodEnd);
      expect((await stripe.subscriptions.retrieve(sub.stripeId)).items.data.map((i) => i.price.lookup_key)).toEqual(['starter_monthly']);
    }

    const [aliceRenewal] = await invoicesOf(stripe, a.stripeId);
    expect(aliceRenewal).toMatchObject({ billing_reason: 'subscription_cycle', status: 'paid' });
    const lines = aliceRenewal.lines.data.map((l) => [l.description?.includes('usage') ? 'usage' : 'plan', l.amount]);
    // Pro's usage of the period that ended, at Pro's metered price; Starter in advance for the new one.
    expect(lines.sort()).toEqual([['plan', 1900], ['usage', 30]]);

    const [bobRenewal] = await invoicesOf(stripe, b.stripeId);
    expect(bobRenewal.amount_paid).toBe(preview.amountDueAtRenewal);
    expect(new Date(bobRenewal.period_start * 1000).toISOString()).toBe(new Date(preview.renewsAt).toISOString());

    // The usage of the old period still reads 30 after the plan lost its meter; nothing new can be recorded on it.
    const usage = await server.gql(
      `query($id: ID, $from: DateTimeISO, $to: DateTimeISO) { usage(subscriptionId: $id, meter: "api_calls", from: $from, to: $to) { total } }`,
      { id: a.id, from: before.currentPeriodStart, to: before.currentPeriodEnd },
      alice,
    );
    expect(usage.errors).toBeUndefined();
    expect(usage.data.usage.total).toBe(30);
    const refused = await server.gql(RECORD, { input: { subscriptionId: a.id, quantity: 1 } }, alice);
    expect(refused.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });
});
