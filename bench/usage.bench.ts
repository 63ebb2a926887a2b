/**
 * `npm run bench:usage`: how fast usage goes into the ledger and out to Stripe.
 *
 * 1. recordUsage over HTTP: autocannon drives a Tollgate server process (connected mode, its
 *    forwarder off) with a unique idempotency key per request; prints req/s and p50/p99, then
 *    checks that every answered request left exactly one ledger row.
 * 2. The forwarder: N pending rows (default 20,000; BENCH_USAGE_ROWS) drained into the Stripe
 *    emulator by one forwarder, then another N by two forwarders with their own connection pools;
 *    prints events/s and checks that the emulator received each identifier exactly once.
 *
 * Everything runs on this machine: an embedded PostgreSQL (or BENCH_DATABASE_URL, a server URL
 * on which a scratch database is created and dropped), the emulator in this process, the server
 * in a child process. The emulator is far cheaper than Stripe's network round trip, so phase 2
 * measures our side (claiming, marking, batching), not Stripe's.
 *
 * Options (environment): BENCH_USAGE_DURATION (s, default 10), BENCH_USAGE_CONNECTIONS (default 50),
 * BENCH_USAGE_ROWS (default 20000), BENCH_USAGE_BATCH (forwarder batch, default 500),
 * BENCH_USAGE_ROLLUP=off (the hourly rollup's trigger disabled: what keeping the rollup costs).
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
import { UsageForwarder } from '../src/billing/usage/usage-forwarder';
import { createLogger } from '../src/common/logger';
import { projectRoot } from '../src/common/paths';
import { initORM, migrate } from '../src/db/orm';
import { startEmulator } from '../src/emulator';
import { StripeSdkGateway } from '../src/stripe/stripe-sdk.gateway';
import { runLoad } from './lib/load';
import { scratchDatabase, startApp, type Cleanups } from './lib/usage-app';

const ROOT = projectRoot();
const DURATION = Number(process.env.BENCH_USAGE_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_USAGE_CONNECTIONS ?? 50);
const ROWS = Number(process.env.BENCH_USAGE_ROWS ?? 20_000);
const BATCH = Number(process.env.BENCH_USAGE_BATCH ?? 500);
const JWT_SECRET = randomBytes(32).toString('hex');
const RECORD = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id idempotencyKey } }`;

const cleanups: Cleanups = [];
const log = (line: string) => process.stdout.write(`${line}\n`);

async function gql(url: string, token: string, query: string, variables: unknown): Promise<any> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

async function count(orm: MikroORM, where: string): Promise<number> {
  const [row] = await orm.em.fork().getConnection().execute(`select count(*)::int as n from usage_events where ${where}`);
  return row.n;
}

/**
 * The ledger after the load: every request answered with a record has exactly that row (same id,
 * same key; a record answered to the wrong request would show up here, or as a key answered
 * twice), and the rows nobody was answered for are at most the requests that got no answer at
 * all (those in flight when autocannon stopped): a refused request left no row.
 */
async function verifyLedger(orm: MikroORM, prefix: string, sent: number, answered: number, recordBodies: string[]): Promise<void> {
  const recorded = recordBodies
    .map((body) => (JSON.parse(body) as { data?: { recordUsage?: { id: string; idempotencyKey: string } } }).data?.recordUsage)
    .filter((r): r is { id: string; idempotencyKey: string } => r !== undefined);
  const rows = await orm.em
    .fork()
    .getConnection()
    .execute<{ id: string; idempotency_key: string }[]>(`select id, idempotency_key from usage_events where idempotency_key like ?`, [`${prefix}-%`]);
  const byKey = new Map(rows.map((r) => [r.idempotency_key, r.id]));
  const lost = recorded.filter((r) => byKey.get(r.idempotencyKey) !== r.id);
  const unanswered = sent - answered;
  log(`  ledger rows: ${rows.length} for ${sent} requests sent, ${recorded.length} answered with their record, ${unanswered} not answered`);
  if (lost.length) throw new Error(`${lost.length} answered records have no row of that id under their key (first: ${JSON.stringify(lost[0])})`);
  if (new Set(recorded.map((r) => r.idempotencyKey)).size !== recorded.length) throw new Error('a key was answered twice');
  if (rows.length - recorded.length > unanswered) throw new Error(`${rows.length - recorded.length} rows without a record answered, for ${unanswered} requests without an answer`);
}

/** Tops the ledger up with pending rows like recordUsage writes, for the forwarder to drain. */
async function addPending(orm: MikroORM, subscriptionId: string, n: number, tag: string): Promise<void> {
  await orm.em.fork().getConnection().execute(
    `insert into usage_events (id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, next_attempt_at, created_at)
     select gen_random_uuid(), s.customer_id, s.id, 'api_calls', 1, now(), ? || g, 'bench', now(), now()
       from subscriptions s, generate_series(1, ?) g where s.id = ?`,
    [`${tag}-`, n, subscriptionId],
  );
}

async function drainWith(forwarders: UsageForwarder[], orm: MikroORM): Promise<{ rows: number; seconds: number }> {
  const pending = await count(orm, `state = 'pending'`);
  const started = process.hrtime.bigint();
  await Promise.all(forwarders.map((f) => f.drain()));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const left = await count(orm, `state = 'pending'`);
  if (left) throw new Error(`${left} rows still pending after the drain`);
  return { rows: pending, seconds };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-bench-usage-'));
  await chmod(dir, 0o755); // as root, the embedded cluster runs as "postgres", which must enter it
  cleanups.push(() => rm(dir, { recursive: true, force: true }));

  const databaseUrl = await scratchDatabase(dir, cleanups);
  const emulator = await startEmulator({ port: 0 });
  cleanups.push(() => emulator.close());
  const orm = await initORM({ url: databaseUrl, poolMax: 20 });
  cleanups.push(() => orm.close());
  await migrate(orm);
  if (process.env.BENCH_USAGE_ROLLUP === 'off') {
    await orm.em.fork().getConnection().execute(`alter table usage_events disable trigger usage_events_hourly_insert`);
    log('the hourly rollup trigger is disabled for this run');
  }
  const gateway = new StripeSdkGateway({ secretKey: 'sk_test_bench', apiBase: emulator.url });
  const catalog = await loadCatalogFile(path.join(ROOT, 'catalog/default.json'));
  await new CatalogSyncService(gateway, orm.em.fork()).sync(catalog);

  const app = await startApp(dir, databaseUrl, emulator, JWT_SECRET, cleanups);
  const token = await signToken(JWT_SECRET, 'bench-user', { email: 'bench@example.com', expiresIn: '1h' });
  const started = await gql(app.url, token, `mutation { startSubscription(input: { plan: "pro", trialDays: 14 }) { subscription { id } } }`, {});
  const subscriptionId: string = started.startSubscription.subscription.id;

  // ---- 1. recordUsage --------------------------------------------------------------------------
  // Keys are `${prefix}-0`, `${prefix}-1`, ...; answers are counted, and the bodies of records kept
  // and parsed after the load, off its clock.
  let prefix = 'warm-up';
  let sent = 0;
  let answered = 0;
  const recordBodies: string[] = [];
  const target = {
    url: `${app.url}/graphql`,
    headers: { authorization: `Bearer ${token}` },
    body: () => ({ body: JSON.stringify({ query: RECORD, variables: { input: { subscriptionId, quantity: 1, idempotencyKey: `${prefix}-${sent++}` } } }) }),
    onAnswer: (status: number, body: string) => {
      answered++;
      if (status === 200 && body.includes(`"idempotencyKey":"${prefix}-`)) recordBodies.push(body);
    },
  };
  await runLoad(target, { duration: 2, connections: CONNECTIONS, pipelining: 1 }); // warm-up
  prefix = `run-${randomBytes(4).toString('hex')}`;
  sent = 0;
  answered = 0;
  recordBodies.length = 0;
  const load = await runLoad(target, { duration: DURATION, connections: CONNECTIONS, pipelining: 1 });
  log(`recordUsage over HTTP (${CONNECTIONS} connections, ${DURATION} s, a unique key per request)`);
  log(`  ${load.reqPerSec.toFixed(0)} req/s   p50 ${load.p50Ms} ms   p99 ${load.p99Ms} ms   ${load.requests} requests, ${load.errors} errors`);
  if (load.errors) log(`  first error: ${load.errorDetail.firstErrorBody ?? JSON.stringify(load.errorDetail)}`);
  await verifyLedger(orm, prefix, sent, answered, recordBodies);
  await cleanups.splice(cleanups.length - 1, 1)[0]?.(); // stop the server: phase 2 is the forwarder alone

  // ---- 2. the forwarder ------------------------------------------------------------------------
  await orm.em.fork().getConnection().execute(`update usage_events set state = 'sent' where state = 'pending'`);
  const silent = createLogger({ level: 'silent' });
  const acceptedBefore = emulator.meterEventStats().total_accepted;

  await addPending(orm, subscriptionId, ROWS, 'one');
  const one = await drainWith([new UsageForwarder({ orm, gateway, log: silent, batchSize: BATCH })], orm);
  log(`forwarder, 1 instance (batch ${BATCH}, claimed across its lanes)`);
  log(`  ${one.rows} events in ${one.seconds.toFixed(2)} s: ${(one.rows / one.seconds).toFixed(0)} events/s`);

  await addPending(orm, subscriptionId, ROWS, 'two');
  const orms = [await initORM({ url: databaseUrl }), await initORM({ url: databaseUrl })];
  try {
    const pair = orms.map((o) => new UsageForwarder({ orm: o, gateway: new StripeSdkGateway({ secretKey: 'sk_test_bench', apiBase: emulator.url }), log: silent, batchSize: BATCH }));
    const two = await drainWith(pair, orm);
    log(`forwarder, 2 instances with their own connection pools`);
    log(`  ${two.rows} events in ${two.seconds.toFixed(2)} s: ${(two.rows / two.seconds).toFixed(0)} events/s`);
  } finally {
    await Promise.all(orms.map((o) => o.close()));
  }

  const stats = emulator.meterEventStats();
  const twice = Object.values(stats.by_identifier).filter((s) => s.received !== 1).length;
  log(`emulator: ${stats.total_accepted - acceptedBefore} events accepted, ${twice} identifiers received more than once`);
  if (stats.total_accepted - acceptedBefore !== 2 * ROWS || twice) throw new Error('the forwarder did not send each row exactly once');
}

main()
  .catch((error) => {
    console.error(error instanceof Error ? error.stack : error);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });
