import { Product } from '../../src/billing/catalog/product.entity';
import { catalogCacheFor } from '../../src/billing/catalog/catalog-cache';
import { startTestServer, type TestServer } from '../helpers/test-server';

const PRODUCTS = `query($all: Boolean) { products(includeInactive: $all) { id code name description active
  prices { id lookupKey currency unitAmount interval intervalCount usageType meter active } } }`;

describe('catalog queries', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it('lists the default catalog with prices in integer minor units', async () => {
    const res = await server.gql(PRODUCTS);
    expect(res.errors).toBeUndefined();
    const byCode = Object.fromEntries(res.data.products.map((p: any) => [p.code, p]));
    expect(Object.keys(byCode).sort()).toEqual(['micro-feature', 'pro', 'starter']);

    const amounts = (code: string) =>
      byCode[code].prices.map((p: any) => [p.unitAmount, p.currency, p.interval, p.usageType, p.meter]);
    expect(amounts('starter')).toEqual([
      [1900, 'usd', 'MONTH', 'LICENSED', null],
      [19900, 'usd', 'YEAR', 'LICENSED', null],
    ]);
    expect(amounts('pro')).toEqual(
      expect.arrayContaining([
        [9900, 'usd', 'MONTH', 'LICENSED', null],
        [99900, 'usd', 'YEAR', 'LICENSED', null],
        [expect.any(Number), 'usd', 'MONTH', 'METERED', 'api_calls'],
      ]),
    );
    expect(byCode['micro-feature'].name).toBe('Micro-Feature Development');
    expect(amounts('micro-feature')).toEqual([[49900, 'usd', null, 'LICENSED', null]]);
  });

  it('finds one product by code or by id, and answers null for an unknown one', async () => {
    const byCode = await server.gql(`{ product(code: "pro") { id code name prices { lookupKey } } }`);
    expect(byCode.data.product).toMatchObject({ code: 'pro', name: 'Pro' });
    const byId = await server.gql(`query($id: ID!) { product(id: $id) { code } }`, { id: byCode.data.product.id });
    expect(byId.data.product).toEqual({ code: 'pro' });
    const unknown = await server.gql(`{ product(code: "enterprise") { code } }`);
    expect(unknown.errors).toBeUndefined();
    expect(unknown.data.product).toBeNull();
  });

  it('answers BAD_USER_INPUT for a malformed id or no selector at all', async () => {
    const malformed = await server.gql(`{ product(id: "not-a-uuid") { code } }`);
    expect(malformed.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    const none = await server.gql(`{ product { code } }`);
    expect(none.errors?.[0]).toMatchObject({ message: 'Give a product id or code', extensions: { code: 'BAD_USER_INPUT' } });
  });

  it('hides inactive products and prices unless asked', async () => {
    await server.orm.em.fork().getConnection().execute(`update products set active = false where code = 'starter'`);
    // A write in raw SQL bypasses the ORM, which is what tells the catalog cache of a change.
    catalogCacheFor(server.orm.em).invalidate();
    const active = await server.gql(PRODUCTS, { all: false });
    expect(active.data.products.map((p: any) => p.code)).not.toContain('starter');
    const all = await server.gql(PRODUCTS, { all: true });
    expect(all.data.products.map((p: any) => p.code)).toContain('starter');
    await server.orm.em.fork().getConnection().execute(`update products set active = true where code = 'starter'`);
    catalogCacheFor(server.orm.em).invalidate();
  });

  it('serves the catalog from memory, and shows a write through the ORM at once', async () => {
    await server.gql(PRODUCTS);
    const queries: string[] = [];
    const knex = server.orm.em.getConnection().getKnex();
    const listener = (q: { sql: string }) => queries.push(q.sql);
    knex.on('query', listener);
    try {
      await server.gql(PRODUCTS, { all: true });
    } finally {
      knex.off('query', listener);
    }
    expect(queries.filter((q) => /from "(products|prices)"/.test(q))).toHaveLength(0);

    // What the product and price webhooks and catalog sync do: a transaction through the ORM.
    await server.orm.em.fork().transactional(async (tx) => {
      const starter = await tx.findOneOrFail(Product, { code: 'starter' });
      starter.name = 'Starter (renamed)';
    });
    const renamed = await server.gql(PRODUCTS);
    expect(renamed.data.products.find((p: any) => p.code === 'starter').name).toBe('Starter (renamed)');
    // A flush outside a transaction too.
    const em = server.orm.em.fork();
    (await em.findOneOrFail(Product, { code: 'starter' })).name = 'Starter';
    await em.flush();
    const back = await server.gql(PRODUCTS);
    expect(back.data.products.find((p: any) => p.code === 'starter').name).toBe('Starter');
  });

  it('loads the prices of all products in one query (no N+1)', async () => {
    catalogCacheFor(server.orm.em).invalidate();
    const queries: string[] = [];
    const knex = server.orm.em.getConnection().getKnex();
    const listener = (q: { sql: string }) => queries.push(q.sql);
    knex.on('query', listener);
    try {
      await server.gql(PRODUCTS);
    } finally {
      knex.off('query', listener);
    }
    expect(queries.filter((q) => /from "products"/.test(q))).toHaveLength(1);
    expect(queries.filter((q) => /from "prices"/.test(q))).toHaveLength(1);
  });
});
