import type { Page } from 'playwright-core';
import { launchOfflineBrowser, type OfflineBrowser } from './browser';
import { startLocalServer, type LocalServer } from './local-server';
import { Playground } from './playground';
import { Steps } from './steps';

/** Runs `attempt` until it returns a value, for state that webhooks bring a moment later. */
async function eventually<T>(attempt: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await attempt();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} within ${timeoutMs / 1000} s${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * A first visit to Tollgate as a person makes it, in headless Chromium with everything outside
 * localhost blocked: the playground of a local-mode server (`npm start`), a Checkout for the
 * Starter plan paid on the emulator's hosted page, and the result back in the playground.
 */
describe('playground and hosted Checkout in a browser (local mode)', () => {
  let local: LocalServer | undefined;
  let browser: OfflineBrowser | undefined;
  let page: Page | undefined;
  let playground: Playground;
  const steps = new Steps(() => page);

  // What one step finds and the next one uses.
  let starterId = '';
  let checkoutUrl = '';
  let successUrl = '';

  beforeAll(async () => {
    local = await startLocalServer();
    browser = await launchOfflineBrowser();
    page = await browser.context.newPage();
    playground = new Playground(page);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await local?.stop();
  });

  it('opens the playground offline with the dev token in its headers and lists the plans', () =>
    steps.run('playground lists products', async () => {
      await playground.open(local!.url);
      const headers = JSON.parse(await playground.headersText());
      expect(headers).toEqual({ Authorization: `Bearer ${local!.devToken}` });

      const result = await playground.run('query Products {\n  products { id code name }\n}');
      expect(result.errors).toBeUndefined();
      const products: { id: string; code: string }[] = result.data.products;
      expect(products.map((p) => p.code)).toEqual(expect.arrayContaining(['starter', 'pro', 'micro-feature']));
      starterId = products.find((p) => p.code === 'starter')!.id;
      // Everything the page needed came from this server.
      expect(browser!.blocked).toEqual([]);
    }));

  it('creates a Checkout session for the Starter plan in the playground', () =>
    steps.run('playground creates checkout session', async () => {
      successUrl = `${local!.url}/healthz?session={CHECKOUT_SESSION_ID}`;
      const result = await playground.run(
        [
          'mutation StarterCheckout {',
          '  createCheckoutSession(input: {',
          `    productId: "${starterId}"`,
          `    successUrl: "${successUrl}"`,
          `    cancelUrl: "${local!.url}/healthz?canceled=1"`,
          '  }) { id url status mode }',
          '}',
        ].join('\n'),
      );
      expect(result.errors).toBeUndefined();
      const session = result.data.createCheckoutSession;
      expect(session).toMatchObject({ status: 'open', mode: 'subscription' });
      expect(session.url).toMatch(/^http:\/\/(127\.0\.0\.1|localhost):\d+\/checkout\/cs_/);
      checkoutUrl = session.url;
    }));

  it('opens the hosted Checkout page with the Starter plan on it', () =>
    steps.run('hosted checkout page', async () => {
      const response = await page!.goto(checkoutUrl);
      expect(response?.status()).toBe(200);
      await page!.getByRole('heading', { name: 'Checkout' }).waitFor();
      const summary = await page!.locator('table').innerText();
      expect(summary).toContain('Starter');
      expect(summary).toContain('19.00 USD');
    }));

  it('pays with the test card and lands on the success URL', () =>
    steps.run('pay and land on success url', async () => {
      const sessionId = /\/checkout\/(cs_[^/?#]+)/.exec(checkoutUrl)![1];
      const expected = successUrl.replace('{CHECKOUT_SESSION_ID}', sessionId);
      await Promise.all([page!.waitForURL(expected, { timeout: 15_000 }), page!.getByRole('button', { name: 'Pay' }).click()]);
      expect(page!.url()).toBe(expected);
      // The success page here is the app's /healthz, which any local server answers.
      expect(await page!.locator('body').innerText()).toContain('"status":"ok"');
      expect(browser!.blocked).toEqual([]);
    }));

  it('shows the subscription active in the playground', () =>
    steps.run('playground shows subscription active', async () => {
      await playground.open(local!.url);
      // checkout.session.completed reaches the app as a webhook, just after the redirect.
      const subscriptions = await eventually(async () => {
        const result = await playground.run('query Subscriptions {\n  subscriptions { id status product { code } }\n}');
        expect(result.errors).toBeUndefined();
        const subs: { status: string; product: { code: string } }[] = result.data.subscriptions;
        return subs.some((s) => s.status === 'ACTIVE') ? subs : undefined;
      }, 'no ACTIVE subscription');
      expect(subscriptions).toEqual([expect.objectContaining({ status: 'ACTIVE', product: { code: 'starter' } })]);
    }));

  it('shows the first invoice paid in the playground', () =>
    steps.run('playground shows invoice paid', async () => {
      const invoices = await eventually(async () => {
        const result = await playground.run('query Invoices {\n  invoices { edges { node { number status currency amountPaid } } }\n}');
        expect(result.errors).toBeUndefined();
        const nodes: { status: string }[] = result.data.invoices.edges.map((e: { node: unknown }) => e.node);
        return nodes.some((n) => n.status === 'PAID') ? nodes : undefined;
      }, 'no PAID invoice');
      expect(invoices).toEqual([expect.objectContaining({ status: 'PAID', currency: 'usd', amountPaid: 1900 })]);
    }));
});
