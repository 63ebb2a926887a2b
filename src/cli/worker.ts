import { loadCliConfig } from './cli-config';
import 'reflect-metadata';
import { createLogger } from '../common/logger';
import { initORM, migrate } from '../db/orm';
import { installJobQueue, startJobRunner } from '../jobs/job-runner';
import { gatewayFromConfig } from '../stripe/gateway-from-config';

const USAGE = `usage: npm run worker

Runs a worker of the job engine on its own: applies the Stripe events the webhook route
recorded, and catches up on missed deliveries. Any number of workers and app instances share
one database (set WORKER_ENABLED=false on app instances that should only serve requests).
Needs DATABASE_URL and STRIPE_SECRET_KEY (connected mode); in local mode the worker runs
inside npm start.`;

/** `npm run worker`: the job engine's worker alone, until SIGINT or SIGTERM. */
async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  if (args.length) {
    console.error(`unknown argument: ${args[0]}\n\n${USAGE}`);
    return 2;
  }
  const config = loadCliConfig();
  if (!config) return 1;
  if (!config.billingEnabled) {
    console.error('Billing is disabled (ENABLE_BILLING=false): there are no Stripe events to apply.');
    return 1;
  }
  if (!config.stripe.secretKey || !config.database.url) {
    console.error('npm run worker needs DATABASE_URL and STRIPE_SECRET_KEY; in local mode the worker runs inside npm start.');
    return 1;
  }
  const log = createLogger({ level: config.logLevel });
  const databaseUrl = config.database.url;

  // A worker may start before any app instance: the schema it works on is brought up to date first.
  const orm = await initORM({ url: databaseUrl, poolMax: 1, log });
  try {
    await migrate(orm);
  } finally {
    await orm.close();
  }
  await installJobQueue(databaseUrl, log);
  const jobs = await startJobRunner({ config, databaseUrl, gateway: gatewayFromConfig(config, { log }), log });
  log.info({ concurrency: config.worker.concurrency, poolMax: config.worker.poolMax }, 'worker started');

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'worker stopping');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await jobs.stop();
  log.info('worker stopped');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
