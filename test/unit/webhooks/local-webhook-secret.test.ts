import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureLocalWebhookSecret, WEBHOOK_SECRET_FILE } from '../../../src/webhooks/local-webhook-secret';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'webhook-secret-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe(ensureLocalWebhookSecret.name, () => {
  it('creates a whsec_ secret once, owner-only, and returns the same one afterwards', async () => {
    const first = await ensureLocalWebhookSecret(path.join(dir, 'data'));
    expect(first.file).toBe(path.join(dir, 'data', WEBHOOK_SECRET_FILE));
    expect(first.secret).toMatch(/^whsec_[0-9a-f]{48}$/);
    expect((await stat(first.file)).mode & 0o777).toBe(0o600);
    expect((await readFile(first.file, 'utf8')).trim()).toBe(first.secret);
    expect(await ensureLocalWebhookSecret(path.join(dir, 'data'))).toEqual(first);
  });

  it('gives concurrent starts the same secret', async () => {
    const all = await Promise.all(Array.from({ length: 8 }, () => ensureLocalWebhookSecret(dir)));
    expect(new Set(all.map((s) => s.secret)).size).toBe(1);
  });

  it('refuses a file that holds something else than a webhook secret', async () => {
    await writeFile(path.join(dir, WEBHOOK_SECRET_FILE), 'not a secret\n');
    await expect(ensureLocalWebhookSecret(dir)).rejects.toThrow(/does not hold a webhook secret/);
  });
});
