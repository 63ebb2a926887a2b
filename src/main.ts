import 'reflect-metadata';
import { ConfigError, loadConfig } from './config/env';
import { applyHeapSettings } from './common/heap';
import { createLogger } from './common/logger';
import { startServer } from './server';

/** `npm start`: runs the API; in local mode with embedded PostgreSQL and the Stripe emulator. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
  applyHeapSettings(config.heapGrowingPercent);
  const log = createLogger({ level: config.logLevel });
  const started = Date.now();
  const server = await startServer(config, { log });
  log.info({ url: server.url, mode: config.mode, startupMs: Date.now() - started }, 'server started');
  process.stdout.write(`\n${server.banner}\n  Started in ${Date.now() - started} ms. Press Ctrl-C to stop.\n\n`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await server.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
