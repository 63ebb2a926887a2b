import { parseArgs } from 'node:util';
import { ensureLocalAuthSecret, signToken } from '../auth/dev-secret';
import { loadConfig } from '../config/env';
import { ExitError, runCli, usageError } from './run-cli';

/**
 * `npm run token -- <userId> [--admin] [--email x] [--expires 1h] [--silent]`: prints an access
 * token the running setup accepts. It signs with AUTH_JWT_SECRET when set, otherwise (local
 * mode) with the secret the server keeps in the data directory. A JWKS-only setup trusts an
 * external issuer, whose private key this tool does not have, so it refuses.
 */

const USAGE = 'usage: npm run token -- <userId> [--admin] [--email <email>] [--expires <span, e.g. 1h>] [--silent]';


function parse(argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        admin: { type: 'boolean', default: false },
        email: { type: 'string' },
        expires: { type: 'string' },
        silent: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw usageError(error, USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help) throw new ExitError(0, USAGE);
  if (positionals.length !== 1 || !positionals[0].trim()) throw new ExitError(2, USAGE);
  if (values.expires !== undefined && !/^\d+\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days|w|week|weeks|y|yr|yrs|year|years)$/i.test(values.expires)) {
    throw new ExitError(2, `--expires must be a span such as 30m, 1h or 7d (got "${values.expires}")\n${USAGE}`);
  }
  return { userId: positionals[0].trim(), ...values };
}

async function main(argv: string[]): Promise<void> {
  const args = parse(argv);
  const config = loadConfig();

  let secret: string;
  let source: string;
  if (config.auth.jwtSecret) {
    secret = config.auth.jwtSecret;
    source = 'AUTH_JWT_SECRET';
  } else if (config.mode === 'production' || config.auth.jwksUrl) {
    throw new ExitError(
      1,
      config.auth.jwksUrl
        ? 'This setup verifies tokens from an external issuer (AUTH_JWKS_URL); get a token from that issuer, this tool cannot sign one.'
        : 'No AUTH_JWT_SECRET is set; in production this tool does not create a signing secret.',
    );
  } else {
    secret = await ensureLocalAuthSecret(config.dataDir);
    source = `the local secret in ${config.dataDir}`;
  }

  const token = await signToken(secret, args.userId, {
    admin: args.admin,
    email: args.email,
    expiresIn: args.expires,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
  });

  if (args.silent) {
    process.stdout.write(`${token}\n`);
    return;
  }
  const who = `${args.userId}${args.admin ? ' (admin)' : ''}`;
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  process.stdout.write(
    [
      `Access token for ${who}, valid for ${args.expires ?? '30d'}, signed with ${source}:`,
      '',
      token,
      '',
      'Send it as a bearer token, for example:',
      `  curl -H "Authorization: Bearer ${token}" -H "Content-Type: application/json" \\`,
      `    -d '{"query":"{ viewer { id email } }"}' http://${host}:${config.port}/graphql`,
      '',
    ].join('\n'),
  );
}

runCli(main);

