/**
 * `npm run emulator -- [--port 12111] [--host 127.0.0.1] [--allow-non-loopback]
 *   [--webhook URL] [--webhook-secret whsec_...] [--state-file PATH] [--fsync] [--save-delay-ms 200] [--quiet]
 *   [--dunning-retry-days 3,5,7] [--dunning-after-last cancel|unpaid|past_due]`
 * Runs the Stripe emulator until SIGINT/SIGTERM. With --state-file the state survives restarts
 * and kill -9 (--fsync: power cuts too, each write flushed to the disk before the answer).
 */
import { parseArgs } from 'node:util';
import { startEmulator, type AfterLastRetry, type EmulatorOptions } from './index';

const USAGE =
  'usage: npm run emulator -- [--port 12111] [--host 127.0.0.1] [--allow-non-loopback] [--webhook URL] [--webhook-secret whsec_...] [--state-file PATH] [--fsync] [--save-delay-ms 200] [--quiet] [--dunning-retry-days 3,5,7] [--dunning-after-last cancel|unpaid|past_due]';

function wholeNumber(value: string | undefined, flag: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > max) throw new Error(`invalid --${flag} ${value}`);
  return n;
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    args: process.argv.slice(2),
    options: {
      help: { type: 'boolean', short: 'h' },
      port: { type: 'string' },
      host: { type: 'string' },
      'allow-non-loopback': { type: 'boolean' },
      webhook: { type: 'string' },
      'webhook-secret': { type: 'string' },
      'state-file': { type: 'string' },
      fsync: { type: 'boolean' },
      'save-delay-ms': { type: 'string' },
      quiet: { type: 'boolean' },
      'dunning-retry-days': { type: 'string' },
      'dunning-after-last': { type: 'string' },
    },
  });
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const port = wholeNumber(args.port, 'port', 65535) ?? 12111;
  if (args['state-file'] === '') throw new Error('--state-file needs a path');
  const retryDays = args['dunning-retry-days']?.split(',').filter((d) => d.trim() !== '').map(Number);
  const afterLast = args['dunning-after-last'] as AfterLastRetry | undefined;
  const options: EmulatorOptions = {
    port,
    host: args.host ?? '127.0.0.1',
    allowNonLoopback: args['allow-non-loopback'] === true,
    logger: args.quiet ? undefined : (line) => console.log(`[emulator] ${line}`),
    stateFile: args['state-file'],
    stateFsync: args.fsync === true,
    stateSaveDelayMs: wholeNumber(args['save-delay-ms'], 'save-delay-ms', 3_600_000),
    dunning: { retryDays, afterLast },
  };
  const emu = await startEmulator(options);
  const u = new URL(emu.url);
  console.log(`Stripe emulator ready at ${emu.url}`);
  console.log('SDK config:');
  console.log(`  new Stripe('sk_test_emulator', { host: '${u.hostname}', port: ${emu.port}, protocol: 'http' })`);
  if (args.webhook !== undefined) {
    const secret = args['webhook-secret'];
    const we = emu.addWebhookEndpoint({ url: args.webhook, secret });
    console.log(`Webhooks: all events to ${args.webhook}, signing secret ${secret ? '(as given)' : we.secret}`);
  }
  console.log('Control: POST /_emulator/clock/advance {"seconds":N}, POST /_emulator/faults, GET /_emulator/meter-events');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping emulator`);
    emu.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
