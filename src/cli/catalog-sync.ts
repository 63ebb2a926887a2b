import 'reflect-metadata';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadCatalogFile } from '../billing/catalog/catalog-file';
import { formatChangeTable, summarizeChanges } from '../billing/catalog/catalog-sync.report';
import { CatalogSyncService, type CatalogChange } from '../billing/catalog/catalog-sync.service';
import { PriceMapImporter } from '../billing/catalog/price-map-importer';
import { loadConfig } from '../config/env';
import { withDatabase } from '../db/database';
import { initORM, migrate } from '../db/orm';
import { gatewayFromConfig } from '../stripe/gateway-from-config';
import { ExitError, runCli, usageError } from './run-cli';

/**
 * `npm run catalog:sync -- [--dry-run] [--from-price-map] [--file catalog/default.json]`:
 * makes Stripe and the database match the catalog file, or (--from-price-map) reads the prices
 * of STRIPE_PRODUCT_PRICE_MAP from Stripe into the database.
 */

const USAGE = 'usage: npm run catalog:sync -- [--dry-run] [--from-price-map] [--file <catalog.json>]';


function parse(argv: string[]) {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        'dry-run': { type: 'boolean', default: false },
        'from-price-map': { type: 'boolean', default: false },
        file: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) throw new ExitError(0, USAGE);
    return values;
  } catch (error) {
    throw usageError(error, USAGE);
  }
}

function print(changes: CatalogChange[]): void {
  if (changes.length) process.stdout.write(`\n${formatChangeTable(changes)}\n\n`);
}

async function main(argv: string[]): Promise<void> {
  const args = parse(argv);
  const config = loadConfig();
  if (!config.stripe.secretKey) {
    throw new ExitError(
      1,
      'catalog:sync needs STRIPE_SECRET_KEY (and DATABASE_URL). In local mode `npm start` already syncs the catalog into the built-in emulator at every start.',
    );
  }
  if (!config.database.url) throw new ExitError(1, 'catalog:sync needs DATABASE_URL when a Stripe key is set.');
  const gateway = gatewayFromConfig(config);
  const mode = gateway.mode;
  const stripeName = mode === 'emulator' ? `Stripe at ${config.stripe.apiBase}` : `Stripe (${mode} mode)`;
  const dryRun = args['dry-run'];

  await withDatabase(config, async (url) => {
    const orm = await initORM({ url, poolMax: 2 });
    try {
      if (dryRun) {
        const pending = await orm.getMigrator().getPendingMigrations();
        if (pending.length) throw new ExitError(1, 'The database has pending migrations; run `npm run migrate` first (a dry run writes nothing).');
      } else {
        await migrate(orm);
      }
      const service = new CatalogSyncService(gateway, orm.em.fork());

      let changes: CatalogChange[];
      let source: string;
      if (args['from-price-map']) {
        const entries = Object.keys(config.stripe.priceMap);
        if (!entries.length) throw new ExitError(1, 'STRIPE_PRODUCT_PRICE_MAP is empty: nothing to import.');
        source = `STRIPE_PRODUCT_PRICE_MAP (${entries.length} plan${entries.length === 1 ? '' : 's'}) from ${stripeName}`;
        process.stdout.write(`${dryRun ? 'Dry run: importing' : 'Importing'} ${source} into the database\n`);
        changes = await new PriceMapImporter(gateway, orm.em.fork()).import(config.stripe.priceMap, { dryRun });
      } else {
        const file = args.file ? path.resolve(args.file) : config.catalogFile;
        const catalog = await loadCatalogFile(file);
        source = path.relative(process.cwd(), file) || file;
        process.stdout.write(`${dryRun ? 'Dry run: syncing' : 'Syncing'} ${source} to ${stripeName} and the database\n`);
        changes = (await service.sync(catalog, { dryRun })).changes;
      }

      const conflicts = changes.filter((c) => c.action === 'conflict');
      const real = changes.filter((c) => c.action !== 'conflict');
      print(changes);
      if (!real.length) {
        process.stdout.write(`Nothing to change: ${args['from-price-map'] ? 'the database already holds those prices' : `Stripe and the database already match ${source}`}.\n`);
      } else if (dryRun) {
        process.stdout.write(`Dry run: ${real.length} change${real.length === 1 ? '' : 's'} planned (${summarizeChanges(real)}). Nothing was written.\n`);
      } else {
        process.stdout.write(`Done: ${summarizeChanges(real)}.\n`);
      }
      if (conflicts.length) {
        throw new ExitError(1, `${conflicts.length} entr${conflicts.length === 1 ? 'y was' : 'ies were'} left alone (see "conflict" above).`);
      }
    } finally {
      await orm.close();
    }
  });
}

runCli(main, (error) => ({
  code: 1,
  message: `catalog:sync stopped: ${error instanceof Error ? error.message : String(error)}\nWhat was done so far is kept; run it again to finish (nothing is created twice).`,
}));

