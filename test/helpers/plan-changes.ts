import Stripe from 'stripe';
import type { TestServer } from './test-server';

/** What tests read back about a subscription, in the API's terms. */
export const SUB_FIELDS = `id status quantity currentPeriodStart currentPeriodEnd cancelAtPeriodEnd clientSecret
  product { code } price { unitAmount interval }
  pendingChange { plan interval quantity effectiveAt status expiresAt }`;
export const START = `mutation($input: StartSubscriptionInput!) { startSubscription(input: $input) { clientSecret subscription { id } } }`;
export const UPDATE = `mutation($input: UpdateSubscriptionInput!) { updateSubscription(input: $input) { ${SUB_FIELDS} } }`;
export const PREVIEW = `query($input: UpdateSubscriptionInput!) { previewSubscriptionChange(input: $input) {
  effective currency amountDueNow amountDueAtRenewal renewsAt prorationDate
  lines { description amount quantity proration periodStart periodEnd } renewalLines { amount proration } } }`;
export const CANCEL_PENDING = `mutation($id: ID!) { cancelPendingChange(id: $id) { ${SUB_FIELDS} } }`;
export const GET = `query($id: ID!) { subscription(id: $id) { ${SUB_FIELDS} } }`;
export const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id meter quantity } }`;

/** The official SDK against the test server's emulator, to see what Stripe holds and to act as the browser. */
export function emulatorSdk(server: TestServer): Stripe {
  return new Stripe('sk_test_tollgate_local_emulator', { host: '127.0.0.1', port: server.emulator!.port, protocol: 'http', maxNetworkRetries: 0 });
}

/** Retries `check` until it stops throwing (webhooks are applied asynchronously). */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export async function stripeIdOf(server: TestServer, id: string): Promise<string> {
  const [row] = await server.orm.em.fork().getConnection().execute(`select stripe_subscription_id from subscriptions where id = ?`, [id]);
  return row.stripe_subscription_id;
}

/**
 * Starts `plan` for the user and pays the first invoice in the browser's place with a card
 * that works (it becomes the subscription's default), then waits for the webhooks.
 */
export async function paidSubscription(
  server: TestServer,
  stripe: Stripe,
  headers: Record<string, string>,
  input: Record<string, unknown>,
): Promise<{ id: string; stripeId: string }> {
  const started = await server.gql(START, { input }, headers);
  expect(started.errors).toBeUndefined();
  const id = started.data.startSubscription.subscription.id;
  const secret: string = started.data.startSubscription.clientSecret;
  await stripe.paymentIntents.confirm(secret.split('_secret_')[0], { payment_method: 'pm_card_visa' });
  await server.emulator!.waitForWebhooks();
  await eventually(async () => {
    const res = await server.gql(GET, { id }, headers);
    expect(res.data.subscription.status).toBe('ACTIVE');
  });
  return { id, stripeId: await stripeIdOf(server, id) };
}

/** Makes `card` (a test token) the subscription's default payment method in Stripe. */
export async function switchCard(stripe: Stripe, stripeSubscriptionId: string, card: string): Promise<void> {
  const sub = await stripe.subscriptions.retrieve(stripeSubscriptionId);
  const pm = await stripe.paymentMethods.attach(card, { customer: sub.customer as string });
  await stripe.subscriptions.update(stripeSubscriptionId, { default_payment_method: pm.id });
}

export async function invoicesOf(stripe: Stripe, stripeSubscriptionId: string): Promise<Stripe.Invoice[]> {
  return (await stripe.invoices.list({ subscription: stripeSubscriptionId, limit: 100 })).data;
}
