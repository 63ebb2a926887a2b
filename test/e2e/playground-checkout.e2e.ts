import type { Page } from 'playwright-core';
import { launchOfflineBrowser, type OfflineBrowser } from './browser';
import { startLocalServer, type LocalServer } from './local-server';
import { Playground } from './playground';
import { Steps } from './steps';

/**
 * A first visit to Tollgate as a person makes it, in headless Chromium with everything outside
 * localhost blocked: the playground of a local-mode server, then the emulator's hosted Checkout.
 */
describe('playground and hosted Checkout in a browser (local mode)', () => {
  let local: LocalServer | undefined;
  let browser: OfflineBrowser | undefined;
  let page: Page | undefined;
  let playground: Playground;
  const steps = new Steps(() => page);

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

      const result = await playground.run('query Products { products { code name } }');
      expect(result.errors).toBeUndefined();
      const codes = result.data.products.map((p: { code: string }) => p.code);
      expect(codes).toEqual(expect.arrayContaining(['starter', 'pro', 'micro-feature']));
      // Everything the page needed came from this server.
      expect(browser!.blocked).toEqual([]);
    }));
});
