import 'reflect-metadata';
import { createLogger } from '../common/logger';
import { loadConfig } from '../config/env';
import { withDatabase } from '../db/database';
import { initORM } from '../db/orm';
import { gatewayFromConfig } from '../stripe/gateway-from-config';
import { replayEvents } from '../webhooks/webhook-replay';

/**
 * `npm run events:replay [-- evt_1 evt_2]`: re-applies failed Stripe events (or the ones named)
 * from the stripe_events ledger, through the same handlers as a delivery.
 * Handlers may read from Stripe, so this needs the Stripe settings of the app (connected mode).
 */
async function main(): Promise<number> {
  const eventIds = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const config = loadConfig();
  if (!config.stripe.secretKey) {
    console.error(
      'events:replay needs STRIPE_SECRET_KEY (and DATABASE_URL): handlers read from Stripe.\n' +
        'In local mode the emulator lives inside the running server; failed events there are retried by its own deliveries.',
    );
    return 1;
  }
  const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel });
  return withDatabase(config, async (url) => {
    const orm = await initORM({ url, poolMax: 2 });
    try {
      const gateway = gatewayFromConfig(config);
      const results = await replayEvents({ orm, gateway, log }, { eventIds });
      if (!results.length) console.log('No failed events to replay.');
      for (const r of results) console.log(`${r.eventId}  ${r.type || '-'}  ${r.outcome}${r.error ? `  ${r.error}` : ''}`);
      const bad = results.filter((r) => r.outcome === 'failed' || r.outcome === 'not_found').length;
      const skipped = results.filter((r) => r.outcome === 'not_replayable' || r.outcome === 'duplicate').length;
      if (results.length) console.log(`${results.length - bad - skipped} replayed, ${skipped} already applied, ${bad} still failing or unknown`);
      return bad ? 1 : 0;
    } finally {
      await orm.close();
    }
  });
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
