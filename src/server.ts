import type { MikroORM } from '@mikro-orm/postgresql';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { loadCatalogFile } from './billing/catalog/catalog-file';
import { seedCatalog } from './billing/catalog/catalog-seeder';
import { createApp, type App } from './app';
import type { AppConfig } from './config/env';
import { openDatabase, type DatabaseHandle } from './db/database';
import { initORM, migrate } from './db/orm';

export interface RunningServer {
  url: string;
  port: number;
  config: AppConfig;
  orm: MikroORM;
  app: App;
  database: DatabaseHandle;
  /** What the start-up banner prints. */
  banner: string;
  close(): Promise<void>;
}

export interface StartOptions {
  log: Logger;
  /** Database URL to use instead of DATABASE_URL / the embedded cluster (tests). */
  databaseUrl?: string;
}

/**
 * Start-up in one place: config -> database (+ migrations, catalog) -> Stripe -> app -> listen.
 * The same path serves `npm start`, tests and benchmarks; parts are closed in reverse order.
 */
export async function startServer(config: AppConfig, options: StartOptions): Promise<RunningServer> {
  const { log } = options;
  const closers: { name: string; close: () => Promise<unknown> }[] = [];
  const closeAll = async () => {
    for (const { name, close } of closers.reverse()) {
      try {
        log.debug({ part: name }, 'closing');
        await close();
      } catch (error) {
        log.warn({ err: error }, 'error while shutting down');
      }
    }
    closers.length = 0;
  };

  try {
    const database: DatabaseHandle = options.databaseUrl
      ? { url: options.databaseUrl, close: async () => undefined }
      : await openDatabase(config, (line) => log.debug({ postgres: line.trim() }, 'embedded postgres'));
    closers.push({ name: 'database', close: () => database.close() });

    const orm = await initORM({ url: database.url, poolMax: config.database.poolMax });
    closers.push({ name: 'orm', close: () => orm.close() });
    const applied = await migrate(orm);
    if (applied.length) log.info({ migrations: applied }, 'migrations applied');

    if (config.mode === 'local') {
      const catalog = await loadCatalogFile(config.catalogFile);
      const seeded = await seedCatalog(orm.em.fork(), catalog);
      log.info(seeded, 'catalog loaded');
    }

    const app = await createApp({ config, orm, log });
    closers.push({ name: 'apollo', close: () => app.stop() });

    const server: Server = await new Promise((resolve, reject) => {
      const s = app.express.listen(config.port, config.host, () => resolve(s));
      s.once('error', reject);
    });
    closers.push({
      name: 'http',
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    });
    const port = (server.address() as AddressInfo).port;
    const shownHost = config.host === '0.0.0.0' || config.host === '127.0.0.1' ? 'localhost' : config.host;
    const url = `http://${shownHost}:${port}`;

    const banner = [
      `Tollgate is running in ${config.mode} mode`,
      `  GraphQL     ${url}/graphql${config.playground ? '  (playground: open it in a browser)' : ''}`,
      `  Health      ${url}/healthz  ${url}/readyz`,
      `  Database    ${database.embedded ? `embedded PostgreSQL on 127.0.0.1:${database.embedded.port}, data in ${database.embedded.dataDir}` : redactUrl(database.url)}`,
      `  Stripe      ${describeStripe(config)}`,
    ].join('\n');

    return { url, port, config, orm, app, database, banner, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return `external PostgreSQL ${u.toString()}`;
  } catch {
    return 'external PostgreSQL';
  }
}

function describeStripe(config: AppConfig): string {
  if (!config.billingEnabled) return 'billing disabled (ENABLE_BILLING=false)';
  const key = config.stripe.secretKey;
  if (!key) return 'the built-in Stripe emulator';
  const live = /_live_/.test(key);
  return `${live ? 'LIVE' : 'test'} mode${config.stripe.apiBase ? ` at ${config.stripe.apiBase}` : ''}`;
}
