import 'reflect-metadata';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadCatalogFile } from '../billing/catalog/catalog-file';
import { formatChangeTable, summarizeChanges } from '../billing/catalog/catalog-sync.report';
import { CatalogSyncService } from '../billing/catalog/catalog-sync.service';
import { ConfigError, effectiveEnv, loadConfig, processEnv } from '../config/env';
import { initORM, migrate } from '../db/orm';
import { gatewayFromConfig } from '../stripe/gateway-from-config';
import { StripeSdkGateway } from '../stripe/stripe-sdk.gateway';
import { parseEnvText, readEnvFile, removePendingTempFiles, updateEnvText, writeFileAtomic } from '../setup/env-file';
import { maskDatabaseUrl, maskSecret } from '../setup/mask';
import {
  checkDatabase,
  databaseUrlProblem,
  modeWarning,
  priceMapProblem,
  secretKeyProblem,
  verifyStripeKey,
  webhookSecretProblem,
  type CheckResult,
} from '../setup/setup-checks';
import { describeUpdates, planSetup, type SetupAnswers } from '../setup/setup-plan';
import { ExitError, runCli, usageError } from './run-cli';

/**
 * `npm run setup`: writes the env file (`.env.local` by default) for a connected setup, asking
 * for what is missing (or taking flags with --non-interactive), or only verifies it (--check).
 * The file is written once, atomically, at the end: Ctrl-C at any point leaves it as it was.
 */

const USAGE = `usage: npm run setup -- [--env-file .env.local]
       npm run setup -- --non-interactive [--stripe-secret-key sk_…] [--webhook-secret whsec_…] [--database-url postgres://…] [--price-map starter=price_…] [--catalog-sync] [--env-file PATH]
       npm run setup -- --check [--env-file PATH]`;


const out = (line = '') => process.stdout.write(`${line}\n`);
const mark = { ok: '✓', warn: '!', error: '✗' } as const;
const report = (r: CheckResult) => out(`${mark[r.level]} ${r.message}`);

function parse(argv: string[]) {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        'non-interactive': { type: 'boolean', default: false },
        check: { type: 'boolean', default: false },
        'stripe-secret-key': { type: 'string' },
        'webhook-secret': { type: 'string' },
        'database-url': { type: 'string' },
        'price-map': { type: 'string' },
        'catalog-sync': { type: 'boolean', default: false },
        'env-file': { type: 'string', default: '.env.local' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) throw new ExitError(0, USAGE);
    return values;
  } catch (error) {
    throw usageError(error, USAGE);
  }
}

type Args = ReturnType<typeof parse>;

interface Context {
  cwd: string;
  envFile: string;
  /** The env file relative to cwd, as printed and as loadConfig reads it. */
  envFileName: string;
  text: string | null;
  fileValues: Record<string, string>;
  /** What the app would see: the environment over the env files. */
  effective: Record<string, string | undefined>;
}

async function context(args: Args): Promise<Context> {
  const cwd = process.cwd();
  const envFile = path.resolve(cwd, args['env-file']);
  const envFileName = path.relative(cwd, envFile) || envFile;
  const text = await readEnvFile(envFile);
  const fileValues = text === null ? {} : parseEnvText(text);
  const effective = effectiveEnv(cwd, [envFileName, '.env']);
  return { cwd, envFile, envFileName, text, fileValues, effective };
}

function gatewayFor(key: string, effective: Record<string, string | undefined>) {
  return new StripeSdkGateway({ secretKey: key, apiBase: effective.STRIPE_API_BASE || undefined, maxNetworkRetries: 1, timeoutMs: 15_000 });
}

/** --check: verifies the configuration as the app would load it, plus the database and the key. */
async function check(ctx: Context): Promise<void> {
  out(`Checking the configuration (${ctx.text === null ? `${ctx.envFileName} does not exist; ` : ''}environment, ${ctx.envFileName}, .env)`);
  const results: CheckResult[] = [];
  try {
    const config = loadConfig(processEnv(), { cwd: ctx.cwd, envFiles: [ctx.envFileName, '.env'] });
    results.push({ level: 'ok', message: `The configuration is valid: ${config.mode} mode.` });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) results.push({ level: 'error', message: problem });
  }
  const e = ctx.effective;
  if (e.DATABASE_URL && !databaseUrlProblem(e.DATABASE_URL)) results.push(await checkDatabase(e.DATABASE_URL));
  const key = e.STRIPE_SECRET_KEY || e.STRIPE_API_KEY;
  if (!e.DATABASE_URL && !key) results.push({ level: 'ok', message: 'No DATABASE_URL: local mode uses the embedded PostgreSQL in DATA_DIR.' });
  if (key && !secretKeyProblem(key)) {
    const warning = modeWarning(key, e);
    if (warning) results.push({ level: 'warn', message: warning });
    results.push(await verifyStripeKey(gatewayFor(key, e), key));
  } else if (!key) {
    results.push({ level: 'ok', message: 'No Stripe key: local mode uses the built-in Stripe emulator.' });
  }
  results.forEach(report);
  const errors = results.filter((r) => r.level === 'error').length;
  if (errors) throw new ExitError(1, `${errors} problem${errors === 1 ? '' : 's'} found.`);
  out('Everything checked is in order.');
}

/** Runs the connectivity checks for the chosen settings; returns false when one failed. */
async function verify(updates: Record<string, string>): Promise<boolean> {
  let ok = true;
  if (updates.DATABASE_URL) {
    const r = await checkDatabase(updates.DATABASE_URL);
    report(r);
    ok &&= r.level !== 'error';
  }
  return ok;
}

async function write(ctx: Context, updates: Record<string, string>): Promise<void> {
  const edit = updateEnvText(ctx.text ?? '', updates);
  if (!edit.updated.length && !edit.added.length) {
    out(`${ctx.envFileName} already holds these values; nothing written.`);
    return;
  }
  await writeFileAtomic(ctx.envFile, edit.text);
  out(`Wrote ${ctx.envFileName} (mode 0600; every other line kept as it was):`);
  describeUpdates(updates, edit).forEach((line) => out(line));
  for (const key of [...edit.updated, ...edit.added]) {
    const fromEnvironment = processEnv()[key];
    if (fromEnvironment !== undefined && fromEnvironment !== updates[key]) {
      out(`! ${key} is also set in the environment, which wins over ${ctx.envFileName}.`);
    }
  }
}

async function runCatalogSync(ctx: Context): Promise<void> {
  const config = loadConfig(processEnv(), { cwd: ctx.cwd, envFiles: [ctx.envFileName, '.env'] });
  if (!config.stripe.secretKey || !config.database.url) {
    throw new ExitError(1, 'Catalog sync needs STRIPE_SECRET_KEY and DATABASE_URL.');
  }
  const gateway = gatewayFromConfig(config);
  const orm = await initORM({ url: config.database.url, poolMax: 2 });
  try {
    await migrate(orm);
    const catalog = await loadCatalogFile(config.catalogFile);
    const result = await new CatalogSyncService(gateway, orm.em.fork()).sync(catalog);
    if (result.changes.length) out(`\n${formatChangeTable(result.changes)}\n`);
    const real = result.changes.filter((c) => c.action !== 'conflict');
    out(real.length ? `Catalog synced: ${summarizeChanges(real)}.` : 'Catalog already in sync.');
  } finally {
    await orm.close();
  }
}

async function nonInteractive(ctx: Context, args: Args): Promise<void> {
  const answers: SetupAnswers = {
    databaseUrl: args['database-url'],
    stripeSecretKey: args['stripe-secret-key'],
    webhookSecret: args['webhook-secret'],
    priceMap: args['price-map'],
  };
  const plan = planSetup(answers, { ...ctx.effective, ...Object.fromEntries(Object.entries(answers).filter(([, v]) => v !== undefined)) });
  plan.warnings.forEach((w) => out(`! ${w}`));
  if (plan.problems.length) {
    plan.problems.forEach((p) => process.stderr.write(`✗ ${p}\n`));
    throw new ExitError(1, `Nothing written to ${ctx.envFileName}.`);
  }
  let ok = await verify(plan.updates);
  if (plan.updates.STRIPE_SECRET_KEY) {
    const r = await verifyStripeKey(gatewayFor(plan.updates.STRIPE_SECRET_KEY, ctx.effective), plan.updates.STRIPE_SECRET_KEY);
    report(r);
    ok &&= r.level !== 'error';
  }
  if (!ok) throw new ExitError(1, `Nothing written to ${ctx.envFileName}.`);
  plan.notes.forEach((n) => out(n));
  await write(ctx, plan.updates);
  if (args['catalog-sync']) await runCatalogSync(ctx);
}

/** The interactive assistant (prompts load only here, so the rest stays usable without a terminal). */
async function interactive(ctx: Context): Promise<void> {
  const { confirm, input, password, select } = await import('@inquirer/prompts');
  const e = ctx.effective;
  const answers: SetupAnswers = {};
  out(`Tollgate setup: answers go to ${ctx.envFileName}${ctx.text === null ? ' (new file)' : ' (existing lines and comments are kept)'}.`);
  out('Nothing is written until the end; Ctrl-C leaves the file as it is.\n');

  // Database
  let database = e.DATABASE_URL;
  if (database) {
    const r = await checkDatabase(database);
    report(r);
    if (!(await confirm({ message: `Keep DATABASE_URL ${maskDatabaseUrl(database)}?`, default: r.level === 'ok' }))) database = undefined;
  }
  while (!database) {
    const choice = await select({
      message: 'Database',
      choices: [
        { name: 'Local mode: embedded PostgreSQL in DATA_DIR (DATABASE_URL stays unset)', value: 'local' },
        { name: 'A PostgreSQL server (DATABASE_URL)', value: 'url' },
      ],
    });
    if (choice === 'local') break;
    const url = await password({ message: 'DATABASE_URL (postgres://user:password@host:5432/db)', mask: '*', validate: (v) => databaseUrlProblem(v) ?? true });
    const r = await checkDatabase(url.trim());
    report(r);
    if (r.level === 'ok' || (await confirm({ message: 'Use it anyway?', default: false }))) {
      database = url.trim();
      answers.databaseUrl = database;
    }
  }

  // Stripe
  const currentKey = e.STRIPE_SECRET_KEY || e.STRIPE_API_KEY;
  let key: string | undefined;
  if (currentKey && !secretKeyProblem(currentKey) && (await confirm({ message: `Keep the Stripe key ${maskSecret(currentKey)}?`, default: true }))) {
    key = currentKey;
  } else {
    const useStripe = await select({
      message: 'Stripe',
      choices: [
        { name: 'A Stripe secret key (test or live)', value: 'key' },
        { name: 'No key: the built-in Stripe emulator (local mode)', value: 'emulator' },
      ],
    });
    while (useStripe === 'key' && !key) {
      const candidate = (await password({ message: 'Stripe secret key (sk_test_…, sk_live_… or rk_…)', mask: '*', validate: (v) => secretKeyProblem(v) ?? true })).trim();
      const warning = modeWarning(candidate, e);
      if (warning) out(`! ${warning}`);
      const r = await verifyStripeKey(gatewayFor(candidate, e), candidate);
      report(r);
      if (r.level === 'ok' || (await confirm({ message: 'Use this key anyway?', default: false }))) {
        key = candidate;
        answers.stripeSecretKey = candidate;
      }
    }
  }

  let syncCatalog = false;
  if (key) {
    const currentSecret = e.STRIPE_WEBHOOK_SECRET;
    if (!(currentSecret && !webhookSecretProblem(currentSecret) && (await confirm({ message: `Keep the webhook signing secret ${maskSecret(currentSecret)}?`, default: true })))) {
      answers.webhookSecret = (
        await password({ message: 'Webhook signing secret (whsec_…, from Dashboard > Webhooks or `stripe listen`)', mask: '*', validate: (v) => webhookSecretProblem(v) ?? true })
      ).trim();
    }
    const catalog = await select({
      message: 'Products and prices',
      choices: [
        { name: 'Create them in Stripe from the catalog file (catalog sync, after writing)', value: 'sync' },
        { name: 'Map plans to existing Stripe prices (STRIPE_PRODUCT_PRICE_MAP)', value: 'map' },
        { name: 'Leave as is', value: 'skip' },
      ],
      default: e.STRIPE_PRODUCT_PRICE_MAP ? 'skip' : 'sync',
    });
    if (catalog === 'map') {
      answers.priceMap = await input({ message: 'Plan to price id (starter=price_…,pro=price_…)', default: e.STRIPE_PRODUCT_PRICE_MAP, validate: (v) => priceMapProblem(v) ?? true });
    }
    syncCatalog = catalog === 'sync';
    if (syncCatalog && !database) {
      out('! Catalog sync needs DATABASE_URL; run `npm run catalog:sync` once it is set.');
      syncCatalog = false;
    }
  }

  const plan = planSetup(answers, { ...e, ...Object.fromEntries(Object.entries(answers).filter(([, v]) => v !== undefined)) });
  plan.warnings.forEach((w) => out(`! ${w}`));
  if (plan.problems.length) {
    plan.problems.forEach((p) => process.stderr.write(`✗ ${p}\n`));
    throw new ExitError(1, `Nothing written to ${ctx.envFileName}.`);
  }
  plan.notes.forEach((n) => out(n));
  if (!Object.keys(plan.updates).length) {
    out(`Nothing to change in ${ctx.envFileName}.`);
  } else if (await confirm({ message: `Write ${ctx.envFileName}?`, default: true })) {
    await write(ctx, plan.updates);
  } else {
    throw new ExitError(1, `Nothing written to ${ctx.envFileName}.`);
  }
  if (syncCatalog) await runCatalogSync(ctx);
  out('\nNext: `npm start`, or `npm run setup -- --check` to verify the configuration again.');
}

async function main(argv: string[]): Promise<void> {
  const args = parse(argv);
  const ctx = await context(args);
  if (args.check) return check(ctx);
  const flags = ['stripe-secret-key', 'webhook-secret', 'database-url', 'price-map'] as const;
  if (!args['non-interactive'] && flags.some((f) => args[f] !== undefined)) {
    throw new ExitError(2, `--${flags.find((f) => args[f] !== undefined)} needs --non-interactive\n${USAGE}`);
  }
  return args['non-interactive'] ? nonInteractive(ctx, args) : interactive(ctx);
}

// The env file is only ever replaced by a rename, so stopping now leaves it as it was; a
// temporary file of a write in progress is removed.
process.on('SIGINT', () => {
  removePendingTempFiles();
  process.stderr.write('\nSetup cancelled; the env file was not changed.\n');
  process.exit(130);
});

runCli(main, (error) => {
  if (!(error instanceof Error && error.name === 'ExitPromptError')) return undefined;
  removePendingTempFiles();
  return { code: 130, message: '\nSetup cancelled; the env file was not changed.' };
});

