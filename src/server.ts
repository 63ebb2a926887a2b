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
import { CatalogSyncService } from './billing/catalog/catalog-sync.service';
import { startEmulator, type RunningEmulator } from './emulator';
import { startDefinitionsListener } from './billing/entitlements/definitions-listener';
import { DisabledStripeGateway } from './stripe/disabled.gateway';
import { gatewayFromConfig } from './stripe/gateway-from-config';
import { LOCAL_EMULATOR_SECRET_KEY, writeLocalEmulatorEndpoint } from './stripe/local-emulator-endpoint';
import type { StripeGateway } from './stripe/stripe.gateway';
import path from 'node:path';
import { createAuthenticator } from './auth/authenticator';
import { ensureLocalAuthSecret, signToken } from './auth/dev-secret';
import { createWebhookHandler } from './webhooks/webhook.router';
import { ensureLocalWebhookSecret } from './webhooks/local-webhook-secret';
import { WebhookIngestService } from './webhooks/webhook.service';
import { StripeEventRepository } from './webhooks/stripe-event.repository';
import { eventHandlers } from './webhooks/handlers/handler-registry';
import { StripeWebhookVerifier } from './stripe/webhook-verifier';
import { installJobQueue, startJobRunner, type RunningJobs } from './jobs/job-runner';
import { JobQueueRepository, TASKS } from './jobs/job-queue.repository';
import { setQueueDepthSource } from './common/metrics';
import { withPoolConnection } from './db/raw-query';
import { catalogCacheFor } from './billing/catalog/catalog-cache';
import { onUsageRecorded } from './billing/usage/usage-recorded.signal';
import { UsageForwardWaker } from './jobs/usage-forward-waker';

/** How long requests in flight may take to finish when the server stops. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface RunningServer {
  url: string;
  port: number;
  config: AppConfig;
  orm: MikroORM;
  app: App;
  database: DatabaseHandle;
  /** A DisabledStripeGateway when billing is disabled. */
  gateway: StripeGateway;
  /** The in-process Stripe emulator (local mode). */
  emulator?: RunningEmulator;
  /** Local mode: a token for the dev user, also pre-filled in the playground. */
  devToken?: string;
  /** The job engine's worker in this process; absent when WORKER_ENABLED is off or billing is. */
  jobs?: RunningJobs;
  /**
   * Resolves when the shared queue has no job running or due (jobs waiting for a later retry
   * aside), whichever process works it; rejects after `timeoutMs`.
   */
  waitForJobs(timeoutMs?: number): Promise<void>;
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
      : await openDatabase(
          config,
          (line) => log.debug({ postgres: line.trim() }, 'embedded postgres'),
          (line) => log.warn(line),
        );
    closers.push({ name: 'database', close: () => database.close() });

    const orm = await initORM({ url: database.url, poolMax: config.database.poolMax, log });
    closers.push({ name: 'orm', close: () => orm.close() });
    const applied = await migrate(orm);
    if (applied.length) log.info({ migrations: applied }, 'migrations applied');
    // Features and limits are cached per customer; every instance drops its entries when any instance writes.
    const definitions = await startDefinitionsListener(orm.em, database.url, log);
    closers.push({ name: 'definitions listener', close: () => definitions.close() });

    let gateway: StripeGateway = new DisabledStripeGateway();
    let emulator: RunningEmulator | undefined;
    let webhookSecret: string | undefined;
    let webhookSecrets: string[] = [];
    /** Local mode: where the emulator's signing secret is kept (unless STRIPE_WEBHOOK_SECRET gives it). */
    let webhookSecretFile: string | undefined;
    if (config.billingEnabled) {
      if (config.stripe.secretKey) {
        webhookSecret = config.stripe.webhookSecret;
        webhookSecrets = config.stripe.webhookSecrets;
        gateway = gatewayFromConfig(config, { log });
      } else {
        // Local mode: the built-in emulator stands in for Stripe, reached through the same SDK.
        // Its state is kept in DATA_DIR next to the database, so Stripe ids stay valid across restarts.
        emulator = await startEmulator({
          port: 0,
          stateFile: path.join(config.dataDir, 'stripe-emulator.json'),
          stateFsync: config.emulatorFsync,
          logger: (line) => log.debug({ emulator: line }, 'stripe emulator'),
        });
        closers.push({ name: 'emulator', close: () => emulator!.close() });
        if (config.stripe.webhookSecret) webhookSecret = config.stripe.webhookSecret;
        else ({ secret: webhookSecret, file: webhookSecretFile } = await ensureLocalWebhookSecret(config.dataDir));
        webhookSecrets = config.stripe.webhookSecrets.length ? config.stripe.webhookSecrets : [webhookSecret];
        gateway = gatewayFromConfig(config, { log, secretKey: LOCAL_EMULATOR_SECRET_KEY, apiBase: emulator.url, webhookSecret });
        // Commands such as `npm run clock` reach this emulator through the file.
        closers.push({ name: 'emulator endpoint', close: await writeLocalEmulatorEndpoint(config.dataDir, emulator.url) });
      }
    }

    if (config.mode === 'local') {
      // The same sync as `npm run catalog:sync`: a changed amount becomes a new price in Stripe and
      // a new row here, so subscriptions on the old price keep showing what they pay.
      const catalog = await loadCatalogFile(config.catalogFile);
      if (gateway.enabled) {
        const synced = await new CatalogSyncService(gateway, orm.em.fork()).sync(catalog);
        log.info({ changes: synced.changes.length, conflicts: synced.conflicts.length }, 'catalog synced');
      } else {
        log.info(await seedCatalog(orm.em.fork(), catalog), 'catalog loaded');
      }
    }

    // Local mode keeps one generated secret in DATA_DIR, so tokens survive restarts.
    const jwtSecret = config.auth.jwtSecret ?? (config.mode === 'local' ? await ensureLocalAuthSecret(config.dataDir) : undefined);
    const authenticate = createAuthenticator({ ...config.auth, jwtSecret });
    const devToken =
      config.mode === 'local' && jwtSecret
        ? await signToken(jwtSecret, 'dev-user', { email: 'dev@example.com', issuer: config.auth.issuer, audience: config.auth.audience })
        : undefined;

    // The route records and enqueues with graphile_worker.add_job, so the queue's schema must
    // exist even when no worker runs in this process.
    const jobQueue = new JobQueueRepository(config.worker.maxAttempts);
    if (gateway.enabled) await installJobQueue(database.url, log);
    const webhookHandler =
      gateway.enabled && webhookSecrets.length
        ? createWebhookHandler({
            verifier: new StripeWebhookVerifier(webhookSecrets),
            ingest: new WebhookIngestService(orm, new StripeEventRepository(jobQueue), eventHandlers),
            mode: gateway.mode,
            log: log.child({ component: 'webhooks' }),
          })
        : undefined;
    const app = await createApp({ config, orm, log, gateway, authenticate, devToken, webhookHandler });
    closers.push({ name: 'apollo', close: () => app.stop() });

    const server: Server = await new Promise((resolve, reject) => {
      const s = app.express.listen(config.port, config.host, () => resolve(s));
      s.once('error', reject);
    });
    closers.push({
      name: 'http',
      close: () =>
        new Promise<void>((resolve) => {
          // Stop accepting, drop idle keep-alive connections, and let requests in flight finish
          // before the database goes: a handler cut off mid-way would still be querying a closed
          // pool. Connections still busy after the grace period are cut.
          const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
          force.unref();
          // A keep-alive connection that finishes its request goes idle, then waits out the
          // keep-alive timeout: close idle ones as they appear rather than waiting for it.
          const idle = setInterval(() => server.closeIdleConnections(), 50);
          server.close(() => {
            clearTimeout(force);
            clearInterval(idle);
            resolve();
          });
          server.closeIdleConnections();
        }),
    });
    const port = (server.address() as AddressInfo).port;
    const shownHost = config.host === '0.0.0.0' || config.host === '127.0.0.1' ? 'localhost' : config.host;
    const url = `http://${shownHost}:${port}`;
    // Local mode: the emulator delivers its events to this app, signed with the gateway's secret.
    if (emulator && webhookSecret) {
      const hookHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
      emulator.addWebhookEndpoint({ url: `http://${hookHost.includes(':') ? `[${hookHost}]` : hookHost}:${port}/webhooks/stripe`, secret: webhookSecret });
    }

    // The worker starts after listen and stops before the database closes (closers run in reverse).
    let jobs: RunningJobs | undefined;
    if (gateway.enabled && config.worker.enabled) {
      // Catalog writes of the worker go through its own ORM: this process's catalog cache is told
      // here (other instances see them within the cache's time-to-live).
      const catalogObjects = new Set(['product', 'price']);
      jobs = await startJobRunner({
        config,
        databaseUrl: database.url,
        gateway,
        log,
        onApplied: (job) => {
          if (catalogObjects.has(job.objectType)) catalogCacheFor(orm.em).invalidate();
        },
      });
      closers.push({ name: 'jobs', close: () => jobs!.stop() });
    }
    if (gateway.enabled) {
      setQueueDepthSource(() => withPoolConnection(orm, (client) => jobQueue.depth(client)));
      closers.push({ name: 'queue-metrics', close: async () => setQueueDepthSource(null) });
    }
    const waitForJobs = async (timeoutMs = 20_000) => {
      if (!gateway.enabled) return;
      const deadline = Date.now() + timeoutMs;
      while (!(await withPoolConnection(orm, (client) => jobQueue.idle(client, [TASKS.stripeObject])))) {
        if (Date.now() > deadline) throw new Error(`jobs still running after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };

    // Usage is forwarded by the job engine (the forward_usage task, on a worker's own pool);
    // recording it here wakes that job, debounced, with one statement after the request.
    if (gateway.enabled && config.usageForwarder.enabled) {
      const waker = new UsageForwardWaker({
        addJob: () => withPoolConnection(orm, (client) => jobQueue.addUsageForwardJob(client)),
        intervalMs: config.usageForwarder.intervalMs,
        log,
      });
      const unsubscribe = onUsageRecorded(() => waker.wake());
      closers.push({
        name: 'usage-forward-waker',
        close: async () => {
          unsubscribe();
          waker.stop();
        },
      });
    }

    const banner = [
      `Tollgate is running in ${config.mode} mode`,
      `  GraphQL     ${url}/graphql${config.playground ? '  (playground: open it in a browser)' : ''}`,
      `  Health      ${url}/healthz  ${url}/readyz`,
      `  Database    ${database.embedded ? `embedded PostgreSQL on 127.0.0.1:${database.embedded.port}, data in ${database.embedded.dataDir}` : redactUrl(database.url)}`,
      ...(devToken ? [`  Dev token   ${devToken}`, `              (user "dev-user"; another: npm run token -- <userId> [--admin])`] : []),
      `  Stripe      ${emulator ? `the built-in Stripe emulator at ${emulator.url}` : describeStripe(config)}`,
      ...(emulator
        ? [`  Webhooks    ${url}/webhooks/stripe, signed with ${webhookSecretFile ? `the secret in ${webhookSecretFile}` : 'STRIPE_WEBHOOK_SECRET'}`]
        : []),
    ].join('\n');

    return { url, port, config, orm, app, database, gateway, emulator, devToken, jobs, waitForJobs, banner, close: closeAll };
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
