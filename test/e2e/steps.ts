import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';

/** Screenshots of the steps, one per step, numbered in the order they ran. Ignored by git. */
export const SCREENSHOT_DIR = path.resolve(__dirname, '../../test-output/e2e');

function slug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 60);
}

/**
 * Runs the named steps of one scenario in order. Each step leaves a screenshot, on success and on
 * failure alike, and a failure names the step and its screenshot. The steps build on each other,
 * so once one fails the later ones fail at once, naming the step that broke the chain.
 */
export class Steps {
  private count = 0;
  private broken?: string;

  constructor(private readonly page: () => Page | undefined) {
    rmSync(SCREENSHOT_DIR, { recursive: true, force: true });
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
  }

  async run(name: string, fn: () => Promise<void>): Promise<void> {
    const number = ++this.count;
    const label = `step ${number} "${name}"`;
    if (this.broken) throw new Error(`${label} not run: ${this.broken} failed`);
    const file = path.join(SCREENSHOT_DIR, `${String(number).padStart(2, '0')}-${slug(name)}.png`);
    try {
      await fn();
    } catch (error) {
      this.broken = label;
      const shot = await this.screenshot(file);
      const message = error instanceof Error ? error.message : String(error);
      const failure = new Error(`${label} failed: ${message}\n  screenshot: ${shot}`);
      if (error instanceof Error && error.stack) failure.stack = `${failure.message}\n${error.stack.split('\n').slice(1).join('\n')}`;
      throw failure;
    }
    const shot = await this.screenshot(file);
    if (!shot.startsWith('/')) throw new Error(`${label} passed but its screenshot could not be saved: ${shot}`);
  }

  private async screenshot(file: string): Promise<string> {
    const page = this.page();
    if (!page || page.isClosed()) return '(no page open)';
    try {
      await page.screenshot({ path: file, fullPage: true, timeout: 10_000 });
      return file;
    } catch (error) {
      return `(screenshot failed: ${error instanceof Error ? error.message : String(error)})`;
    }
  }
}
