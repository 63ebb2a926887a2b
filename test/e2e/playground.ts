import type { Page } from 'playwright-core';

/**
 * Drives the GraphiQL playground at /graphql the way a person does: typing into its editors,
 * pressing the run button and reading the result pane. GraphiQL's editors are Monaco editors,
 * which put only the lines in view into the page, so an operation's answer must fit in the
 * result pane (select only the fields a step checks).
 */
export class Playground {
  constructor(readonly page: Page) {}

  async open(baseUrl: string): Promise<void> {
    await this.page.goto(`${baseUrl}/graphql`);
    await this.page.locator('.graphiql-query-editor .monaco-editor .view-lines').waitFor({ timeout: 20_000 });
    // The schema arrives by introspection; completion and validation need it, running does not.
    await this.page.locator('.graphiql-execute-button').waitFor();
  }

  /** The text a Monaco editor shows, line by line in screen order (Monaco reuses line nodes). */
  private async editorText(selector: string): Promise<string> {
    return this.page.locator(selector).first().evaluate((root) => {
      const lines = [...root.querySelectorAll<HTMLElement>('.view-lines .view-line')];
      lines.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
      return lines.map((l) => (l.textContent ?? '').replace(/\u00a0/g, ' ')).join('\n');
    });
  }

  /** What the headers tab shows (local mode fills it with the dev token). */
  async headersText(): Promise<string> {
    const selector = '.graphiql-editor-tool .monaco-editor[data-uri*="header" i]';
    if (!(await this.page.locator(selector).isVisible())) await this.page.getByRole('button', { name: 'Headers' }).first().click();
    await this.page.locator(selector).waitFor({ state: 'visible', timeout: 5_000 });
    return this.editorText(selector);
  }

  async resultText(): Promise<string> {
    return this.editorText('.graphiql-response');
  }

  /**
   * Replaces the operation in the query editor with `operation` (typed in, as a paste would),
   * presses the run button and returns the answer once the result pane shows it. `operation` must be
   * a named operation: that is how the request for it is told apart from GraphiQL's own
   * introspection.
   */
  async run(operation: string): Promise<any> {
    const name = /^\s*(?:query|mutation)\s+(\w+)/.exec(operation)?.[1];
    if (!name) throw new Error(`give the operation a name: ${operation}`);
    const editor = this.page.locator('.graphiql-query-editor .monaco-editor .view-lines');
    await editor.click();
    await this.page.keyboard.press('ControlOrMeta+A');
    await this.page.keyboard.press('Delete');
    // Typed as one line with insertText (the whole string at once), so Monaco's auto-closing
    // brackets, auto-indent and suggestion popups do not rewrite it as key-by-key typing would;
    // then GraphiQL's Prettify button lays it out for the screenshot.
    await this.page.keyboard.insertText(operation.replace(/\s+/g, ' ').trim());
    await this.page.getByRole('button', { name: /prettify/i }).click();
    const typed = (await this.editorText('.graphiql-query-editor')).trim();
    if (typed.replace(/\s+/g, '') !== operation.replace(/\s+/g, '')) {
      throw new Error(`the query editor shows\n${typed}\ninstead of\n${operation}`);
    }
    // GraphiQL picks the operation to run from the editor a moment after it changes; its tab
    // takes the operation's name at the same time. Running earlier runs the previous operation.
    await this.page.locator('.graphiql-tab-active', { hasText: name }).waitFor({ timeout: 10_000 });
    const response = this.page.waitForResponse(
      (r) => r.url().endsWith('/graphql') && r.request().method() === 'POST' && (r.request().postData() ?? '').includes(name),
      { timeout: 30_000 },
    );
    await this.page.locator('.graphiql-execute-button').click();
    const served = await response.then(
      (r) => r.json(),
      async (error: Error) => {
        throw new Error(`${name} was not sent to the server (${error.message}); the result pane shows:\n${await this.resultText()}`);
      },
    );
    // Wait for the pane to show what the server answered. The pane wraps long lines (a Checkout
    // URL) wherever it likes, so the two are compared with all white space taken out: every
    // character of the answer must be on screen, in order.
    const expected = JSON.stringify(served).replace(/\s+/g, '');
    let shown = '';
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      shown = await this.resultText();
      if (shown.replace(/\s+/g, '') === expected) return served;
      await this.page.waitForTimeout(100);
    }
    throw new Error(`the result pane did not show the answer to ${name}; it shows:\n${shown}\nthe server answered:\n${JSON.stringify(served)}`);
  }
}
