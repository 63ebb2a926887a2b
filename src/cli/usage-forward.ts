import { loadCliConfig } from './cli-config';
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { UsageForwarder } from '../billing/usage/usage-forwarder';
import { createLogger } from '../common/logger';
import { withDatabase } from '../db/database';
import { initORM } from '../db/orm';
import { installJobQueue, startJobRunner } from '../jobs/job-runner';
import { gatewayFromConfig } from '../stripe/gateway-from-config';

const USAGE = `usage: npm run usage:forward [-- --once]

Sends recorded usage to Stripe: a worker of the job engine that runs only the usage
forwarding (the forward_usage job, one run at a time across every instance), beside any
number of app instances and workers on the same database. Needs DATABASE_URL and
STRIPE_SECRET_KEY (connected mode); in local mode the forwarding runs inside npm start.

  --once   send everything due now, then exit (1 when something could not be sent);
           rows are claimed with FOR UPDATE SKIP LOCKED, so this may run beside the job`;

/** `npm run usage:forward`: the usage forwarder on its own. */
async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: { once: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    }));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const once = values.once;

  const config = loadCliConfig();
  if (!config) return 1;
  if (!config.billingEnabled) {
    console.error('Billing is disabled (ENABLE_BILLING=false): there is nothing to forward usage to.');
    return 1;
  }
  if (!config.stripe.secretKey) {
    console.error('usage:forward needs STRIPE_SECRET_KEY (and DATABASE_URL); in local mode the forwarder runs inside npm start.');
    return 1;
  }
  const log = createLogger({ level: config.logLevel });
  const gateway = gatewayFromConfig(config, { log });

  return withDatabase(config, async (url) => {
    if (once) {
      const orm = await initORM({ url, poolMax: config.worker.poolMax });
      try {
        const forwarder = UsageForwarder.fromConfig(config, { orm, gateway, log });
        const result = await forwarder.drain();
        const lag = await forwarder.updateLag();
        console.log(JSON.stringify({ ...result, oldestPendingSeconds: lag }));
        return result.retrying || result.failed ? 1 : 0;
      } finally {
        await orm.close();
      }
    }
    await installJobQueue(url, log);
    const jobs = await startJobRunner({
      config: { ...config, usageForwarder: { ...config.usageForwarder, enabled: true } },
      databaseUrl: url,
      gateway,
      log,
      only: 'usage',
    });
    // Printed once the worker runs, so supervisors and tests know it is up.
    console.log('usage forwarder running; Ctrl-C to stop');
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await jobs.stop();
    console.log(JSON.stringify(jobs.usageForwarder?.totals ?? {}));
    return 0;
  });
}

main()
  .then((code) => process.exit(code))
  .catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
