/**
 * The ceiling: a bare Apollo Server 5 on Express 5, mounted exactly as Tollgate mounts its own
 * (express.json on /graphql, then expressMiddleware), answering a trivial query and mutation.
 * It also answers `subscriptions`: four subscriptions of the same shape as a Tollgate caller's,
 * from constants.
 * Whatever this server cannot exceed, no resolver on this stack can. It also answers `products`
 * with the default catalog from constants (the stack's own cost for an answer of that size) and,
 * once told a database (`useDatabase`), `write`: one plain insert per request, committed before
 * the answer (the stack's own cost for a durable write), and `read`: one indexed select per
 * request (the stack's own cost for an answer that needs the database). Started as a child process by
 * bench/run.ts; reports its URL over IPC.
 */
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { onControl, reportReady } from './ipc';

const typeDefs = /* GraphQL */ `
  type Query {
    hello: String!
    "The same shape as Tollgate's catalog, from constants: what this stack costs for that answer."
    products: [Product!]!
    "The same shape as a caller's four subscriptions in Tollgate, from constants."
    subscriptions: [Subscription!]!
    "One indexed read per call (after useDatabase): the stack's cost for an answer that needs the database."
    read(key: String!): Int!
  }
  type Subscription { id: ID! status: String! quantity: Int! currentPeriodStart: String currentPeriodEnd: String
    cancelAtPeriodEnd: Boolean! canceledAt: String trialEnd: String createdAt: String! product: Product! price: Price! }
  type Mutation {
    echo(value: String!): String!
    "One durable insert per call (after useDatabase): the stack's cost for a committed row."
    write(key: String!): ID!
  }
  type Product { id: ID! code: String! name: String! description: String active: Boolean! prices: [Price!]! }
  type Price { id: ID! lookupKey: String currency: String! unitAmount: Int interval: String usageType: String! meter: String }
`;

// The default catalog (catalog/default.json) as plain objects.
const price = (lookupKey: string, unitAmount: number, interval: string | null, meter: string | null = null) => ({
  id: `00000000-0000-4000-8000-${lookupKey.padStart(12, '0').slice(-12)}`,
  lookupKey,
  currency: 'usd',
  unitAmount,
  interval,
  usageType: meter ? 'METERED' : 'LICENSED',
  meter,
});
const PRODUCTS = [
  { code: 'starter', name: 'Starter', description: 'For small teams getting started.', prices: [price('starter_monthly', 1900, 'MONTH'), price('starter_yearly', 19900, 'YEAR')] },
  {
    code: 'pro',
    name: 'Pro',
    description: 'For growing products, with metered API calls.',
    prices: [price('pro_monthly', 9900, 'MONTH'), price('pro_yearly', 99900, 'YEAR'), price('pro_api_calls', 1, 'MONTH', 'api_calls')],
  },
  { code: 'micro-feature', name: 'Micro-Feature Development', description: 'One small feature, built and shipped.', prices: [price('micro_feature_once', 49900, null)] },
].map((p, i) => ({ id: `00000000-0000-4000-9000-00000000000${i}`, active: true, ...p }));

// Four subscriptions as the bench's users hold them: two canceled, two trialing.
const SUBSCRIPTIONS = [
  [0, 0, 'CANCELED'],
  [1, 1, 'CANCELED'],
  [0, 1, 'TRIALING'],
  [1, 0, 'TRIALING'],
].map(([product, price, status], i) => ({
  id: `00000000-0000-4000-a000-00000000000${i}`,
  status,
  quantity: 1 + i,
  currentPeriodStart: '2026-12-01T00:00:00.000Z',
  currentPeriodEnd: '2027-01-01T00:00:00.000Z',
  cancelAtPeriodEnd: false,
  canceledAt: status === 'CANCELED' ? '2026-12-02T00:00:00.000Z' : null,
  trialEnd: status === 'TRIALING' ? '2026-12-15T00:00:00.000Z' : null,
  createdAt: '2026-12-01T00:00:00.000Z',
  product: PRODUCTS[product as number],
  price: PRODUCTS[product as number].prices[price as number],
}));

let pool: pg.Pool | undefined;
/** Its own schema, so the bench's rows stay out of Tollgate's tables in the same database. */
const WRITE_SQL = 'insert into bench_bare.writes (id, key) values (gen_random_uuid(), $1) returning id';
const READ_SQL = 'select count(*)::int as n from bench_bare.writes where key = $1';

const resolvers = {
  Query: {
    hello: () => 'world',
    products: () => PRODUCTS,
    subscriptions: () => SUBSCRIPTIONS,
    read: async (_: unknown, args: { key: string }) => {
      if (!pool) throw new Error('no database: send useDatabase first');
      const { rows } = await pool.query({ name: 'bare_read', text: READ_SQL, values: [args.key] });
      return rows[0].n;
    },
  },
  Mutation: {
    echo: (_: unknown, args: { value: string }) => args.value,
    write: async (_: unknown, args: { key: string }) => {
      if (!pool) throw new Error('no database: send useDatabase first');
      const { rows } = await pool.query({ name: 'bare_write', text: WRITE_SQL, values: [args.key] });
      return rows[0].id;
    },
  },
};

/** Connects the `write` mutation to `url` (a pool of `connections`, as many as the load's) and creates its table. */
async function useDatabase(url: string, connections: number): Promise<null> {
  if (pool) return null;
  pool = new pg.Pool({ connectionString: url, max: connections });
  await pool.query('create schema if not exists bench_bare');
  await pool.query('create table if not exists bench_bare.writes (id uuid primary key, key text not null unique, created_at timestamptz not null default now())');
  return null;
}

async function main(): Promise<void> {
  const apollo = new ApolloServer({ typeDefs, resolvers, stopOnTerminationSignals: false, plugins: [ApolloServerPluginLandingPageDisabled()] });
  await apollo.start();
  const app = express();
  app.disable('x-powered-by');
  app.use('/graphql', express.json({ limit: '100kb' }), expressMiddleware(apollo, { context: async () => ({}) }));
  const server = app.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    reportReady({ url: `http://127.0.0.1:${port}` });
  });
  onControl(
    async (cmd, args) => {
      if (cmd === 'memory') return process.memoryUsage();
      if (cmd === 'useDatabase') {
        const { url, connections } = args as { url: string; connections: number };
        return useDatabase(url, connections);
      }
      throw new Error(`unknown command ${cmd}`);
    },
    async () => {
      server.closeAllConnections();
      server.close();
      await apollo.stop();
      await pool?.end();
    },
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
