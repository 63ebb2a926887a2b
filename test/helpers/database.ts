import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { ensureDatabase } from '../../src/db/database';

/** The PostgreSQL server of this test run (embedded, or TEST_DATABASE_URL). */
export function testServerUrl(): string {
  const url = process.env.TOLLGATE_TEST_PG;
  if (!url) throw new Error('TOLLGATE_TEST_PG is not set: run tests through jest (test/global-setup.ts)');
  return url;
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** A fresh, empty database for one test file, so test files run in parallel without sharing rows. */
export async function createTestDatabase(prefix = 'tollgate_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const url = await ensureDatabase(testServerUrl(), name);
  return {
    url,
    name,
    drop: async () => {
      const client = new Client({ connectionString: testServerUrl() });
      await client.connect();
      try {
        await client.query(`drop database if exists ${client.escapeIdentifier(name)} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}
