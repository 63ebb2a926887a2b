/**
 * `npm run emulator -- [--port 12111] [--host 127.0.0.1] [--allow-non-loopback]
 *   [--webhook URL] [--webhook-secret whsec_...] [--state-file PATH] [--quiet]
 *   [--dunning-retry-days 3,5,7] [--dunning-after-last cancel|unpaid|past_due]`
 * Runs the Stripe emulator until SIGINT/SIGTERM. With --state-file the state survives restarts.
 */
import { startEmulator, type AfterLastRetry, type EmulatorOptions } from './index';

function parseArgs(argv: string[]): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) out[a.slice(2)] = argv[++i];
    else out[a.slice(2)] = true;
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.help || args.h) {
    console.log('usage: npm run emulator -- [--port 12111] [--host 127.0.0.1] [--allow-non-loopback] [--webhook URL] [--webhook-secret whsec_...] [--state-file PATH] [--quiet] [--dunning-retry-days 3,5,7] [--dunning-after-last cancel|unpaid|past_due]');
    return;
  }
  const port = args.port !== undefined ? Number(args.port) : 12111;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid --port ${String(args.port)}`);
  if (args['state-file'] !== undefined && (typeof args['state-file'] !== 'string' || args['state-file'] === '')) {
    throw new Error('--state-file needs a path');
  }
  const retryDays = typeof args['dunning-retry-days'] === 'string' ? args['dunning-retry-days'].split(',').filter((d) => d.trim() !== '').map(Number) : undefined;
  const afterLast = typeof args['dunning-after-last'] === 'string' ? (args['dunning-after-last'] as AfterLastRetry) : undefined;
  const options: EmulatorOptions = {
    port,
    host: typeof args.host === 'string' ? args.host : '127.0.0.1',
    allowNonLoopback: args['allow-non-loopback'] === true,
    logger: args.quiet ? undefined : (line) => console.log(`[emulator] ${line}`),
    stateFile: typeof args['state-file'] === 'string' ? args['state-file'] : undefined,
    dunning: { retryDays, afterLast },
  };
  const emu = await startEmulator(options);
  const u = new URL(emu.url);
  console.log(`Stripe emulator ready at ${emu.url}`);
  console.log('SDK config:');
  console.log(`  new Stripe('sk_test_emulator', { host: '${u.hostname}', port: ${emu.port}, protocol: 'http' })`);
  if (typeof args.webhook === 'string') {
    const secret = typeof args['webhook-secret'] === 'string' ? args['webhook-secret'] : undefined;
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
