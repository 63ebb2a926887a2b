import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ensureSecretFile } from '../common/secret-file';

/** File under the data directory that holds the local-mode webhook signing secret. */
export const WEBHOOK_SECRET_FILE = 'stripe-webhook-secret';

/**
 * The secret the local emulator signs its webhook deliveries with: created once in
 * `${dataDir}/stripe-webhook-secret` (mode 0600) and reused afterwards, so a tool that verifies
 * deliveries (a second app, `stripe listen`-style scripts, tests) keeps working across restarts.
 */
export async function ensureLocalWebhookSecret(dataDir: string): Promise<{ secret: string; file: string }> {
  const file = path.join(dataDir, WEBHOOK_SECRET_FILE);
  const secret = await ensureSecretFile(file, () => `whsec_${randomBytes(24).toString('hex')}`);
  if (!/^whsec_[A-Za-z0-9]+$/.test(secret)) throw new Error(`${file} does not hold a webhook secret (whsec_...); delete it to create a new one`);
  return { secret, file };
}
