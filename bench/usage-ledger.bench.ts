/**
 * `npm run bench:ledger`: the usage ledger at the scale of a metering backend.
 *
 * 1. recordUsageBatch over HTTP, 100 events a request with a unique key each, against a Tollgate
 *    server process (production mode, forwarder and rate limits off): events/s, p50/p99 of the
 *    requests; once spread over many customers and once with every request for one customer (all
 *    statements then add to the same rollup row: the hot-row case). Afterwards every answered
 *    event is checked to have its row, and the rollup to equal the rows.
 * 2. A 10-million-row ledger (BENCH_LEDGER_ROWS): 1,000 customers over 6 months, one of them
 *    holding 2 million rows in its current period, seeded with generate_series in SQL (the rollup
 *    is built once after the seed, as the migration does for existing rows, instead of by the
 *    trigger row batch by row batch). Then the `usage` summary (default period: totals, pending,
 *    failed and daily buckets) through GraphQL: p50/p99 for the heavy customer and for the
 *    others, one request at a time and with 4 in flight. Then phase 1's heavy-customer batch
 *    load again, on the big ledger.
 *
 * Run it against a real server with BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
 * (a scratch database is created there and dropped at the end); without it an embedded
 * PostgreSQL is started. Options: BENCH_LEDGER_DURATION (s per load, default 10),
 * BENCH_LEDGER_CONNECTIONS (default 8), BENCH_LEDGER_ROWS (default 10,000,000),
 * BENCH_LEDGER_HEAVY_ROWS (default 2,000,000), BENCH_LEDGER_SAMPLES (summaries per kind, default 400).
 * Seeding takes minutes: BENCH_LEDGER_KEEP=1 keeps the scratch database (on BENCH_DATABASE_URL's
 * server) and prints its URL, and BENCH_LEDGER_SEEDED=<that URL> runs phases 2 and 3 on it again
 * without seeding (phase 3 adds its rows to it).
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import { signToken } from '../src/auth/dev-secret';
import { loadCatalogFile } from '../src/billing/catalog/catalog-file';
import { CatalogSyncService } from '../src/billing/catalog/catalog-sync.service';
import { UsageLedgerRepository } from '../src/billing/usage/usage-ledger.repository';
import { projectRoot } from '../src/common/paths';
import { initORM, migrate } from '../src/db/orm';
import { startEmulator } from '../src/emulator';
import { StripeSdkGateway } from '../src/stripe/stripe-sdk.gateway';
import { gql } from './lib/seed';
import { runLoad, type LoadResult } from './lib/load';
import { scratchDatabase, startApp, type Cleanups } from './lib/usage-app';

const DURATION = Number(process.env.BENCH_LEDGER_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_LEDGER_CONNECTIONS ?? 8);
const ROWS = Number(process.env.BENCH_LEDGER_ROWS ?? 10_000_000);
const HEAVY_ROWS = Number(process.env.BENCH_LEDGER_HEAVY_ROWS ?? 2_000_000);
const SAMPLES = Number(process.env.BENCH_LEDGER_SAMPLES ?? 400);
const KEEP = process.env.BENCH_LEDGER_KEEP === '1';
const SEEDED = process.env.BENCH_LEDGER_SEEDED;
const CUSTOMERS = 1000;
const EVENTS_PER_REQUEST = 100;
const JWT_SECRET = randomBytes(32).toString('hex');
const BATCH = `mutation($input: RecordUsageBatchInput!) { recordUsageBatch(input: $input) { recorded replayed failed } }`;
const USAGE = `query { usage(meter: "api_calls") { total pending failed lagSeconds buckets { date total } } }`;
/** The floor on this machine: an authenticated query that reads one row. */
const VIEWER = `query { viewer { id } }`;
const DAY_MS = 24 * 3600_000;

const cleanups: Cleanups = [];
const log = (line: string) => process.stdout.write(`${line}\n`);
const sql = async <T = any>(orm: MikroORM, query: string, params: unknown[] = []): Promise<T[]> => orm.em.fork().getConnection().execute(query, params);

interface BenchCustomer {
  userId: string;
  token: string;
  subscriptionId: string;
}

/** Drives recordUsageBatch for `customers` (round robin) with unique keys; checks the ledger after. */
async function batchLoad(orm: MikroORM, url: string, customers: BenchCustomer[], label: string): Promise<LoadResult> {
  const prefix = `${label}-${randomBytes(4).toString('hex')}`;
  let requests = 0;
  let recorded = 0;
  const body = () => {
    const customer = customers[requests % customers.length];
    const base = requests++ * EVENTS_PER_REQUEST;
    const events = Array.from({ length: EVENTS_PER_REQUEST }, (_, i) => ({ subscriptionId: customer.subscriptionId, quantity: 1, idempotencyKey: `${prefix}-${base + i}` }));
    return { body: JSON.stringify({ query: BATCH, variables: { input: { events } } }), headers: { authorization: `Bearer ${customer.token}` } };
  };
  const onAnswer = (status: number, text: string) => {
    const m = status === 200 ? /"recorded":(\d+)/.exec(text) : null;
    if (m) recorded += Number(m[1]);
  };
  const result = await runLoad({ url: `${url}/graphql`, body, onAnswer }, { duration: DURATION, connections: CONNECTIONS, pipelining: 1 });
  const [rows] = await sql(orm, `select count(*)::int as n from usage_events where idempotency_key like ?`, [`${prefix}-%`]);
  log(`recordUsageBatch, ${label} (${CONNECTIONS} connections, ${DURATION} s, ${EVENTS_PER_REQUEST} events a request, unique keys)`);
  log(`  ${((result.requests * EVENTS_PER_REQUEST) / result.seconds).toFixed(0)} events/s answered   ${result.reqPerSec.toFixed(0)} req/s   p50 ${result.p50Ms} ms   p99 ${result.p99Ms} ms   ${result.errors} errors`);
  log(`  ${recorded} events answered RECORDED (${(recorded / result.seconds).toFixed(0)} durable events/s); ${rows.n} rows with the run's keys`);
  if (result.errors) log(`  first error: ${result.errorDetail.firstErrorBody ?? JSON.stringify(result.errorDetail)}`);
  await settle(orm);
  // Requests still in flight when the load stopped may have committed without an answer being counted.
  if (rows.n < recorded || rows.n > recorded + CONNECTIONS * EVENTS_PER_REQUEST) throw new Error(`${recorded} events answered recorded, ${rows.n} rows`);
  return result;
}

/** Waits for requests still running in the server after a load stopped: until the ledger stops growing. */
async function settle(orm: MikroORM): Promise<void> {
  let last = -1;
  for (;;) {
    const [row] = await sql(orm, `select count(*)::int as n from usage_events where created_at > now() - interval '1 minute'`);
    if (row.n === last) return;
    last = row.n;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function rollupMismatches(orm: MikroORM): Promise<number> {
  const [row] = await sql(
    orm,
    `select count(*)::int as n from (
       select subscription_id, meter, date_trunc('hour', occurred_at at time zone 'UTC') at time zone 'UTC' as hour, sum(quantity) as quantity, count(*) as events
         from usage_events group by 1, 2, 3) r
     full join (select * from usage_hourly where events > 0) h on h.subscription_id = r.subscription_id and h.meter = r.meter and h.hour = r.hour
     where r.events is distinct from h.events or abs(coalesce(r.quantity, 0) - coalesce(h.quantity, 0)) > 1e-6`,
  );
  return row.n;
}

/** Customers with an active Pro subscription, made in SQL the way the webhook handlers leave them. */
async function seedCustomers(orm: MikroORM, count: number, tag: string, periodStartDaysAgo: number): Promise<BenchCustomer[]> {
  const [price] = await sql(orm, `select p.id from prices p join products pr on pr.id = p.product_id where pr.code = 'pro' and p.usage_type = 'licensed' and p.interval = 'month' limit 1`);
  const [metered] = await sql(orm, `select p.stripe_price_id from prices p join meters m on m.id = p.meter_id where m.event_name = 'api_calls' limit 1`);
  const items = JSON.stringify([{ stripeItemId: 'si_bench_metered', stripePriceId: metered.stripe_price_id, quantity: null, meter: 'api_calls' }]);
  const rows = await sql(
    orm,
    `with c as (
       insert into customers (id, user_id, email, stripe_customer_id, created_at, updated_at)
       select gen_random_uuid(), ? || g, ? || g || '@example.com', 'cus_' || ? || g, now(), now() from generate_series(1, ?) g
       returning id, user_id)
     , s as (
       insert into subscriptions (id, customer_id, price_id, stripe_subscription_id, status, items, current_period_start, current_period_end, created_at, updated_at)
       select gen_random_uuid(), c.id, ?, 'sub_' || c.user_id, 'active', ?::jsonb, now() - make_interval(days => ?), now() - make_interval(days => ?) + interval '30 days', now() - interval '200 days', now()
         from c
       returning id, customer_id)
     select s.id, c.user_id from s join c on c.id = s.customer_id order by c.user_id`,
    [`${tag}-`, `${tag}-`, `${tag}-`, count, price.id, items, periodStartDaysAgo, periodStartDaysAgo],
  );
  return Promise.all(
    rows.map(async (r: any) => ({ userId: r.user_id, subscriptionId: r.id, token: await signToken(JWT_SECRET, r.user_id, { expiresIn: '2h' }) })),
  );
}

/**
 * The big ledger: the heavy customer's rows spread evenly over its current period up to now, the
 * others' over 6 months; all sent except the last hour's, as a forwarder that keeps up leaves them.
 * Indexes and the rollup trigger are set aside during the seed and rebuilt after it.
 */
async function seedLedger(orm: MikroORM, heavy: BenchCustomer, others: BenchCustomer[], periodStartDaysAgo: number): Promise<void> {
  const started = Date.now();
  const exec = (q: string, p: unknown[] = []) => sql(orm, q, p);
  await exec(`alter table usage_events disable trigger usage_events_hourly_insert`);
  const indexes = await exec(
    `select indexname, indexdef from pg_indexes where tablename = 'usage_events' and indexname not in ('usage_events_pkey', 'usage_events_customer_id_idempotency_key_unique')`,
  );
  for (const i of indexes) await exec(`drop index ${i.indexname}`);
  await exec(`alter table usage_events drop constraint usage_events_pkey, drop constraint usage_events_customer_id_idempotency_key_unique`);
  const span = periodStartDaysAgo * DAY_MS;
  await exec(
    `insert into usage_events (id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, state, attempts, next_attempt_at, sent_at, created_at)
     select gen_random_uuid(), s.customer_id, s.id, 'api_calls', 1 + g % 5, t, 'seed-' || g, 'seed',
            case when t > now() - interval '1 hour' then 'pending' else 'sent' end, 1, now(), now(), t
       from subscriptions s, generate_series(1, ?) g, lateral (select now() - make_interval(secs => (? * g / ?::float8) / 1000)) x(t)
      where s.id = ?`,
    [HEAVY_ROWS, span, HEAVY_ROWS, heavy.subscriptionId],
  );
  log(`  heavy customer: ${HEAVY_ROWS.toLocaleString('en-US')} rows in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const perOther = Math.floor((ROWS - HEAVY_ROWS) / others.length);
  const chunk = 100;
  for (let i = 0; i < others.length; i += chunk) {
    await exec(
      `insert into usage_events (id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, state, attempts, next_attempt_at, sent_at, created_at)
       select gen_random_uuid(), s.customer_id, s.id, 'api_calls', 1 + g % 5, t, 'seed-' || g, 'seed',
              case when t > now() - interval '1 hour' then 'pending' else 'sent' end, 1, now(), now(), t
         from unnest(?::uuid[]) as o(id) join subscriptions s on s.id = o.id, generate_series(1, ?) g,
              lateral (select now() - make_interval(secs => 183 * 86400.0 * g / ?::float8)) x(t)`,
      [`{${others.slice(i, i + chunk).map((c) => c.subscriptionId).join(',')}}`, perOther, perOther],
    );
  }
  log(`  ${(HEAVY_ROWS + perOther * others.length).toLocaleString('en-US')} rows in ${((Date.now() - started) / 1000).toFixed(0)} s; rebuilding indexes and the rollup`);
  await exec(`alter table usage_events add constraint usage_events_pkey primary key (id)`);
  await exec(`alter table usage_events add constraint usage_events_customer_id_idempotency_key_unique unique (customer_id, idempotency_key)`);
  for (const i of indexes) await exec(i.indexdef);
  await exec(`truncate usage_hourly`);
  await exec(`insert into usage_hourly (subscription_id, meter, hour, quantity, events)
      select subscription_id, meter, date_trunc('hour', occurred_at at time zone 'UTC') at time zone 'UTC', sum(quantity), count(*)
        from usage_events group by 1, 2, 3`);
  await exec(`alter table usage_events enable trigger usage_events_hourly_insert`);
  await exec(`vacuum analyze usage_events`);
  await exec(`vacuum analyze usage_hourly`);
  const [size] = await exec(`select count(*)::bigint as n, pg_size_pretty(pg_total_relation_size('usage_events')) as size, (select count(*) from usage_hourly)::int as hours from usage_events`);
  log(`  ledger: ${Number(size.n).toLocaleString('en-US')} rows, ${size.size} with indexes; rollup ${size.hours.toLocaleString('en-US')} rows; seeded in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** `usage` through GraphQL for `pick()`'s customer, `inFlight` at a time; latencies as the client sees them. */
async function summaryLatency(
  url: string,
  pick: (i: number) => BenchCustomer,
  inFlight: number,
  label: string,
  check: (usage: any, c: BenchCustomer) => void,
  query = USAGE,
): Promise<void> {
  const times: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < SAMPLES) {
      const customer = pick(next++);
      const started = process.hrtime.bigint();
      const data = await gql<{ usage: unknown }>(url, query, {}, customer.token);
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
      check(data.usage, customer);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  times.sort((a, b) => a - b);
  log(`  ${label.padEnd(34)} ${inFlight} in flight: p50 ${percentile(times, 50).toFixed(2)} ms   p99 ${percentile(times, 99).toFixed(2)} ms   max ${times[times.length - 1].toFixed(2)} ms   (${times.length} requests)`);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-bench-ledger-'));
  await chmod(dir, 0o755); // as root, the embedded cluster runs as "postgres", which must enter it
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  log(`load average at start: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (${os.cpus().length} cores)`);

  const databaseUrl = SEEDED ?? (await scratchDatabase(dir, cleanups));
  // The last cleanup scratchDatabase registered drops the database.
  if (KEEP && !SEEDED) cleanups.pop();
  const emulator = await startEmulator({ port: 0 });
  cleanups.push(() => emulator.close());
  const orm = await initORM({ url: databaseUrl, poolMax: 10 });
  cleanups.push(() => orm.close());
  await migrate(orm);
  const gateway = new StripeSdkGateway({ secretKey: 'sk_test_bench', apiBase: emulator.url });
  if (!SEEDED) await new CatalogSyncService(gateway, orm.em.fork()).sync(await loadCatalogFile(path.join(projectRoot(), 'catalog/default.json')));
  const app = await startApp(dir, databaseUrl, emulator, JWT_SECRET, cleanups);

  const periodStartDaysAgo = 25;
  let heavy: BenchCustomer;
  let others: BenchCustomer[];
  if (SEEDED) {
    const load = async (prefix: string) =>
      Promise.all(
        (await sql(orm, `select s.id, c.user_id from subscriptions s join customers c on c.id = s.customer_id where c.user_id like ? order by c.user_id`, [`${prefix}-%`])).map(
          async (r: any) => ({ userId: r.user_id, subscriptionId: r.id, token: await signToken(JWT_SECRET, r.user_id, { expiresIn: '2h' }) }),
        ),
      );
    heavy = (await load('heavy'))[0];
    others = await load('customer');
    log(`reusing the seeded ledger at ${databaseUrl}`);
  } else {
    // ---- 1. recordUsageBatch on an empty ledger ------------------------------------------------
    heavy = (await seedCustomers(orm, 1, 'heavy', periodStartDaysAgo))[0];
    others = await seedCustomers(orm, CUSTOMERS - 1, 'customer', periodStartDaysAgo);
    await batchLoad(orm, app.url, others.slice(0, 50), 'warm-up');
    await batchLoad(orm, app.url, others.slice(0, 50), '50 customers');
    await batchLoad(orm, app.url, [heavy], 'one customer (one rollup row)');
    const mismatches = await rollupMismatches(orm);
    log(`  rollup rows that differ from the sum of their events: ${mismatches}`);
    if (mismatches) throw new Error('the rollup differs from the rows');
    await sql(orm, `truncate usage_events, usage_hourly`);

    // ---- 2. the summary in a 10-million-row ledger ---------------------------------------------
    log(`seeding ${ROWS.toLocaleString('en-US')} rows: ${CUSTOMERS} customers over 6 months, one with ${HEAVY_ROWS.toLocaleString('en-US')} in its current period`);
    await seedLedger(orm, heavy, others, periodStartDaysAgo);
    if (KEEP) log(`kept the seeded ledger: BENCH_LEDGER_SEEDED=${databaseUrl}`);
  }
  const expectedTotal = async (c: BenchCustomer) =>
    (await sql(orm, `select sum(e.quantity)::float8 as t from usage_events e join subscriptions s on s.id = e.subscription_id where s.id = ? and e.occurred_at >= s.current_period_start and e.occurred_at < s.current_period_end`, [c.subscriptionId]))[0].t ?? 0;
  const heavyTotal = await expectedTotal(heavy);
  const checkHeavy = (usage: any) => {
    if (usage.total !== heavyTotal || usage.buckets.length < 30) throw new Error(`heavy summary ${usage.total} != ${heavyTotal}`);
  };
  const sampleOthers = others.slice(0, 20);
  const otherTotals = new Map(await Promise.all(sampleOthers.map(async (c) => [c.subscriptionId, await expectedTotal(c)] as const)));
  const checkOther = (usage: any, c: BenchCustomer) => {
    const expected = otherTotals.get(c.subscriptionId);
    if (expected !== undefined && usage.total !== expected) throw new Error(`summary ${usage.total} != ${expected}`);
  };
  log(`usage summary through GraphQL (default period: 30 daily buckets; heavy customer: ${HEAVY_ROWS.toLocaleString('en-US')} rows in it, total ${heavyTotal})`);
  await summaryLatency(app.url, () => heavy, 1, 'warm-up', checkHeavy);
  await summaryLatency(app.url, (i) => others[(i * 7) % others.length], 1, 'floor: viewer { id }', () => undefined, VIEWER);
  await summaryLatency(app.url, () => heavy, 1, 'heavy customer', checkHeavy);
  await summaryLatency(app.url, (i) => others[(i * 7) % others.length], 1, 'other customers (rotating)', checkOther);
  await summaryLatency(app.url, (i) => others[(i * 7) % others.length], 4, 'floor: viewer { id }', () => undefined, VIEWER);
  await summaryLatency(app.url, () => heavy, 4, 'heavy customer', checkHeavy);
  await summaryLatency(app.url, (i) => others[(i * 7) % others.length], 4, 'other customers (rotating)', checkOther);
  // The ledger's own part, without HTTP, GraphQL and the customer lookup: the one statement of
  // the summary, on the bench's pool, for the default period.
  const ledger = new UsageLedgerRepository(orm.em.fork());
  const statementLatency = async (label: string, pick: (i: number) => BenchCustomer) => {
    const times: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const c = pick(i);
      const [sub] = await sql(orm, `select current_period_start as f, current_period_end as t from subscriptions where id = ?`, [c.subscriptionId]);
      const started = process.hrtime.bigint();
      await ledger.totals(c.subscriptionId, 'api_calls', new Date(sub.f), new Date(sub.t));
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    times.sort((a, b) => a - b);
    log(`  ${label.padEnd(34)} statement alone: p50 ${percentile(times, 50).toFixed(2)} ms   p99 ${percentile(times, 99).toFixed(2)} ms   max ${times[times.length - 1].toFixed(2)} ms`);
  };
  await statementLatency('heavy customer', () => heavy);
  await statementLatency('other customers (rotating)', (i) => others[(i * 7) % others.length]);

  // ---- 3. recordUsageBatch on the big ledger ---------------------------------------------------
  await batchLoad(orm, app.url, others.slice(0, 50), '50 customers, seeded ledger');
  await batchLoad(orm, app.url, [heavy], 'heavy customer, seeded ledger');
  await summaryLatency(app.url, () => heavy, 1, 'heavy customer after the loads', () => undefined);
  log(`load average at end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

main()
  .catch((error) => {
    console.error(error instanceof Error ? error.stack : error);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });
