import 'reflect-metadata';
import type { MikroORM } from '@mikro-orm/postgresql';
import path from 'node:path';
import { loadCatalogFile, type CatalogDefinition } from '../../src/billing/catalog/catalog-file';
import { CatalogSyncService, type CatalogChange } from '../../src/billing/catalog/catalog-sync.service';
import { initORM, migrate } from '../../src/db/orm';
import { startEmulator, type RunningEmulator } from '../../src/emulator';
import { StripeSdkGateway } from '../../src/stripe/stripe-sdk.gateway';
import { createTestDatabase, type TestDatabase } from '../helpers/database';

const ROOT = path.resolve(__dirname, '../..');

let emu: RunningEmulator;
let db: TestDatabase;
let orm: MikroORM;
let gateway: StripeSdkGateway;
let base: CatalogDefinition;

beforeAll(async () => {
  emu = await startEmulator({ port: 0 });
  db = await createTestDatabase('tollgate_catalog_sync');
  orm = await initORM({ url: db.url, poolMax: 2 });
  await migrate(orm);
  // No SDK retries: an injected 500 reaches the sync as it would after Stripe's retries ran out.
  gateway = new StripeSdkGateway({ secretKey: 'sk_test_catalog_sync', apiBase: emu.url, maxNetworkRetries: 0 });
  base = await loadCatalogFile(path.join(ROOT, 'catalog/default.json'));
});

afterAll(async () => {
  await orm?.close();
  await db?.drop();
  await emu?.close();
});

beforeEach(async () => {
  emu.reset();
  await orm.em.fork().getConnection().execute('truncate prices, products, meters cascade');
});

function catalog(change: (c: CatalogDefinition) => void = () => undefined): CatalogDefinition {
  const copy = structuredClone(base);
  change(copy);
  return copy;
}

function sync(c: CatalogDefinition, dryRun = false) {
  return new CatalogSyncService(gateway, orm.em.fork()).sync(c, { dryRun });
}

async function stripeState() {
  const [products, prices, meters] = await Promise.all([gateway.listProducts(), gateway.listPrices(), gateway.listMeters()]);
  return { products, prices, meters, events: emu.events().length };
}

async function dbRows() {
  const conn = orm.em.fork().getConnection();
  return {
    products: await conn.execute('select * from products order by code'),
    prices: await conn.execute('select * from prices order by stripe_price_id'),
    meters: await conn.execute('select * from meters order by event_name'),
  };
}

async function dbPrice(where: string) {
  return orm.em.fork().getConnection().execute(`select * from prices where ${where}`);
}

const summary = (changes: CatalogChange[]) => changes.map((c) => `${c.where} ${c.action} ${c.object} ${c.key}`);

describe(CatalogSyncService.name, () => {
  describe('sync', () => {
    it('creates the whole catalog in Stripe and the database on the first run, owned through metadata', async () => {
      const result = await sync(catalog());
      expect(summary(result.changes)).toEqual(
        expect.arrayContaining(['stripe create meter api_calls', 'stripe create product starter', 'stripe create price pro_api_calls', 'database create price micro_feature_once']),
      );
      const { products, prices, meters } = await stripeState();
      expect(products.map((p) => p.metadata).sort((a, b) => a.tollgate_code.localeCompare(b.tollgate_code))).toEqual(
        ['micro-feature', 'pro', 'starter'].map((code) => ({ tollgate_managed: 'true', tollgate_code: code })),
      );
      expect(prices).toHaveLength(6);
      expect(prices.every((p) => p.metadata.tollgate_managed === 'true' && p.active)).toBe(true);
      expect(meters.map((m) => m.eventName)).toEqual(['api_calls']);
      const metered = prices.find((p) => p.lookupKey === 'pro_api_calls')!;
      expect(metered.recurring).toMatchObject({ usageType: 'metered', meterId: meters[0].id });

      const rows = await dbRows();
      expect(rows.products.map((r: any) => [r.code, r.stripe_product_id])).toEqual(
        [...products].sort((a, b) => a.metadata.tollgate_code.localeCompare(b.metadata.tollgate_code)).map((p) => [p.metadata.tollgate_code, p.id]),
      );
      expect(rows.prices.map((r: any) => r.stripe_price_id).sort()).toEqual(prices.map((p) => p.id).sort());
      expect(rows.meters[0]).toMatchObject({ event_name: 'api_calls', stripe_meter_id: meters[0].id });
    });

    it('changes nothing on a second run', async () => {
      await sync(catalog());
      const stripeBefore = await stripeState();
      const rowsBefore = await dbRows();
      const second = await sync(catalog());
      expect(second.changes).toEqual([]);
      expect(await stripeState()).toEqual(stripeBefore);
      expect(await dbRows()).toEqual(rowsBefore);
    });

    it('replaces a price whose amount changed: exactly one new price takes the lookup key, the old one is archived', async () => {
      await sync(catalog());
      const [old] = await gateway.listPrices({ lookupKeys: ['starter_monthly'] });
      const before = (await gateway.listPrices()).length;
      const changed = catalog((c) => (c.products[0].prices[0].unitAmount = 2500));

      const result = await sync(changed);
      expect(summary(result.changes)).toEqual([
        'stripe replace price starter_monthly',
        'database archive price starter_monthly',
        'database create price starter_monthly',
      ]);
      expect(result.changes[0].detail).toContain('unit amount 1900 → 2500');

      const after = await gateway.listPrices();
      expect(after).toHaveLength(before + 1);
      const [holder] = await gateway.listPrices({ lookupKeys: ['starter_monthly'] });
      expect(holder).toMatchObject({ unitAmount: 2500, active: true, productId: old.productId });
      expect(holder.id).not.toBe(old.id);
      expect(after.find((p) => p.id === old.id)).toMatchObject({ active: false, lookupKey: null });

      expect(await dbPrice(`stripe_price_id = '${old.id}'`)).toEqual([expect.objectContaining({ active: false, lookup_key: null, unit_amount: 1900 })]);
      expect(await dbPrice(`lookup_key = 'starter_monthly'`)).toEqual([
        expect.objectContaining({ active: true, stripe_price_id: holder.id, unit_amount: 2500 }),
      ]);
      expect((await sync(changed)).changes).toEqual([]);
    });

    it('updates the product when its name or description changes, keeping its id', async () => {
      await sync(catalog());
      const result = await sync(catalog((c) => Object.assign(c.products[1], { name: 'Pro Plus', description: undefined })));
      expect(summary(result.changes)).toEqual(['stripe update product pro', 'database update product pro']);
      const pro = (await gateway.listProducts()).filter((p) => p.metadata.tollgate_code === 'pro');
      expect(pro).toEqual([expect.objectContaining({ name: 'Pro Plus', description: null, active: true })]);
      const [row] = await orm.em.fork().getConnection().execute(`select * from products where code = 'pro'`);
      expect(row).toMatchObject({ name: 'Pro Plus', description: null, stripe_product_id: pro[0].id });
    });

    it('archives a product removed from the file, with its prices, in Stripe and the database', async () => {
      await sync(catalog());
      const result = await sync(catalog((c) => (c.products = c.products.filter((p) => p.code !== 'micro-feature'))));
      expect(summary(result.changes)).toEqual([
        'stripe archive product micro-feature',
        'stripe archive price micro_feature_once',
        'database archive product micro-feature',
        'database archive price micro_feature_once',
      ]);
      const product = (await gateway.listProducts()).find((p) => p.metadata.tollgate_code === 'micro-feature')!;
      expect(product.active).toBe(false);
      expect(await gateway.listPrices({ productId: product.id })).toEqual([expect.objectContaining({ active: false })]);
      const [row] = await orm.em.fork().getConnection().execute(`select active from products where code = 'micro-feature'`);
      expect(row.active).toBe(false);
      expect(await dbPrice(`lookup_key = 'micro_feature_once'`)).toEqual([expect.objectContaining({ active: false })]);

      // Back in the file: the same objects come back to life, nothing new is created.
      const back = await sync(catalog());
      expect(summary(back.changes)).toEqual([
        'stripe update product micro-feature',
        'stripe reactivate price micro_feature_once',
        'database update product micro-feature',
        'database update price micro_feature_once',
      ]);
      expect(await gateway.listPrices()).toHaveLength(6);
    });

    it('archives a price removed from the file and leaves the rest of its product alone', async () => {
      await sync(catalog());
      const result = await sync(catalog((c) => (c.products[0].prices = c.products[0].prices.slice(0, 1))));
      expect(summary(result.changes)).toEqual(['stripe archive price starter_yearly', 'database archive price starter_yearly']);
      expect((await gateway.listPrices({ lookupKeys: ['starter_yearly'] }))[0].active).toBe(false);
      expect((await gateway.listPrices({ lookupKeys: ['starter_monthly'] }))[0].active).toBe(true);
    });

    it('never touches Stripe objects it does not own', async () => {
      const foreign = await gateway.createProduct({ name: 'Hand-made', idempotencyKey: 'test.foreign.product' });
      const foreignPrice = await gateway.createPrice({
        productId: foreign.id,
        currency: 'usd',
        unitAmount: 5000,
        lookupKey: 'pro_yearly',
        recurring: { interval: 'year' },
        idempotencyKey: 'test.foreign.price',
      });
      const other = await gateway.createPrice({ productId: foreign.id, currency: 'usd', unitAmount: 700, idempotencyKey: 'test.foreign.price2' });

      const result = await sync(catalog());
      expect(result.conflicts).toEqual([expect.objectContaining({ key: 'pro_yearly', action: 'conflict', detail: expect.stringContaining(foreignPrice.id) })]);
      const prices = await gateway.listPrices({ productId: foreign.id });
      expect(prices.map((p) => [p.id, p.active, p.lookupKey, p.unitAmount]).sort((a, b) => Number(b[3]) - Number(a[3]))).toEqual([
        [foreignPrice.id, true, 'pro_yearly', 5000],
        [other.id, true, null, 700],
      ]);
      expect((await gateway.listProducts()).find((p) => p.id === foreign.id)).toMatchObject({ name: 'Hand-made', active: true, metadata: {} });
      expect(await dbPrice(`stripe_price_id = '${foreignPrice.id}'`)).toEqual([]);

      // A second run still leaves it alone and has nothing else to do.
      const again = await sync(catalog());
      expect(again.changes.filter((c) => c.action !== 'conflict')).toEqual([]);
    });

    it('writes nothing anywhere in a dry run, and plans what the real run then does', async () => {
      const stripeBefore = await stripeState();
      const rowsBefore = await dbRows();
      const plan = await sync(catalog(), true);
      expect(plan.dryRun).toBe(true);
      expect(plan.changes.length).toBeGreaterThan(0);
      expect(await stripeState()).toEqual(stripeBefore);
      expect(await dbRows()).toEqual(rowsBefore);

      const real = await sync(catalog());
      expect(summary(real.changes)).toEqual(summary(plan.changes));

      const changed = catalog((c) => {
        c.products[0].prices[0].unitAmount = 2900;
        c.products[1].name = 'Professional';
        c.products.pop();
      });
      const stripeMid = await stripeState();
      const rowsMid = await dbRows();
      const plan2 = await sync(changed, true);
      expect(summary(plan2.changes)).toEqual(
        expect.arrayContaining(['stripe replace price starter_monthly', 'stripe update product pro', 'stripe archive product micro-feature']),
      );
      expect(await stripeState()).toEqual(stripeMid);
      expect(await dbRows()).toEqual(rowsMid);
    });

    it('completes after a Stripe failure half-way through a first run, with no duplicates', async () => {
      emu.faults.add({ status: 500, count: 1, path: '/v1/prices', method: 'POST' });
      await expect(sync(catalog())).rejects.toMatchObject({ code: 'PAYMENT_PROVIDER_ERROR' });
      const partial = await stripeState();
      expect(partial.products.length).toBeGreaterThan(0);
      expect(partial.prices).toHaveLength(0);

      await sync(catalog());
      const { products, prices, meters } = await stripeState();
      expect(products).toHaveLength(3);
      expect(prices).toHaveLength(6);
      expect(meters).toHaveLength(1);
      expect((await dbRows()).prices).toHaveLength(6);
      expect((await sync(catalog())).changes).toEqual([]);
    });

    it('archives the replaced price on the next run when a failure stopped the run between the two steps', async () => {
      await sync(catalog());
      const [old] = await gateway.listPrices({ lookupKeys: ['pro_monthly'] });
      const changed = catalog((c) => (c.products[1].prices[0].unitAmount = 12900));
      // Updates go to /v1/prices/<id>: the replacement is created, archiving the old one fails.
      emu.faults.add({ status: 500, count: 1, path: '/v1/prices/', method: 'POST' });
      await expect(sync(changed)).rejects.toMatchObject({ code: 'PAYMENT_PROVIDER_ERROR' });
      expect((await gateway.listPrices()).find((p) => p.id === old.id)).toMatchObject({ active: true, lookupKey: null });

      const second = await sync(changed);
      expect(summary(second.changes)).toEqual([
        'stripe archive price ' + old.id,
        'database archive price pro_monthly',
        'database create price pro_monthly',
      ]);
      const prices = await gateway.listPrices();
      expect(prices).toHaveLength(7);
      expect(prices.filter((p) => p.unitAmount === 12900)).toHaveLength(1);
      expect(prices.find((p) => p.id === old.id)!.active).toBe(false);
      expect((await sync(changed)).changes).toEqual([]);
    });
  });

  describe('importPriceMap', () => {
    it('reads the mapped prices and their products from Stripe into the database, once', async () => {
      const product = await gateway.createProduct({ name: 'Team', description: 'Made in the dashboard', idempotencyKey: 'test.import.product' });
      const monthly = await gateway.createPrice({ productId: product.id, currency: 'eur', unitAmount: 4900, lookupKey: 'team_m', recurring: { interval: 'month' }, idempotencyKey: 'test.import.m' });
      const once = await gateway.createPrice({ productId: product.id, currency: 'eur', unitAmount: 9900, idempotencyKey: 'test.import.o' });
      const stripeBefore = await stripeState();

      const service = new CatalogSyncService(gateway, orm.em.fork());
      const dry = await service.importPriceMap({ team: monthly.id, onboarding: once.id }, { dryRun: true });
      expect(dry.length).toBeGreaterThan(0);
      expect((await dbRows()).prices).toEqual([]);

      const changes = await new CatalogSyncService(gateway, orm.em.fork()).importPriceMap({ team: monthly.id, onboarding: once.id });
      expect(summary(changes)).toEqual(['database import product team', 'database import price team', 'database import price onboarding']);
      const rows = await dbRows();
      expect(rows.products).toEqual([expect.objectContaining({ code: 'team', name: 'Team', description: 'Made in the dashboard', stripe_product_id: product.id })]);
      // Sorted here, not by the database: collations order mixed-case ids differently.
      const byId = (a: unknown[], b: unknown[]) => String(a[0]).localeCompare(String(b[0]));
      expect(rows.prices.map((r: any) => [r.stripe_price_id, r.unit_amount, r.currency, r.interval, r.lookup_key]).sort(byId)).toEqual(
        [
          [monthly.id, 4900, 'eur', 'month', 'team_m'],
          [once.id, 9900, 'eur', null, null],
        ].sort(byId),
      );
      expect(await stripeState()).toEqual(stripeBefore);
      expect(await new CatalogSyncService(gateway, orm.em.fork()).importPriceMap({ team: monthly.id, onboarding: once.id })).toEqual([]);
    });
  });
});
