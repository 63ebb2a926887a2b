/**
 * `npm run bench [-- --duration 10 --rounds 3 --connections 10 --pipelining 1 --only products,subscriptions --profile]`
 *
 * Measures Tollgate against the ceiling of its own stack in one run on one machine: a bare Apollo
 * Server 5 on Express 5 (bench/servers/bare.ts) and Tollgate in local mode
 * (bench/servers/tollgate.ts) run as separate child processes, and autocannon drives each with the
 * same connections, duration and pipelining. `--duration` is each scenario's measured time in all,
 * taken in `--rounds` passes over every scenario, so that each Tollgate path and its ceiling are
 * measured at the same times. Prints a table and writes the same figures as JSON to
 * bench/results/<timestamp>.json.
 */
import { execSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startChild, withPeakRss, type ServerChild } from './lib/child';
import { runLoad, type LoadOptions, type LoadResult, type LoadTarget } from './lib/load';
import { Client } from 'pg';
import { JobQueueRepository } from '../src/jobs/job-queue.repository';
import { seedPlanUser, seedUsers, type SeededUser } from './lib/seed';
import { runWebhookBench } from './webhooks.bench';
import { ENTITLEMENT_TARGETS, entitlementScenarios } from './entitlements.scenarios';

interface Args extends LoadOptions {
  only: string[] | null;
  users: number;
  profile: boolean;
  logLevel: string;
  /** false: run the servers from TypeScript through scripts/run.cjs instead of compiling them first. */
  build: boolean;
  /** Passes over the scenarios; each gets duration / rounds seconds per pass. */
  rounds: number;
  /** Rows of the forwarder backlog. */
  backlog: number;
  /** Extra node flags for the Tollgate server (e.g. --max-semi-space-size=4), to try V8 settings. */
  serverNodeArgs: string[];
  /** Extra environment of the Tollgate server (`--server-env KEY=VALUE`, repeatable), to try settings. */
  serverEnv: Record<string, string>;
}

/** A fifth of a scenario, between 1 and 3 seconds. */
function warmUpSeconds(duration: number): number {
  return Math.min(3, Math.max(1, Math.round(duration / 5)));
}

function mb(usage: NodeJS.MemoryUsage): Record<string, number> {
  return Object.fromEntries(Object.entries(usage).map(([k, v]) => [k, Math.round(v / 2 ** 20)]));
}

function parseArgs(argv: string[]): Args {
  const args: Args = { duration: 10, connections: 10, pipelining: 1, only: null, users: 4, profile: false, logLevel: 'info', build: true, rounds: 3, backlog: 100_000, serverNodeArgs: [], serverEnv: {} };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const positive = (v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} must be a positive number`);
      return n;
    };
    if (flag === '--duration') args.duration = positive(value());
    else if (flag === '--connections') args.connections = Math.round(positive(value()));
    else if (flag === '--pipelining') args.pipelining = Math.round(positive(value()));
    else if (flag === '--users') args.users = Math.round(positive(value()));
    else if (flag === '--only') args.only = value().split(',').map((s) => s.trim());
    else if (flag === '--profile') args.profile = true;
    else if (flag === '--log-level') args.logLevel = value();
    else if (flag === '--no-build') args.build = false;
    else if (flag === '--rounds') args.rounds = Math.round(positive(value()));
    else if (flag === '--backlog') args.backlog = Math.round(positive(value()));
    else if (flag === '--server-node-args') args.serverNodeArgs = value().split(/\s+/).filter(Boolean);
    else if (flag === '--server-env') {
      const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(value());
      if (!match) throw new Error(`${flag} takes KEY=VALUE`);
      args.serverEnv[match[1]] = match[2];
    } else throw new Error(`unknown option ${flag} (--duration, --connections, --pipelining, --users, --only, --profile, --log-level, --no-build, --rounds, --backlog, --server-node-args, --server-env)`);
  }
  return args;
}

interface Row {
  scenario: string;
  server: 'ceiling' | 'tollgate';
  unit: 'req/s' | 'events/s';
  rate: number;
  p50Ms: number | null;
  p99Ms: number | null;
  errors: number;
  peakRssMb: number;
  /** CPU time of the server process per request (per event for the forwarder), in ms. */
  cpuMsPerOp: number | null;
  /** The ceiling scenario this row is compared with. */
  ceiling?: string;
  /** rate / ceiling rate. */
  ratio?: number;
  /** The ratio in each round (each pass over the scenarios), in order. */
  roundRatios?: number[];
  /** p99 / ceiling p99 (above 1 is slower). */
  p99Ratio?: number;
  /**
   * rate / the bare server's rate for the same kind of work: for products an answer of the same
   * shape, for recordUsage a committed insert (the stack's durable-write ceiling).
   */
  sameWorkRatio?: number;
  target?: { description: string; met: boolean };
  detail?: Record<string, unknown>;
}

/**
 * The targets, checked on the figures of this run. Each Tollgate path is measured as it runs in
 * production, every request through Apollo's pipeline, against the same stack doing the same
 * work: `products` against a bare Apollo answering the same catalog from constants,
 * `subscriptions` (no whole-response cache: resolvers and a database read every time) against a
 * bare query, and a single `recordUsage` against the bare server's durable insert (the stack's
 * durable-write ceiling).
 */
const TARGETS: Record<string, { ceiling?: string; minRatio?: number; minRate?: number; sameWork?: string; maxP99Ms?: number }> = {
  ...ENTITLEMENT_TARGETS,
  products: { ceiling: 'bare products', minRatio: 0.9 },
  subscriptions: { ceiling: 'bare query', minRatio: 0.6, sameWork: 'bare subscriptions' },
  recordUsage: { ceiling: 'bare durable mutation', minRatio: 0.8 },
  // The same single event on a plan whose limit on the meter is hard: recorded under the limit's
  // lock, against recordUsage on a plan without one.
  'recordUsage (hard limit)': { ceiling: 'recordUsage', minRatio: 0.9 },
  webhooks: { ceiling: 'bare mutation' },
  forwarder: { minRate: 10_000 },
};
const MAX_RSS_MB = 200;
/** Of both servers (see where they start). */
const NODE_ENV = 'development';

const PRODUCTS = `{ products { id code name description active prices { id lookupKey currency unitAmount interval usageType meter } } }`;
const BARE_WRITE = `mutation($key: String!) { write(key: $key) }`;
const RECORD_USAGE = `mutation($input: RecordUsageInput!) { recordUsage(input: $input) { id meter quantity occurredAt idempotencyKey } }`;
const SUBSCRIPTIONS = `{ subscriptions { id status quantity currentPeriodStart currentPeriodEnd cancelAtPeriodEnd canceledAt trialEnd createdAt
  product { id code name } price { id lookupKey currency unitAmount interval usageType } } }`;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const want = (name: string) => !args.only || args.only.includes(name);
  // Webhook ingest against its own floor, with servers of its own: only when named.
  if (args.only?.includes('webhook-ingest')) return runWebhookBench({ duration: args.duration, connections: args.connections });
  const root = path.join(__dirname, '..');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(root, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const work = mkdtempSync(path.join(os.tmpdir(), 'tollgate-bench-'));
  // Run as root, the embedded PostgreSQL runs as `postgres`, which must be able to enter DATA_DIR's parents.
  chmodSync(work, 0o755);
  const logFile = path.join(resultsDir, `${stamp}.log`);
  const loadBefore = os.loadavg();
  log(`bench: ${args.duration}s per scenario, ${args.connections} connections, pipelining ${args.pipelining}; load ${fmtLoad(loadBefore)}; logs in ${path.relative(root, logFile)}`);

  const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR };
  const jwtSecret = randomBytes(32).toString('hex');
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  const children: ServerChild[] = [];
  let buildDir: string | undefined;
  if (args.build) {
    // What production runs (`npm run build` output), not the on-the-fly TypeScript loader, whose
    // compiler and source maps would add about 150 MB to every server's RSS.
    log('compiling the app and bench servers (bench/tsconfig.json)...');
    execSync(`"${process.execPath}" "${require.resolve('typescript/bin/tsc')}" -p bench/tsconfig.json`, { cwd: root, stdio: 'inherit' });
    buildDir = path.join(resultsDir, 'build');
  }
  const rows: Row[] = [];
  try {
    // Both start at once (Tollgate's embedded PostgreSQL takes a few seconds to come up).
    // Both servers run under the same NODE_ENV: graphql-js and Express take different code paths by
    // it (graphql-js's development-only checks cost several percent of a large answer), so a ceiling
    // under another NODE_ENV than Tollgate's would not be the same stack. Tollgate's local mode is
    // the development mode.
    const startingBare = startChild('bare', 'bench/servers/bare.ts', { env: { ...baseEnv, NODE_ENV: NODE_ENV }, logFile, buildDir });
    const startingTollgate = startChild('tollgate', 'bench/servers/tollgate.ts', {
      env: {
        ...baseEnv,
        NODE_ENV: NODE_ENV,
        PORT: '0',
        DATA_DIR: path.join(work, 'data'),
        LOG_LEVEL: args.logLevel,
        AUTH_JWT_SECRET: jwtSecret,
        STRIPE_WEBHOOK_SECRET: webhookSecret,
        // The per-user budgets stay on (their PostgreSQL store is part of every mutation's cost)
        // but high enough that recordUsage from one user is measured, not refused.
        RATE_LIMIT_MUTATIONS_PER_MINUTE: '1000000',
        RATE_LIMIT_USAGE_PER_MINUTE: '10000000',
        // Customers on no test clock, as in production (live keys have none): local mode's
        // clock adds a read of the clock's time to every recordUsage.
        STRIPE_TEST_CLOCK: 'off',
        CATALOG_FILE: benchCatalog(work),
        ...args.serverEnv,
      },
      logFile,
      buildDir,
      nodeArgs: args.serverNodeArgs,
    });
    startingBare.then((c) => children.push(c), () => undefined);
    startingTollgate.then((c) => children.push(c), () => undefined);
    const [bare, tollgate] = await Promise.all([startingBare, startingTollgate]);
    const tollgateUrl = tollgate.info.url as string;

    log('seeding users and subscriptions through the API...');
    const users = await seedUsers(tollgateUrl, jwtSecret, args.users);
    const cappedUser = want('recordUsage') ? await seedPlanUser(tollgateUrl, jwtSecret, 'bench-capped-user', 'pro-capped') : undefined;
    await tollgate.request('waitForWebhooks');
    const memoryAtRest = { bare: await bare.request('memory'), tollgate: await tollgate.request('memory') };

    const profileDir = path.join(resultsDir, 'profiles');
    if (args.profile) mkdirSync(profileDir, { recursive: true });
    const graphql = (server: ServerChild, query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): LoadTarget => ({
      url: `${server.info.url}/graphql`,
      headers,
      body: JSON.stringify({ query, variables }),
    });

    // Ceilings first, then each Tollgate path; both servers stay up, only one is under load at a time.
    const plan: Scenario[] = [
      { scenario: 'bare query', server: bare, target: graphql(bare, '{ hello }') },
      { scenario: 'bare mutation', server: bare, target: graphql(bare, 'mutation($v: String!) { echo(value: $v) }', { v: 'x' }) },
    ];
    if (want('products')) {
      plan.push({ scenario: 'bare products', server: bare, target: graphql(bare, PRODUCTS) });
      plan.push({ scenario: 'products', server: tollgate, target: graphql(tollgate, PRODUCTS) });
    }
    if (want('subscriptions')) {
      plan.push({ scenario: 'bare subscriptions', server: bare, target: graphql(bare, SUBSCRIPTIONS) });
      const user = users[0];
      plan.push({
        scenario: 'subscriptions',
        server: tollgate,
        target: graphql(tollgate, SUBSCRIPTIONS, undefined, { authorization: `Bearer ${user.token}` }),
        detail: { subscriptionsPerUser: user.subscriptionIds.length },
      });
    }
    if (want('recordUsage')) {
      // Durable: the answer comes after the row is committed. A fresh idempotency key per request,
      // so every one is a new row rather than a replay.
      const user = users[0];
      const run = randomBytes(4).toString('hex');
      /** One event per request on `subscriptionId`, each under a key of its own. */
      const recordUsage = (token: string, subscriptionId: string, keyPrefix: string): LoadTarget => {
        let n = 0;
        return {
          url: `${tollgateUrl}/graphql`,
          headers: { authorization: `Bearer ${token}` },
          body: () => ({
            body: JSON.stringify({ query: RECORD_USAGE, variables: { input: { subscriptionId, quantity: 1, idempotencyKey: `${keyPrefix}-${run}-${n++}` } } }),
          }),
        };
      };
      // The durable-write ceiling: the bare server commits one row per request (a plain insert
      // through a pg pool as large as the load's connections) into Tollgate's own PostgreSQL, so
      // both write to the same database on the same disk. Keys are unique like recordUsage's.
      await bare.request('useDatabase', { url: tollgate.info.databaseUrl, connections: args.connections });
      let w = 0;
      plan.push({
        scenario: 'bare durable mutation',
        server: bare,
        target: { url: `${bare.info.url}/graphql`, body: () => ({ body: JSON.stringify({ query: BARE_WRITE, variables: { key: `${run}-${w++}` } }) }) },
      });
      plan.push({ scenario: 'recordUsage', server: tollgate, target: recordUsage(user.token, user.meteredSubscriptionId, 'bench') });
      plan.push({
        scenario: 'recordUsage (hard limit)',
        server: tollgate,
        target: recordUsage(cappedUser!.token, cappedUser!.subscriptionId, 'bench-capped'),
        detail: { limit: CAPPED_LIMIT },
      });
    }
    if (want('webhooks')) {
      const deliveries = await webhookDeliveries(tollgate, webhookSecret);
      plan.push({ scenario: 'webhooks', server: tollgate, target: { url: `${tollgateUrl}/webhooks/stripe`, body: deliveries.next }, detail: { eventMix: deliveries.mix } });
    }
    if (want('entitlements')) {
      await bare.request('useDatabase', { url: tollgate.info.databaseUrl, connections: args.connections });
      plan.push(...(await entitlementScenarios(tollgate, bare, users, graphql)));
    }

    // The plan runs `rounds` times over, each scenario for its share of the duration, so that a
    // Tollgate path and its ceiling are measured at the same times of the run: the speed of a
    // shared machine drifts by tens of percent within a minute, and a ceiling measured only
    // before it would carry that drift into the ratio.
    const roundSeconds = Math.max(1, args.duration / args.rounds);
    const measured = new Map<string, Measured>();
    for (let round = 1; round <= args.rounds; round++) {
      for (const { scenario, server, target } of plan) {
        // A short unrecorded run first, so the figures are of code the JIT has compiled and of a
        // server with no start-up work left, not of the first seconds of whichever scenario runs first.
        if (round === 1) await runLoad(target, { ...args, duration: warmUpSeconds(args.duration) });
        const profiled = args.profile && server === tollgate && round === 1;
        const profileFile = path.join(profileDir, `${stamp}-${scenario.replace(/\W+/g, '-')}.cpuprofile`);
        if (profiled) await server.request('profileStart');
        const { value, peakRssBytes, cpuMs } = await withPeakRss(server.pid, () => runLoad(target, { ...args, duration: roundSeconds }));
        if (profiled) await server.request('profileStop', { file: profileFile });
        // Where the memory is right after the load: V8's heap, or outside it.
        const after = mb(await server.request<NodeJS.MemoryUsage>('memory'));
        if (process.env.BENCH_GC_PROBE && server === tollgate) log(`  live after gc: ${JSON.stringify(mb(await server.request<NodeJS.MemoryUsage>('memoryAfterGc')))}`);
        const m = measured.get(scenario) ?? { rounds: [], peakRssBytes: 0, cpuMs: 0, memoryAfterMb: after };
        m.rounds.push(value);
        m.peakRssBytes = Math.max(m.peakRssBytes, peakRssBytes);
        m.cpuMs += cpuMs;
        m.memoryAfterMb = after;
        if (profiled) m.profile = path.relative(root, profileFile);
        measured.set(scenario, m);
        const cpu = value.requests ? (cpuMs / value.requests).toFixed(3) : '-';
        log(
          `  ${scenario.padEnd(14)} round ${round}/${args.rounds}  ${fmtRate(value.reqPerSec)} req/s  p50 ${value.p50Ms} ms  p99 ${value.p99Ms} ms  CPU ${cpu} ms/req  errors ${value.errors}  RSS ${Math.round(peakRssBytes / 2 ** 20)} MB peak, heap ${after.heapUsed}/${after.heapTotal} MB after${value.errorDetail.firstErrorBody ? `  first: ${value.errorDetail.firstErrorBody}` : ''}`,
        );
      }
    }
    for (const { scenario, server, detail } of plan) {
      const m = measured.get(scenario)!;
      rows.push(toRow(scenario, server.name as Row['server'], m, { detail: { ...detail, memoryAfterMb: m.memoryAfterMb, ...(m.profile ? { profile: m.profile } : {}) } }));
    }

    if (want('forwarder')) {
      if (args.profile) await tollgate.request('profileStart');
      const row = await forwarderDrain(tollgate, users, args.backlog);
      if (args.profile) {
        const file = path.join(profileDir, `${stamp}-forwarder.cpuprofile`);
        await tollgate.request('profileStop', { file });
        row.detail = { ...row.detail, profile: path.relative(root, file) };
      }
      rows.push(row);
    }

    compare(rows);
    const loadAfter = os.loadavg();
    const report = {
      startedAt: stamp,
      wallSeconds: round((performance.now() - t0) / 1000, 1),
      options: { nodeEnv: NODE_ENV, duration: args.duration, rounds: args.rounds, connections: args.connections, pipelining: args.pipelining, users: args.users, logLevel: args.logLevel, compiled: args.build, serverNodeArgs: args.serverNodeArgs, serverEnv: args.serverEnv },
      machine: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, totalMemMb: Math.round(os.totalmem() / 2 ** 20) },
      loadAverage: { before: loadBefore, after: loadAfter },
      commit: gitCommit(root),
      targets: { ...TARGETS, peakRssMb: { max: MAX_RSS_MB } },
      // process.memoryUsage() of each server after start-up and seeding, before any load.
      memoryAtRest,
      rows,
    };
    const file = path.join(resultsDir, `${stamp}.json`);
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\n${table(rows)}\n\nload average ${fmtLoad(loadBefore)} before, ${fmtLoad(loadAfter)} after; ${os.cpus().length} CPUs\n`);
    process.stdout.write(`results: ${path.relative(root, file)}\n`);
  } finally {
    for (const child of children.reverse()) await child.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

/** The hard limit of the bench catalog's capped plan: far above what a run records, so every event is recorded. */
const CAPPED_LIMIT = 1_000_000_000;

/**
 * The default catalog plus `pro-capped`: Pro's prices and meter with a hard limit on `api_calls`,
 * for `recordUsage (hard limit)`. Written into the run's work directory; returns its path.
 */
function benchCatalog(work: string): string {
  const catalog = JSON.parse(readFileSync(path.join(__dirname, '..', 'catalog', 'default.json'), 'utf8'));
  catalog.products.push({
    code: 'pro-capped',
    name: 'Pro (capped)',
    description: 'Pro with a hard limit on API calls.',
    prices: [
      { lookupKey: 'pro_capped_monthly', currency: 'usd', unitAmount: 9900, interval: 'month' },
      { lookupKey: 'pro_capped_api_calls', currency: 'usd', unitAmount: 1, interval: 'month', usageType: 'metered', meter: 'api_calls' },
    ],
    limits: [{ meter: 'api_calls', limit: CAPPED_LIMIT, period: 'billing_period', kind: 'hard' }],
  });
  const file = path.join(work, 'catalog.json');
  writeFileSync(file, JSON.stringify(catalog, null, 2));
  return file;
}

/**
 * Signed deliveries of a realistic event mix: the events the emulator emitted while the users were
 * set up (customers, subscriptions, invoices, payment intents, catalog), each sent again under a
 * fresh event id so that every delivery is recorded and applied, never a duplicate no-op. Signed
 * the way Stripe signs: HMAC-SHA256 over `${t}.${payload}` with the endpoint secret.
 */
async function webhookDeliveries(tollgate: ServerChild, secret: string) {
  const events = (await tollgate.request<Record<string, any>[]>('events')).filter((e) => !String(e.type).startsWith('billing.meter'));
  if (!events.length) throw new Error('the emulator recorded no events to replay');
  const mix: Record<string, number> = {};
  for (const e of events) mix[e.type] = (mix[e.type] ?? 0) + 1;
  const templates = events.map((e) => JSON.stringify({ ...e, id: '__EVENT_ID__' }));
  const run = randomBytes(4).toString('hex');
  let n = 0;
  return {
    mix,
    next: () => {
      const template = templates[n % templates.length];
      const body = template.replace('__EVENT_ID__', `evt_bench_${run}_${n++}`);
      const t = Math.floor(Date.now() / 1000);
      const signature = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
      return { body, headers: { 'stripe-signature': `t=${t},v1=${signature}` } };
    },
  };
}

/**
 * The usage forwarder draining a backlog: `backlog` pending rows inserted in one statement (so
 * they all become visible at once), then the server's own forward_usage job, as it runs in
 * production, sends them to the emulator's meter event stream. Timed from the commit to the
 * moment no row is pending; the emulator's count confirms every event arrived.
 */
async function forwarderDrain(tollgate: ServerChild, users: SeededUser[], backlog: number): Promise<Row> {
  const db = new Client({ connectionString: tollgate.info.databaseUrl as string });
  await db.connect();
  try {
    // Start from a quiet ledger: whatever recordUsage left pending is sent first.
    await waitFor(async () => Number((await db.query(`select count(*) from usage_events where state = 'pending'`)).rows[0].count) === 0, 120_000);
    const before = await tollgate.request<number>('meterEventCount');
    const subs = (await db.query(`select id, customer_id from subscriptions where id = any($1::uuid[])`, [users.map((u) => u.meteredSubscriptionId)])).rows;
    const run = randomBytes(4).toString('hex');
    log(`  forwarder      inserting ${backlog.toLocaleString('en-US')} pending usage rows...`);
    const { value, peakRssBytes, cpuMs } = await withPeakRss(tollgate.pid, async () => {
      await db.query(
        `insert into usage_events (id, customer_id, subscription_id, meter, quantity, occurred_at, idempotency_key, request_hash, state, attempts, next_attempt_at, created_at)
         select gen_random_uuid(), ($3::uuid[])[g % cardinality($2::uuid[]) + 1], ($2::uuid[])[g % cardinality($2::uuid[]) + 1],
                'api_calls', 1, now(), $4 || g, 'bench', 'pending', 0, now(), now()
           from generate_series(0, $1::int - 1) g`,
        [backlog, subs.map((r) => r.id), subs.map((r) => r.customer_id), `bench-backlog-${run}-`],
      );
      // Wake the forwarding job, as recordUsage does after its commit.
      await new JobQueueRepository(1).addUsageForwardJob(db);
      const started = performance.now();
      // `exists` stops at the first pending row: a count every 50 ms would itself cost PostgreSQL
      // a noticeable share of the drain.
      await waitFor(async () => !(await db.query(`select exists(select 1 from usage_events where state = 'pending') as pending`)).rows[0].pending, 600_000, 50);
      const seconds = (performance.now() - started) / 1000;
      const states = (await db.query(`select state, count(*)::int as n from usage_events where idempotency_key like $1 group by state`, [`bench-backlog-${run}-%`])).rows;
      const delivered = (await tollgate.request<number>('meterEventCount')) - before;
      return { seconds, states, delivered };
    });
    const failed = value.states.filter((r: { state: string }) => r.state !== 'sent').reduce((a: number, r: { n: number }) => a + r.n, 0);
    const rate = backlog / value.seconds;
    log(`  forwarder      ${fmtRate(rate)} events/s (${backlog.toLocaleString('en-US')} in ${value.seconds.toFixed(2)} s), ${value.delivered} accepted by the emulator`);
    return {
      scenario: 'forwarder',
      server: 'tollgate',
      unit: 'events/s',
      rate: Math.round(rate),
      p50Ms: null,
      p99Ms: null,
      errors: failed + Math.max(0, backlog - value.delivered),
      peakRssMb: Math.round(peakRssBytes / 2 ** 20),
      // Includes the in-process emulator receiving the events.
      cpuMsPerOp: round(cpuMs / backlog, 4),
      detail: { backlog, seconds: round(value.seconds, 3), states: value.states, acceptedByEmulator: value.delivered },
    };
  } finally {
    await db.end();
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A scenario of the plan: what is driven, against which server. */
interface Scenario {
  scenario: string;
  server: ServerChild;
  target: LoadTarget;
  detail?: Record<string, unknown>;
}

/** A scenario's rounds so far. */
interface Measured {
  rounds: LoadResult[];
  peakRssBytes: number;
  cpuMs: number;
  memoryAfterMb: Record<string, number>;
  profile?: string;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * One row from a scenario's rounds: the rate over all of them (requests / seconds), the median of
 * their p50s and the highest p99, all errors, the highest RSS, CPU per request over all of them.
 */
function toRow(scenario: string, server: Row['server'], m: Measured, extra: Partial<Row>): Row {
  const requests = m.rounds.reduce((a, r) => a + r.requests, 0);
  const seconds = m.rounds.reduce((a, r) => a + r.seconds, 0);
  const errorDetail = { connection: 0, timeouts: 0, non2xx: 0, graphqlErrors: 0 };
  for (const r of m.rounds) for (const k of Object.keys(errorDetail) as (keyof typeof errorDetail)[]) errorDetail[k] += r.errorDetail[k];
  const firstErrorBody = m.rounds.find((r) => r.errorDetail.firstErrorBody)?.errorDetail.firstErrorBody;
  return {
    scenario,
    server,
    unit: 'req/s',
    rate: Math.round(requests / seconds),
    p50Ms: median(m.rounds.map((r) => r.p50Ms)),
    p99Ms: Math.max(...m.rounds.map((r) => r.p99Ms)),
    errors: m.rounds.reduce((a, r) => a + r.errors, 0),
    peakRssMb: Math.round(m.peakRssBytes / 2 ** 20),
    cpuMsPerOp: requests ? round(m.cpuMs / requests, 3) : null,
    ...extra,
    detail: { requests, seconds: round(seconds, 2), roundRates: m.rounds.map((r) => Math.round(r.reqPerSec)), ...errorDetail, firstErrorBody, ...extra.detail },
  };
}

/** Fills in each Tollgate row's ratios to its ceiling and whether its target is met. */
function compare(rows: Row[]): void {
  for (const row of rows) {
    if (row.server !== 'tollgate') continue;
    const t = TARGETS[row.scenario];
    const rssOk = row.peakRssMb < MAX_RSS_MB;
    const ceiling = t?.ceiling ? rows.find((r) => r.scenario === t.ceiling) : undefined;
    if (ceiling) {
      row.ceiling = ceiling.scenario;
      row.ratio = round(row.rate / ceiling.rate, 2);
      // Each round against the ceiling's round of the same pass: how far the ratio moved within the run.
      const mine = row.detail?.roundRates as number[] | undefined;
      const theirs = ceiling.detail?.roundRates as number[] | undefined;
      if (mine && theirs) row.roundRatios = mine.map((rate, i) => round(rate / theirs[i], 2));
      if (row.p99Ms !== null && ceiling.p99Ms) row.p99Ratio = round(row.p99Ms / ceiling.p99Ms, 2);
    }
    const same = t?.sameWork ? rows.find((r) => r.scenario === t.sameWork) : undefined;
    if (same) row.sameWorkRatio = round(row.rate / same.rate, 2);
    // Each part of the target on its own, so a row says which part it misses.
    const parts: string[] = [];
    let met = true;
    const check = (ok: boolean, text: string) => {
      parts.push(`${text} ${ok ? 'met' : 'MISSED'}`);
      met &&= ok;
    };
    if (t?.minRatio !== undefined) check((row.ratio ?? 0) >= t.minRatio, `${(row.ratio ?? 0).toFixed(2)} >= ${t.minRatio}`);
    if (t?.minRate !== undefined) check(row.rate >= t.minRate, `${fmtRate(row.rate)} >= ${fmtRate(t.minRate)}/s`);
    if (t?.maxP99Ms !== undefined) check(row.p99Ms !== null && row.p99Ms < t.maxP99Ms, `p99 < ${t.maxP99Ms} ms`);
    check(rssOk, `RSS < ${MAX_RSS_MB} MB`);
    check(row.errors === 0, 'no errors');
    row.target = { description: parts.join('; '), met };
  }
}

function table(rows: Row[]): string {
  const header = ['scenario', 'server', 'rate', 'p50 ms', 'p99 ms', 'errors', 'peak RSS MB', 'CPU ms/op', 'x ceiling', 'rounds', 'p99 x ceiling', 'x same work', 'target'];
  const lines = rows.map((r) => [
    r.scenario,
    r.server,
    `${fmtRate(r.rate)} ${r.unit}`,
    r.p50Ms === null ? '-' : String(r.p50Ms),
    r.p99Ms === null ? '-' : String(r.p99Ms),
    String(r.errors),
    String(r.peakRssMb),
    r.cpuMsPerOp === null ? '-' : r.cpuMsPerOp.toFixed(3),
    r.ratio === undefined ? '-' : r.ratio.toFixed(2),
    r.roundRatios?.length ? `${Math.min(...r.roundRatios).toFixed(2)}-${Math.max(...r.roundRatios).toFixed(2)}` : '-',
    r.p99Ratio === undefined ? '-' : r.p99Ratio.toFixed(2),
    r.sameWorkRatio === undefined ? '-' : r.sameWorkRatio.toFixed(2),
    r.target ? r.target.description : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 11 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt)].join('\n');
}

function gitCommit(root: string): string | null {
  try {
    const head = execSync('git rev-parse --short HEAD', { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execSync('git status --porcelain -- src', { cwd: root, encoding: 'utf8' }).trim() ? '+uncommitted src changes' : '';
    return head + dirty;
  } catch {
    return null;
  }
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
const fmtRate = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
const fmtLoad = (l: number[]) => l.map((n) => n.toFixed(2)).join(' ');
const t0 = performance.now();
function log(line: string): void {
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(1);
});
