import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded-postgres';

declare global {
   
  var __TOLLGATE_EMBEDDED_PG__: EmbeddedDatabase | undefined;
}

/**
 * One PostgreSQL server for the whole run: TEST_DATABASE_URL when given (an external server),
 * otherwise an embedded cluster in a temporary directory. Each test file creates its own
 * database on it (test/helpers/database.ts), so files run in parallel.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_DATABASE_URL) {
    process.env.TOLLGATE_TEST_PG = process.env.TEST_DATABASE_URL;
    return;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-test-pg-'));
  const db = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), persistent: false });
  globalThis.__TOLLGATE_EMBEDDED_PG__ = db;
  process.env.TOLLGATE_TEST_PG = db.url;
}
