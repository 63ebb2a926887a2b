import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { signToken } from '../../src/auth/dev-secret';
import { loadCatalogFile, type CatalogDefinition } from '../../src/billing/catalog/catalog-file';
import { loadConfig, type AppConfig, type Env } from '../../src/config/env';
import { createLogger } from '../../src/common/logger';
import { startServer, type RunningServer } from '../../src/server';
import { createTestDatabase, type TestDatabase } from './database';

export interface TestServer extends RunningServer {
  db: TestDatabase;
  /** POSTs a GraphQL operation and returns the parsed body and status. */
  gql<T = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GqlResponse<T>>;
  stop(): Promise<void>;
}

export interface GqlResponse<T> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: { code?: string; [k: string]: unknown }; path?: (string | number)[] }[];
}

/** The HS256 secret test servers verify tokens with. */
export const TEST_JWT_SECRET = 'tollgate-test-secret-0123456789abcdefghij';

/** The config a test server runs with: local mode, a random port, quiet logs, no env files. */
/**
 * Production settings for a test server: Stripe and auth as production requires them. The
 * database URL is a placeholder; the test server puts its own database in.
 */
export const PRODUCTION_ENV: Env = {
  NODE_ENV: 'production',
  STRIPE_SECRET_KEY: 'sk_test_production1',
  STRIPE_WEBHOOK_SECRET: 'whsec_production1',
  DATABASE_URL: 'postgres://ignored:ignored@127.0.0.1:1/ignored',
  AUTH_JWT_SECRET: 'production-secret-of-at-least-32-chars',
};

export function testConfig(env: Env = {}): AppConfig {
  return loadConfig({ NODE_ENV: 'test', PORT: '0', LOG_LEVEL: 'silent', AUTH_JWT_SECRET: TEST_JWT_SECRET, ...env }, { envFiles: [] });
}

/** A bearer header for `userId`, signed like a real identity provider would. */
export async function authHeader(userId: string, options: { admin?: boolean; email?: string } = {}): Promise<Record<string, string>> {
  const token = await signToken(TEST_JWT_SECRET, userId, { admin: options.admin, email: options.email ?? `${userId}@example.com`, expiresIn: '1h' });
  return { authorization: `Bearer ${token}` };
}

/** The real app on a real port, over a fresh database on the test PostgreSQL server. */
export interface TestServerOptions {
  /** Starts on the default catalog as this changes it (written to a CATALOG_FILE in the server's data directory). */
  catalog?: (catalog: CatalogDefinition) => void;
}

export async function startTestServer(env: Env = {}, options: TestServerOptions = {}): Promise<TestServer> {
  const db = await createTestDatabase();
  // Each server gets its own DATA_DIR (emulator state, secrets): parallel test files never share one.
  const dataDir = env.DATA_DIR ? undefined : await mkdtemp(path.join(os.tmpdir(), 'tollgate-test-data-'));
  if (options.catalog) {
    const catalog = await loadCatalogFile(path.resolve(__dirname, '../../catalog/default.json'));
    options.catalog(catalog);
    env = { ...env, CATALOG_FILE: path.join(env.DATA_DIR ?? dataDir!, 'catalog.json') };
    await writeFile(env.CATALOG_FILE!, JSON.stringify(catalog));
  }
  const config = testConfig({ ...(dataDir ? { DATA_DIR: dataDir } : {}), ...env });
  const cleanup = async () => {
    await db.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  };
  let server: RunningServer;
  try {
    server = await startServer(config, { log: createLogger({ level: 'silent' }), databaseUrl: db.url });
  } catch (error) {
    await cleanup();
    throw error;
  }
  const url = `http://127.0.0.1:${server.port}`;
  // Deliveries are acknowledged once recorded and applied by the job engine afterwards: a test
  // waiting for the emulator's webhooks waits for the jobs they enqueued as well.
  const emulator = server.emulator;
  if (emulator) {
    const waitForDeliveries = emulator.waitForWebhooks.bind(emulator);
    emulator.waitForWebhooks = async (timeoutMs) => {
      await waitForDeliveries(timeoutMs);
      await server.waitForJobs(timeoutMs === undefined ? undefined : Math.max(timeoutMs, 20_000));
    };
  }
  return {
    ...server,
    url,
    db,
    gql: (query, variables, headers) => postGraphQL(`${url}/graphql`, query, variables, headers),
    stop: async () => {
      await server.close();
      await cleanup();
    },
  };
}

export async function postGraphQL<T = any>(
  endpoint: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GqlResponse<T>> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as Omit<GqlResponse<T>, 'status'>;
  return { status: res.status, ...body };
}
