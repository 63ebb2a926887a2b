/**
 * Tollgate as `npm start` runs it in local mode (embedded PostgreSQL in DATA_DIR, the in-process
 * Stripe emulator, the default catalog), started through the same `startServer` as production.
 * Forked by bench/run.ts so that its RSS and CPU are its own; reports over IPC what the load
 * generator needs (URLs, the database URL) and serves a few control commands.
 */
import 'reflect-metadata';
import { applyHeapSettings } from '../../src/common/heap';
import { createLogger } from '../../src/common/logger';
import { loadConfig } from '../../src/config/env';
import { startJobRunner, type RunningJobs } from '../../src/jobs/job-runner';
import { startServer } from '../../src/server';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { onControl, reportReady } from './ipc';

async function main(): Promise<void> {
  // The environment comes from the parent (DATA_DIR, AUTH_JWT_SECRET, STRIPE_WEBHOOK_SECRET...).
  const config = loadConfig(process.env, { envFiles: [] });
  // As src/main.ts does.
  applyHeapSettings(config.heapGrowingPercent);
  const log = createLogger({ level: config.logLevel });
  const server = await startServer(config, { log });
  const emulator = server.emulator;
  // CPU profiles of one scenario at a time (`npm run bench -- --profile`), same format as --cpu-prof.
  let profiler: Session | undefined;
  // The job engine's worker of this process: paused to build a backlog, then started again.
  let jobs: RunningJobs | undefined = server.jobs;

  onControl(
    async (cmd, args) => {
      switch (cmd) {
        case 'events':
          // What the emulator emitted while the parent set up users: templates for webhook deliveries.
          return emulator ? emulator.events() : [];
        case 'meterEventCount':
          return emulator ? emulator.meterEventCount() : 0;
        case 'memory':
          return process.memoryUsage();
        case 'memoryAfterGc': {
          // With --expose-gc (`--server-node-args --expose-gc`): what is live, without garbage.
          const gc = (globalThis as { gc?: () => void }).gc;
          if (!gc) throw new Error('start the server with --expose-gc');
          gc();
          return process.memoryUsage();
        }
        case 'waitForWebhooks':
          await emulator?.waitForWebhooks(30_000);
          return null;
        case 'pauseJobs':
          await jobs?.stop();
          jobs = undefined;
          return null;
        case 'resumeJobs':
          if (!jobs && server.gateway) jobs = await startJobRunner({ config, databaseUrl: server.database.url, gateway: server.gateway, log });
          return null;
        case 'profileStart':
          profiler = new Session();
          profiler.connect();
          await profiler.post('Profiler.enable');
          await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
          await profiler.post('Profiler.start');
          return null;
        case 'profileStop': {
          if (!profiler) throw new Error('no profile running');
          const { profile } = await profiler.post('Profiler.stop');
          profiler.disconnect();
          profiler = undefined;
          await writeFile((args as { file: string }).file, JSON.stringify(profile));
          return null;
        }
        default:
          throw new Error(`unknown command ${cmd}`);
      }
    },
    async () => {
      // A worker started here is not the server's own: stop it first (the server's is stopped once).
      if (jobs !== server.jobs) await jobs?.stop();
      await server.close();
    },
  );

  reportReady({
    url: `http://127.0.0.1:${server.port}`,
    databaseUrl: server.database.url,
    emulatorUrl: emulator?.url ?? null,
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
