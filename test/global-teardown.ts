import { rm } from 'node:fs/promises';
import path from 'node:path';

export default async function globalTeardown(): Promise<void> {
  const db = globalThis.__TOLLGATE_EMBEDDED_PG__;
  if (!db) return;
  await db.stop();
  await rm(path.dirname(db.dataDir), { recursive: true, force: true });
}
