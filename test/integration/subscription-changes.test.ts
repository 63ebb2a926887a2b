import type Stripe from 'stripe';
import { UsageForwarder } from '../../src/billing/usage/usage-forwarder';
import { createLogger } from '../../src/common/logger';
import {
  CANCEL_PENDING,
  emulatorSdk,
  eventually,
  GET,
  invoicesOf,
  paidSubscription,
  PREVIEW,
  RECORD,
  switchCard,
  UPDATE,
} from '../helpers/plan-changes';
import { deliverSignedEvent, stripeEvent } from '../helpers/stripe-signature';
import { authHeader, startTestServer, type TestServer } from '../helpers/test-server';

const WEBHOOK_SECRET = 'whsec_tollgate_plan_changes_0123456789abcdef';

/*
 * Plan changes over HTTP against PostgreSQL and the emulator (through the SDK), with the
 * emulator's clock left alone: upgrades now, downgrades scheduled, previews, payments that
 * fail or need 3-D Secure, concurrency. Period ends and restarts: subscription-changes-period-end.test.ts.
 */
describe('plan changes (HTTP, PostgreSQL, the Stripe emulator)', () => {
  let server: TestServer;
  let stripe: Stripe;
  let forwarder: UsageForwarder;

  beforeAll(async () => {
    server = await startTestServer({
      USAGE_FORWARDER_ENABLED: 'false',
      RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
      RATE_LIMIT_USAGE_PER_MINUTE: '0',
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    });
    stripe = emulatorSdk(server);
    forwarder = new UsageForwarder({ orm: server.orm, gateway: server.gateway!, log: createLogger({ level: 'silent' }), baseBackoffMs: 10, maxBackoffMs: 50 });
  });
  afterAll(() => server.stop());

  const stripeItems = async (stripeId: string) =>
    (await stripe.subscriptions.retrieve(stripeId)).items.data.map((i) => [i.price.lookup_key, i.quantity ?? null]).sort();

  describe('starter -> pro (an upgrade: now, prorated, charged at once)', () => {
    it('charges exactly the preview, swaps the plan and adds the metered item in one update, and meters usage right after', async () => {
      const alice = await authHeader('change-alice');
      const sub = await paidSubscription(server, stripe, alice, { plan: 'starter' });

      const preview = await server.gql(PREVIEW, { input: { id: sub.id, plan: 'pro' } }, alice);
      expect(preview.errors).toBeUndefined();
      const p = preview.data.previewSubscriptionChange;
      expect(p).toMatchObject({ effective: 'IMMEDIATELY', currency: 'usd', amountDueAtRenewal: 9900 });
      expect(p.lines.map((l: { proration: boolean }) => l.proration)).toEqual([true, true]);
      const [credit, charge] = p.lines.map((l: { amount: number }) => l.amount);
      expect(credit).toBeLessThan(0);
      expect(charge).toBeGreaterThan(0);
      expect(p.amountDueNow).toBe(credit + charge);
      expect(p.amountDueNow).toBeGreaterThan(7900);

      const res = await server.gql(UPDATE, { input: { id: sub.id, plan: 'pro', prorationDate: p.prorationDate } }, alice);
      expect(res.errors).toBeUndefined();
      expect(res.data.updateSubscription).toMatchObject({ status: 'ACTIVE', product: { code: 'pro' }, price: { unitAmount: 9900 }, clientSecret: null, pendingChange: null });
      expect(await stripeItems(sub.stripeId)).toEqual([['pro_api_calls', null], ['pro_monthly', 1]]);
      const [invoice] = await invoicesOf(stripe, sub.stripeId);
      expect(invoice).toMatchObject({ billing_reason: 'subscription_update', status: 'paid', amount_paid: p.amountDueNow });

      const usage = await server.gql(RECORD, { input: { subscriptionId: sub.id, quantity: 40 } }, alice);
      expect(usage.errors).toBeUndefined();
      expect(usage.data.recordUsage.meter).toBe('api_calls');
      await forwarder.drain();
      expect(server.emulator!.meterEventCount(usage.data.recordUsage.id)).toBe(1);
      const upcoming = await stripe.invoices.createPreview({ subscription: sub.stripeId });
      expect(upcoming.lines.data.find((l) => l.description?.includes('usage'))?.amount).toBe(40);
    });
  });

  describe('pro -> starter (a downgrade: at the period end by default)', () => {
    it('schedules it with the current items until the period end and the new plan after, and shows pendingChange', async () => {
      const bob = await authHeader('change-bob');
      const sub = await paidSubscription(server, stripe, bob, { plan: 'pro' });
      const before = (await server.gql(GET, { id: sub.id }, bob)).data.subscription;

      const preview = (await server.gql(PREVIEW, { input: { id: sub.id, plan: 'starter' } }, bob)).data.previewSubscriptionChange;
      expect(preview).toMatchObject({ effective: 'PERIOD_END', amountDueNow: 0, amountDueAtRenewal: 1900, lines: [], renewsAt: before.currentPeriodEnd });

      const res = await server.gql(UPDATE, { input: { id: sub.id, plan: 'starter' } }, bob);
      expect(res.errors).toBeUndefined();
      expect(res.data.updateSubscription).toMatchObject({
        product: { code: 'pro' },
        pendingChange: { plan: 'starter', interval: 'MONTH', quantity: 1, effectiveAt: before.currentPeriodEnd, status: 'SCHEDULED', expiresAt: null },
      });
      const stripeSub = await stripe.subscriptions.retrieve(sub.stripeId);
      const schedule = await stripe.subscriptionSchedules.retrieve(stripeSub.schedule as string);
      expect(schedule).toMatchObject({ status: 'active', end_behavior: 'release' });
      const periodEnd = stripeSub.items.data[0].current_period_end;
      expect(schedule.phases.map((ph) => [ph.start_date < periodEnd, ph.end_date, ph.items.length])).toEqual([
        [true, periodEnd, 2],
        [false, expect.any(Number), 1],
      ]);
      expect(schedule.phases[1].start_date).toBe(periodEnd);
      // Nothing was charged for a change that has not happened.
      expect((await invoicesOf(stripe, sub.stripeId)).filter((i) => i.billing_reason === 'subscription_update')).toEqual([]);

      await server.emulator!.waitForWebhooks();
      const read = await server.gql(GET, { id: sub.id }, bob);
      expect(read.data.subscription.pendingChange).toMatchObject({ plan: 'starter', status: 'SCHEDULED' });
    });

    it('a new change replaces the scheduled one; cancelPendingChange releases it; canceling the subscription clears it', async () => {
      const carol = await authHeader('change-carol');
      const sub = await paidSubscription(server, stripe, carol, { plan: 'pro', quantity: 3 });
      const first = await server.gql(UPDATE, { input: { id: sub.id, plan: 'starter' } }, carol);
      expect(first.data.updateSubscription.pendingChange).toMatchObject({ plan: 'starter', quantity: 3 });
      const scheduleId = (await stripe.subscriptions.retrieve(sub.stripeId)).schedule as string;

      const replaced = await server.gql(UPDATE, { input: { id: sub.id, plan: 'starter', quantity: 2 } }, carol);
      expect(replaced.data.updateSubscription.pendingChange).toMatchObject({ plan: 'starter', quantity: 2 });
      expect((await stripe.subscriptions.retrieve(sub.stripeId)).schedule).toBe(scheduleId);
      const phases = (await stripe.subscriptionSchedules.retrieve(scheduleId)).phases;
      expect(phases[1].items.map((i) => i.quantity)).toEqual([2]);

      const dropped = await server.gql(CANCEL_PENDING, { id: sub.id }, carol);
      expect(dropped.errors).toBeUndefined();
      expect(dropped.data.cancelPendingChange).toMatchObject({ pendingChange: null, product: { code: 'pro' }, quantity: 3 });
      expect((await stripe.subscriptionSchedules.retrieve(scheduleId)).status).toBe('released');
      expect((await stripe.subscriptions.retrieve(sub.stripeId)).schedule).toBeNull();
      expect(await stripeItems(sub.stripeId)).toEqual([['pro_api_calls', null], ['pro_monthly', 3]]);

      await server.gql(UPDATE, { input: { id: sub.id, quantity: 1 } }, carol);
      const scheduled = (await server.gql(GET, { id: sub.id }, carol)).data.subscription;
      expect(scheduled.pendingChange).toMatchObject({ plan: 'pro', quantity: 1 });
      const canceled = await server.gql(`mutation($id: ID!) { cancelSubscription(id: $id) { cancelAtPeriodEnd pendingChange { plan } } }`, { id: sub.id }, carol);
      expect(canceled.data.cancelSubscription).toEqual({ cancelAtPeriodEnd: true, pendingChange: null });
      const stripeSub = await stripe.subscriptions.retrieve(sub.stripeId);
      expect(stripeSub.schedule).toBeNull();
      expect(stripeSub.cancel_at_period_end).toBe(true);
      await server.emulator!.waitForWebhooks();
      expect((await server.gql(GET, { id: sub.id }, carol)).data.subscription.pendingChange).toBeNull();
    });

    it('a late event of a released schedule neither brings its change back nor clears the newer one', async () => {
      const liz = await authHeader('change-liz');
      const sub = await paidSubscription(server, stripe, liz, { plan: 'pro' });
      await server.gql(UPDATE, { input: { id: sub.id, plan: 'starter' } }, liz);
      const first = (await stripe.subscriptions.retrieve(sub.stripeId)).schedule as string;
      await server.gql(CANCEL_PENDING, { id: sub.id }, liz);
      await server.gql(UPDATE, { input: { id: sub.id, plan: 'starter', quantity: 2 } }, liz);
      const second = (await stripe.subscriptions.retrieve(sub.stripeId)).schedule as string;
      expect(second).not.toBe(first);
      await server.emulator!.waitForWebhooks();

      // The first schedule as it looked while active, and as released, delivered again late.
      const stale = server.emulator!.events().filter((e) => e.data.object.id === first).map((e) => e.data.object);
      expect(stale.length).toBeGreaterThanOrEqual(2);
      for (const object of stale) {
        const res = await deliverSignedEvent(server.url, stripeEvent('subscription_schedule.updated', object), WEBHOOK_SECRET);
        expect(res.status).toBe(200);
      }
      await server.waitForJobs();
      await eventually(async () => {
        const rows = await server.orm.em.fork().getConnection().execute(`select stripe_schedule_id from subscriptions where id = ?`, [sub.id]);
        expect(rows[0].stripe_schedule_id).toBe(second);
      });
      expect((await server.gql(GET, { id: sub.id }, liz)).data.subscription.pendingChange).toMatchObject({ plan: 'starter', quantity: 2, status: 'SCHEDULED' });
    });

    it('made now on request, the usage of the removed metered item up to the change is billed on the change invoice', async () => {
      const dan = await authHeader('change-dan');
      const sub = await paidSubscription(server, stripe, dan, { plan: 'pro' });
      await server.gql(RECORD, { input: { subscriptionId: sub.id, quantity: 250 } }, dan);
      await forwarder.drain();
      const res = await server.gql(
        UPDATE,
        { input: { id: sub.id, plan: 'starter', effective: 'IMMEDIATELY', prorationBehavior: 'ALWAYS_INVOICE' } },
        dan,
      );
      expect(res.errors).toBeUndefined();
      expect(res.data.updateSubscription).toMatchObject({ product: { code: 'starter' }, pendingChange: null });
      expect(await stripeItems(sub.stripeId)).toEqual([['starter_monthly', 1]]);
      const [invoice] = await invoicesOf(stripe, sub.stripeId);
      expect(invoice.billing_reason).toBe('subscription_update');
      expect(invoice.lines.data.find((l) => l.description?.includes('usage'))).toMatchObject({ amount: 250, quantity: 250 });
      // Starter meters nothing: usage is refused rather than recorded against nothing.
      const after = await server.gql(RECORD, { input: { subscriptionId: sub.id, quantity: 1 } }, dan);
      expect(after.errors?.[0].extensions?.code).toBeDefined();
    });
  });

  describe('pro month -> year', () => {
    it('restarts the billing cycle now: unused month credited, usage so far billed, the year charged, all on one invoice', async () => {
      const erin = await authHeader('change-erin');
      const sub = await paidSubscription(server, stripe, erin, { plan: 'pro' });
      await server.gql(RECORD, { input: { subscriptionId: sub.id, quantity: 12 } }, erin);
      await forwarder.drain();
      const preview = (await server.gql(PREVIEW, { input: { id: sub.id, plan: 'pro', interval: 'YEAR' } }, erin)).data.previewSubscriptionChange;
      expect(preview.effective).toBe('IMMEDIATELY');
      expect(preview.amountDueAtRenewal).toBe(99900);

      const res = await server.gql(UPDATE, { input: { id: sub.id, plan: 'pro', interval: 'YEAR', prorationDate: preview.prorationDate } }, erin);
      expect(res.errors).toBeUndefined();
      const changed = res.data.updateSubscription;
      expect(changed).toMatchObject({ product: { code: 'pro' }, price: { interval: 'YEAR', unitAmount: 99900 } });
      expect(new Date(changed.currentPeriodEnd).getTime() - new Date(changed.currentPeriodStart).getTime()).toBeGreaterThan(364 * 86400_000);
      const [invoice] = await invoicesOf(stripe, sub.stripeId);
      const amounts = invoice.lines.data.map((l) => l.amount);
      expect(amounts).toEqual(expect.arrayContaining([99900, 12]));
      expect(amounts.some((a) => a < -9000)).toBe(true);
      expect(invoice.amount_paid).toBe(preview.amountDueNow);
      expect(invoice.lines.data.map((l) => l.amount)).toEqual(preview.lines.map((l: { amount: number }) => l.amount));
    });
  });

  describe('quantity', () => {
    it('more seats now (prorated, charged), fewer seats at the period end', async () => {
      const fay = await authHeader('change-fay');
      const sub = await paidSubscription(server, stripe, fay, { plan: 'starter' });
      const up = await server.gql(UPDATE, { input: { id: sub.id, quantity: 3 } }, fay);
      expect(up.data.updateSubscription).toMatchObject({ quantity: 3, pendingChange: null });
      const [invoice] = await invoicesOf(stripe, sub.stripeId);
      expect(invoice.billing_reason).toBe('subscription_update');
      expect(invoice.amount_paid).toBeGreaterThan(2 * 1900 - 50);
      expect(invoice.amount_paid).toBeLessThanOrEqual(2 * 1900);

      const down = await server.gql(UPDATE, { input: { id: sub.id, quantity: 2 } }, fay);
      expect(down.data.updateSubscription).toMatchObject({ quantity: 3, pendingChange: { plan: 'starter', quantity: 2, status: 'SCHEDULED' } });
      expect(await stripeItems(sub.stripeId)).toEqual([['starter_monthly', 3]]);
    });
  });

  describe('upgrade payments that need the customer', () => {
    it('a declined card leaves the old plan, answers with the clientSecret, and the plan changes once the customer pays', async () => {
      const gus = await authHeader('change-gus');
      const sub = await paidSubscription(server, stripe, gus, { plan: 'starter' });
      await switchCard(stripe, sub.stripeId, 'pm_card_chargeCustomerFail');
      const res = await server.gql(UPDATE, { input: { id: sub.id, plan: 'pro' } }, gus);
      expect(res.errors).toBeUndefined();
      const answer = res.data.updateSubscription;
      expect(answer).toMatchObject({ status: 'ACTIVE', product: { code: 'starter' }, pendingChange: { plan: 'pro', status: 'AWAITING_PAYMENT', effectiveAt: null } });
      expect(answer.clientSecret).toMatch(/_secret_/);
      expect(new Date(answer.pendingChange.expiresAt).getTime()).toBeGreaterThan(Date.now());
      expect(await stripeItems(sub.stripeId)).toEqual([['starter_monthly', 1]]);

      await stripe.paymentIntents.confirm(answer.clientSecret.split('_secret_')[0], { payment_method: 'pm_card_visa' });
      await server.emulator!.waitForWebhooks();
      const after = await eventually(async () => {
        const read = (await server.gql(GET, { id: sub.id }, gus)).data.subscription;
        expect(read.product.code).toBe('pro');
        return read;
      });
      expect(after).toMatchObject({ status: 'ACTIVE', pendingChange: null });
      expect(await stripeItems(sub.stripeId)).toEqual([['pro_api_calls', null], ['pro_monthly', 1]]);
    });

    it('3-D Secure: the change waits for authentication, then applies', async () => {
      const hal = await authHeader('change-hal');
      const sub = await paidSubscription(server, stripe, hal, { plan: 'starter' });
      await switchCard(stripe, sub.stripeId, 'pm_card_authenticationRequired');
      const res = await server.gql(UPDATE, { input: { id: sub.id, plan: 'pro' } }, hal);
      const answer = res.data.updateSubscription;
      expect(answer).toMatchObject({ product: { code: 'starter' }, pendingChange: { plan: 'pro', status: 'AWAITING_PAYMENT' } });
      const pi = answer.clientSecret.split('_secret_')[0];
      expect((await stripe.paymentIntents.retrieve(pi)).status).toBe('requires_action');
      const dropped = await server.gql(CANCEL_PENDING, { id: sub.id }, hal);
      expect(dropped.errors?.[0].extensions?.code).toBe('CONFLICT');

      await fetch(`${server.emulator!.url}/_emulator/payment_intents/${pi}/authenticate`, { method: 'POST' });
      await server.emulator!.waitForWebhooks();
      await eventually(async () => {
        const read = (await server.gql(GET, { id: sub.id }, hal)).data.subscription;
        expect(read).toMatchObject({ product: { code: 'pro' }, pendingChange: null });
      });
    });
  });

  describe('changes made in the billing portal (the same Stripe-side requests, arriving as webhooks)', () => {
    it('an upgrade made there shows the new plan, and a downgrade it schedules shows as pendingChange', async () => {
      const kim = await authHeader('change-kim');
      const sub = await paidSubscription(server, stripe, kim, { plan: 'starter' });
      const prices = (await stripe.prices.list({ lookup_keys: ['pro_monthly', 'pro_api_calls', 'starter_monthly'] })).data;
      const price = (key: string) => prices.find((p) => p.lookup_key === key)!.id;
      const current = await stripe.subscriptions.retrieve(sub.stripeId);
      // The portal's plan switch: one update of the items, prorations invoiced at once.
      await stripe.subscriptions.update(sub.stripeId, {
        items: [{ id: current.items.data[0].id, price: price('pro_monthly') }, { price: price('pro_api_calls') }],
        proration_behavior: 'always_invoice',
      });
      await server.emulator!.waitForWebhooks();
      await eventually(async () => {
        expect((await server.gql(GET, { id: sub.id }, kim)).data.subscription).toMatchObject({ product: { code: 'pro' }, pendingChange: null });
      });
      const usage = await server.gql(RECORD, { input: { subscriptionId: sub.id, quantity: 2 } }, kim);
      expect(usage.errors).toBeUndefined();

      // The portal's downgrade at the period end: a schedule made from the subscription.
      const periodEnd = current.items.data[0].current_period_end;
      const schedule = await stripe.subscriptionSchedules.create({ from_subscription: sub.stripeId });
      await stripe.subscriptionSchedules.update(schedule.id, {
        phases: [
          { items: [{ price: price('pro_monthly'), quantity: 1 }, { price: price('pro_api_calls') }], start_date: schedule.phases[0].start_date, end_date: periodEnd },
          { items: [{ price: price('starter_monthly'), quantity: 1 }] },
        ],
      });
      await server.emulator!.waitForWebhooks();
      await eventually(async () => {
        expect((await server.gql(GET, { id: sub.id }, kim)).data.subscription.pendingChange).toMatchObject({
          plan: 'starter',
          status: 'SCHEDULED',
          effectiveAt: new Date(periodEnd * 1000).toISOString(),
        });
      });
      await stripe.subscriptionSchedules.release(schedule.id);
      await server.emulator!.waitForWebhooks();
      await eventually(async () => {
        expect((await server.gql(GET, { id: sub.id }, kim)).data.subscription.pendingChange).toBeNull();
      });
    });
  });

  describe('concurrency', () => {
    it('concurrent changes to one subscription run one after the other and leave Stripe and the row in the same state', async () => {
      const ivy = await authHeader('change-ivy');
      const sub = await paidSubscription(server, stripe, ivy, { plan: 'starter', quantity: 2 });
      const inputs = [
        { id: sub.id, plan: 'pro' },
        { id: sub.id, quantity: 1 },
        { id: sub.id, plan: 'starter', quantity: 4 },
        { id: sub.id, plan: 'pro', interval: 'YEAR' },
      ];
      const results = await Promise.all(inputs.map((input) => server.gql(UPDATE, { input }, ivy)));
      for (const r of results) expect(r.errors).toBeUndefined();
      await server.emulator!.waitForWebhooks();

      const row = (await server.gql(GET, { id: sub.id }, ivy)).data.subscription;
      const stripeSub = await stripe.subscriptions.retrieve(sub.stripeId);
      const licensed = stripeSub.items.data.find((i) => i.price.recurring?.usage_type === 'licensed')!;
      expect([row.product.code, row.price.unitAmount, row.quantity]).toEqual([
        licensed.price.lookup_key!.split('_')[0],
        licensed.price.unit_amount,
        licensed.quantity,
      ]);
      expect(stripeSub.items.data.filter((i) => i.price.recurring?.usage_type === 'licensed')).toHaveLength(1);
      if (row.pendingChange) {
        const schedule = await stripe.subscriptionSchedules.retrieve(stripeSub.schedule as string);
        expect(schedule.status).toBe('active');
        expect(schedule.phases[1].items.find((i) => i.quantity != null)?.quantity).toBe(row.pendingChange.quantity);
      } else {
        expect(stripeSub.schedule).toBeNull();
      }
    });
  });

  describe('input', () => {
    it('answers coded errors for bad changes and changes nothing', async () => {
      const joe = await authHeader('change-joe');
      const sub = await paidSubscription(server, stripe, joe, { plan: 'starter' });
      const cases: [Record<string, unknown>, string][] = [
        [{ id: sub.id }, 'BAD_USER_INPUT'],
        [{ id: sub.id, plan: 'enterprise' }, 'BAD_USER_INPUT'],
        [{ id: sub.id, quantity: 0 }, 'BAD_USER_INPUT'],
        [{ id: sub.id, plan: 'pro', priceId: sub.id }, 'BAD_USER_INPUT'],
        [{ id: 'nope', plan: 'pro' }, 'BAD_USER_INPUT'],
      ];
      for (const [input, code] of cases) {
        for (const op of [UPDATE, PREVIEW]) {
          const res = await server.gql(op, { input }, joe);
          expect([input, res.errors?.[0].extensions?.code]).toEqual([input, code]);
        }
      }
      expect(await stripeItems(sub.stripeId)).toEqual([['starter_monthly', 1]]);
    });
  });
});
