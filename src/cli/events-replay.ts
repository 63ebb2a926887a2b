import { loadCliConfig } from './cli-config';
import 'reflect-metadata';
import { Client } from 'pg';
import { withDatabase } from '../db/database';
import { installJobQueue } from '../jobs/job-runner';
import { JobQueueRepository } from '../jobs/job-queue.repository';
import { createLogger } from '../common/logger';
import { StripeEventRepository } from '../webhooks/stripe-event.repository';
import { replayEvents } from '../webhooks/webhook-replay';

const USAGE = `usage: npm run events:replay [-- [--wait] [evt_1 evt_2 ...]]

Enqueues failed Stripe events (or the ones named) on the job engine again; a worker (inside
the app, or npm run worker) applies them. Needs the app's DATABASE_URL.

  --wait   wait (up to 60 s) until a worker has applied them, print each outcome, and exit 1
           when one still fails`;

const WAIT_MS = 60_000;

/** `npm run events:replay`: re-enqueues failed events from the stripe_events ledger. */
async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const wait = args.includes('--wait');
  const unknown = args.filter((a) => a.startsWith('-') && a !== '--wait');
  if (unknown.length) {
    console.error(`unknown argument: ${unknown[0]}\n\n${USAGE}`);
    return 2;
  }
  const eventIds = args.filter((a) => !a.startsWith('-'));
  const config = loadCliConfig();
  if (!config) return 1;
  const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel });
  return withDatabase(config, async (url) => {
    await installJobQueue(url, log);
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      const events = new StripeEventRepository(new JobQueueRepository(config.worker.maxAttempts));
      const results = await replayEvents(client, events, { eventIds });
      if (!results.length) {
        console.log('No failed events to replay.');
        return 0;
      }
      const enqueued = results.filter((r) => r.outcome === 'enqueued').map((r) => r.eventId);
      let statuses = new Map<string, { status: string; error: string | null }>();
      if (wait && enqueued.length) {
        const deadline = Date.now() + WAIT_MS;
        for (;;) {
          const { rows } = await client.query<{ stripe_event_id: string; status: string; error: string | null }>(
            `select stripe_event_id, status, error from stripe_events where stripe_event_id = any($1::text[])`,
            [enqueued],
          );
          statuses = new Map(rows.map((r) => [r.stripe_event_id, r]));
          if (rows.every((r) => r.status !== 'received') || Date.now() > deadline) break;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      let failing = 0;
      for (const r of results) {
        const s = statuses.get(r.eventId);
        const shown = s ? s.status : r.outcome;
        if (s && s.status !== 'processed' && s.status !== 'ignored') failing++;
        if (r.outcome === 'not_found') failing++;
        console.log(`${r.eventId}  ${r.type || '-'}  ${shown}${s?.error ? `  ${s.error}` : ''}`);
      }
      console.log(`${enqueued.length} enqueued, ${results.length - enqueued.length} not replayable or unknown`);
      return failing ? 1 : 0;
    } finally {
      await client.end();
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
