import { parseArgs } from 'node:util';
import { describeAdvance, describeClock } from '../billing/customers/clock-report';
import { TestClockService } from '../billing/customers/test-clock.service';
import { BillingError } from '../common/errors';
import { LOCAL_TEST_CLOCK, type AppConfig } from '../config/env';
import { gatewayFromConfig } from '../stripe/gateway-from-config';
import { localEmulatorEndpointFile, readLocalEmulatorEndpoint } from '../stripe/local-emulator-endpoint';
import type { StripeGateway } from '../stripe/stripe.gateway';
import { loadCliConfig } from './cli-config';
import { ExitError, runCli, usageError } from './run-cli';

const USAGE = `usage: npm run clock -- status [--clock <name>]
       npm run clock -- advance <span | date> [--clock <name>] [--timeout <seconds>]
       npm run clock -- card <email | cus_…> <visa | declining | 3ds | pm_card_…>

Moves the Stripe test clock the app creates its customers on (local mode: "${LOCAL_TEST_CLOCK}" in the
built-in emulator of the running npm start; test mode: STRIPE_TEST_CLOCK). Their subscriptions
renew, trials end and failed payments are retried as if that time had passed; Stripe's events
reach the app as webhooks.

  status             where the clock stands
  advance <span>     1month, 2w, 7d, 12h, 1y, or an ISO date (2027-03-01); waits until the clock
                     is ready again and prints the invoices, status changes and events
  card <who> <card>  replaces the customer's card as the billing portal would (test mode):
                     visa pays, declining attaches and then declines every charge, 3ds asks
                     for 3-D Secure on every charge
  --clock <name>     another clock than the configured one
  --timeout <s>      how long to wait for the clock to be ready (default 120)`;

/** Test cards by what they do. */
const CARDS: Record<string, string> = { visa: 'pm_card_visa', declining: 'pm_card_chargeCustomerFail', '3ds': 'pm_card_authenticationRequired' };

interface Args {
  command: 'status' | 'advance' | 'card';
  spec?: string;
  card?: string;
  clock?: string;
  timeoutMs: number;
}

function parse(argv: string[]): Args {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        clock: { type: 'string' },
        timeout: { type: 'string', default: '120' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw usageError(error, USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help) throw new ExitError(0, USAGE);
  const [command, spec, ...rest] = positionals;
  const timeout = Number(values.timeout);
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 3600) throw new ExitError(2, `--timeout must be a whole number of seconds from 1 to 3600\n${USAGE}`);
  if (command === 'status' && spec === undefined) return { command, clock: values.clock, timeoutMs: timeout * 1000 };
  if (command === 'advance' && spec !== undefined && !rest.length) return { command, spec, clock: values.clock, timeoutMs: timeout * 1000 };
  if (command === 'card' && spec !== undefined && rest.length === 1) {
    const card = CARDS[rest[0]] ?? (/^pm_card_\w+$/.test(rest[0]) ? rest[0] : undefined);
    if (!card) throw new ExitError(2, `unknown card "${rest[0]}": visa, declining, 3ds or a pm_card_… test card\n${USAGE}`);
    return { command, spec, card, timeoutMs: timeout * 1000 };
  }
  throw new ExitError(2, USAGE);
}

/** The gateway to the Stripe the app uses: the running local server's emulator, or the configured key. */
async function gatewayFor(config: AppConfig): Promise<{ gateway: StripeGateway; where: string }> {
  if (config.mode === 'production') throw new ExitError(1, 'npm run clock does not run in production: test clocks exist only in test mode.');
  if (config.stripe.secretKey) return { gateway: gatewayFromConfig(config), where: 'Stripe (test mode)' };
  const endpoint = await readLocalEmulatorEndpoint(config.dataDir);
  if (!endpoint) {
    throw new ExitError(1, `No local server found (${localEmulatorEndpointFile(config.dataDir)} is missing): start the app with npm start first.`);
  }
  return {
    gateway: gatewayFromConfig(config, { secretKey: endpoint.secretKey, apiBase: endpoint.apiBase }),
    where: `the emulator of npm start (${endpoint.apiBase})`,
  };
}

async function main(argv: string[]): Promise<void> {
  const args = parse(argv);
  const config = loadCliConfig();
  if (!config) throw new ExitError(1, 'Fix the configuration above first.');
  const name = args.clock ?? config.stripe.testClock ?? (config.mode === 'local' ? LOCAL_TEST_CLOCK : undefined);
  if (!name && args.command !== 'card') throw new ExitError(1, 'No test clock is configured: set STRIPE_TEST_CLOCK (test mode only) or pass --clock <name>.');
  const { gateway, where } = await gatewayFor(config);
  const clocks = new TestClockService(gateway, { timeoutMs: args.timeoutMs });
  try {
    if (args.command === 'status') {
      const clock = await clocks.find(name!);
      console.log(clock ? `${describeClock(clock)}\nin ${where}` : `No test clock named "${name}" in ${where} yet: it is created with the first customer.`);
      return;
    }
    if (args.command === 'card') {
      const switched = await gateway.switchTestCard({ customer: args.spec!, card: args.card! });
      const subs = switched.subscriptionIds.length ? ` and of ${switched.subscriptionIds.join(', ')}` : '';
      console.log(`${args.card} (${switched.paymentMethodId}) is now the default card of ${switched.customerId}${subs}.`);
      return;
    }
    const advance = await clocks.advance(name!, args.spec!);
    console.log(describeAdvance(advance).join('\n'));
  } catch (error) {
    if (error instanceof BillingError) {
      // A developer's tool: Stripe's own words say more than the message made for end users.
      const stripeSaid = error.cause instanceof Error && error.cause.message !== error.message ? `\nStripe: ${error.cause.message}` : '';
      const hint = error.code === 'PAYMENT_PROVIDER_ERROR' && !config.stripe.secretKey && !stripeSaid ? ' (is npm start still running?)' : '';
      throw new ExitError(error.code === 'BAD_USER_INPUT' ? 2 : 1, `${error.message}${hint}${stripeSaid}`);
    }
    throw error;
  }
}

runCli(main);
