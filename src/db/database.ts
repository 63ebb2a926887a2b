import path from 'node:path';
import { Client } from 'pg';
import type { AppConfig } from '../config/env';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-postgres';

export interface DatabaseHandle {
  url: string;
  /** Set when the database is the embedded cluster in DATA_DIR. */
  embedded?: EmbeddedDatabase;
  close(): Promise<void>;
}

const EMBEDDED_DB_NAME = 'tollgate';

/** Creates `name` on the server of `serverUrl` unless it exists. */
export async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`create database ${client.escapeIdentifier(name)}`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created meanwhile by a concurrent start
      });
    }
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * DATABASE_URL when configured, otherwise the embedded cluster kept in DATA_DIR/postgres.
 * `onLog` gets the server's own output, `onNotice` what start-up did about a crashed run.
 */
export async function openDatabase(config: AppConfig, onLog?: (line: string) => void, onNotice?: (line: string) => void): Promise<DatabaseHandle> {
  if (config.database.url) return { url: config.database.url, close: async () => undefined };
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(config.dataDir, 'postgres'), onLog, onNotice });
  try {
    const url = await ensureDatabase(embedded.url, EMBEDDED_DB_NAME);
    return { url, embedded, close: () => embedded.stop() };
  } catch (error) {
    await embedded.stop();
    throw error;
  }
}

/** Runs `fn` with a database URL and releases the embedded cluster afterwards. */
export async function withDatabase<T>(config: AppConfig, fn: (url: string) => Promise<T>): Promise<T> {
  const db = await openDatabase(config);
  try {
    return await fn(db.url);
  } finally {
    await db.close();
  }
}
