/**
 * Webhook ingest and burst, `npm run bench:webhooks [-- --duration 10 --connections 50
 * --worker-concurrency 4]` (also
 * `npm run bench -- --only webhook-ingest`). Prints its figures; asserts nothing.
 *
 * 1. Ingest: unique signed events (the emulator's own event mix under fresh ids) at N connections,
 *    against the floor (bare Express verifying the signature and inserting one row into the same
 *    PostgreSQL, bench/servers/webhook-bare.ts) and against Tollgate's route (record + enqueue),
 *    with Tollgate's worker paused so that both processes do the same work: events
 *    acknowledged/s and the server's CPU time per event. Then the worker is started again and
 *    applies that backlog: applied/s and Stripe reads per event.
 * 2. Burst: 200 `customer.subscription.updated` deliveries over 10 subscriptions, 50 at a time,
 *    while the emulator answers every subscription read in 300 ms, with a `subscriptions` query
 *    driven alongside: acknowledged/s, applied/s, Stripe reads per event, and the query's p99
 *    during the burst against its idle p99.
 * 3. Backlog: with the worker paused, 10 `customer.subscription.updated` deliveries for each of
 *    200 subscriptions of 50 customers (2,000 events); then the worker starts and applies them:
 *    applied/s, how long the last event waited, and Stripe reads per subscription.
 * 4. Ingest as in 1 with the worker running meanwhile: how long until every event is applied.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { cpuTimeMs, startChild, type ServerChild } from './lib/child';
import { runLoad } from './lib/load';
import { seedUsers, type SeededUser } from './lib/seed';

const EMULATOR_KEY = 'Bearer sk_test_tollgate_local_emulator';
const COUNTER = 1_000_000;

export interface WebhookBenchOptions {
  duration: number;
  connections: number;
  /** The worker's WORKER_CONCURRENCY (and WORKER_DB_POOL_MAX); default the app's own (4). */
  workerConcurrency?: number;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function signer(secret: string) {
  return (body: string) => {
    const t = Math.floor(Date.now() / 1000);
    return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
  };
}

/**
 * CPU time of the embedded PostgreSQL whose data directory is under `dir`: its postmaster and the
 * backends it forked (the connections that live through the measurement), in ms.
 */
function postgresCpuMs(dir: string): number {
  const pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
  const read = (pid: number, file: string) => {
    try {
      return readFileSync(`/proc/${pid}/${file}`, 'utf8');
    } catch {
      return '';
    }
  };
  const postmaster = pids.find((pid) => read(pid, 'cmdline').includes(dir) && read(pid, 'cmdline').startsWith(`${path.sep}`) && read(pid, 'comm').startsWith('postgres'));
  if (!postmaster) return 0;
  const parentOf = (pid: number) => {
    const stat = read(pid, 'stat');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  };
  return pids.filter((pid) => pid === postmaster || parentOf(pid) === postmaster).reduce((ms, pid) => ms + cpuTimeMs(pid), 0);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export async function runWebhookBench(options: WebhookBenchOptions): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'tollgate-webhook-bench-'));
  // The embedded PostgreSQL runs as another user: it must be able to reach its data directory.
  chmodSync(work, 0o755);
  const logFile = path.join(work, 'servers.log');
  const secret = `whsec_${randomBytes(24).toString('hex')}`;
  const jwtSecret = randomBytes(32).toString('hex');
  const sign = signer(secret);
  const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR };
  const children: ServerChild[] = [];
  try {
    const tollgate = await startChild('tollgate', 'bench/servers/tollgate.ts', {
      env: {
        ...baseEnv,
        NODE_ENV: 'development',
        PORT: '0',
        DATA_DIR: path.join(work, 'data'),
        LOG_LEVEL: 'warn',
        AUTH_JWT_SECRET: jwtSecret,
        STRIPE_WEBHOOK_SECRET: secret,
        RATE_LIMIT_MUTATIONS_PER_MINUTE: '1000000',
        STRIPE_REQUESTS_PER_SECOND: '1000',
        ...(options.workerConcurrency ? { WORKER_CONCURRENCY: String(options.workerConcurrency), WORKER_DB_POOL_MAX: String(options.workerConcurrency) } : {}),
      },
      logFile,
      timeoutMs: 120_000,
    });
    children.push(tollgate);
    const databaseUrl = tollgate.info.databaseUrl as string;
    const emulatorUrl = tollgate.info.emulatorUrl as string;
    const bare = await startChild('webhook-bare', 'bench/servers/webhook-bare.ts', {
      env: { ...baseEnv, NODE_ENV: 'development', DATABASE_URL: databaseUrl, STRIPE_WEBHOOK_SECRET: secret },
      logFile,
    });
    children.push(bare);
    const db = new Client({ connectionString: databaseUrl });
    await db.connect();
    const emulator = async (method: string, route: string, body?: Record<string, unknown> | URLSearchParams) => {
      const form = body instanceof URLSearchParams;
      const res = await fetch(`${emulatorUrl}${route}`, {
        method,
        headers: { authorization: EMULATOR_KEY, 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json' },
        body: body ? (form ? body.toString() : JSON.stringify(body)) : undefined,
      });
      return (await res.json()) as any;
    };
    const readsCounter = async (path: string) => (await emulator('POST', '/_emulator/faults', { delayMs: 0, count: COUNTER, path, method: 'GET' })).fault.id as number;
    const readsOf = async (id: number) => COUNTER - ((await emulator('GET', '/_emulator/faults')).faults.find((f: any) => f.id === id)?.remaining ?? 0);
    const pendingEvents = async () => Number((await db.query(`select count(*)::int as n from stripe_events where status in ('received')`)).rows[0].n);

    log('seeding 50 users with 4 subscriptions each through the API...');
    const users: SeededUser[] = [];
    // Five clients at once, ten users each (user ids must differ: seedUsers numbers from 0).
    await Promise.all(
      Array.from({ length: 5 }, async (_, lane) => users.push(...(await seedUsers(tollgate.info.url as string, jwtSecret, 10, lane * 10)))),
    );
    await tollgate.request('waitForWebhooks');
    await waitFor(async () => (await pendingEvents()) === 0, 60_000);

    // 1. Ingest of unique signed events.
    const templates = ((await tollgate.request<Record<string, any>[]>('events')) as Record<string, any>[])
      .filter((e) => !String(e.type).startsWith('billing.meter'))
      .map((e) => JSON.stringify({ ...e, id: '__ID__' }));
    const run = randomBytes(4).toString('hex');
    let n = 0;
    const next = () => {
      const body = templates[n % templates.length].replace('__ID__', `evt_bench_${run}_${n++}`);
      return { body, headers: { 'stripe-signature': sign(body) } };
    };
    const load = { duration: options.duration, connections: options.connections, pipelining: 1 };
    log(`ingest: unique signed events (${templates.length} templates), ${options.duration}s at ${options.connections} connections`);
    const cpuOf = async <T extends { requests: number }>(pid: number, fn: () => Promise<T>) => {
      const before = cpuTimeMs(pid);
      const value = await fn();
      return { value, cpuMsPerEvent: (cpuTimeMs(pid) - before) / Math.max(1, value.requests) };
    };
    const floor = await cpuOf(bare.pid, () => runLoad({ url: `${bare.info.url}/webhooks/stripe`, body: next }, load));
    log(
      `  floor (bare Express + one insert)  ${floor.value.reqPerSec.toFixed(0)} events/s acknowledged  p50 ${floor.value.p50Ms} ms  p99 ${floor.value.p99Ms} ms  CPU ${floor.cpuMsPerEvent.toFixed(3)} ms/event  errors ${floor.value.errors}`,
    );
    // The route alone: the worker is paused, so Tollgate's process does what the floor's does.
    await tollgate.request('pauseJobs');
    const before = Number((await db.query(`select count(*)::int as n from stripe_events`)).rows[0].n);
    const ingest = await cpuOf(tollgate.pid, () => runLoad({ url: `${tollgate.info.url}/webhooks/stripe`, body: next }, load));
    log(
      `  Tollgate (record + enqueue)        ${ingest.value.reqPerSec.toFixed(0)} events/s acknowledged (${(ingest.value.reqPerSec / floor.value.reqPerSec).toFixed(2)}x the floor)  p50 ${ingest.value.p50Ms} ms  p99 ${ingest.value.p99Ms} ms  CPU ${ingest.cpuMsPerEvent.toFixed(3)} ms/event (${(ingest.cpuMsPerEvent / floor.cpuMsPerEvent).toFixed(2)}x)  errors ${ingest.value.errors}`,
    );
    const recorded = Number((await db.query(`select count(*)::int as n from stripe_events`)).rows[0].n) - before;
    const allReads = await readsCounter('/v1/');
    const started = performance.now();
    await tollgate.request('resumeJobs');
    await waitFor(async () => (await pendingEvents()) === 0, 300_000);
    const appliedSeconds = (performance.now() - started) / 1000;
    const statuses = (await db.query(`select status, count(*)::int as n from stripe_events where stripe_event_id like $1 group by status`, [`evt_bench_${run}_%`])).rows;
    const reads = await readsOf(allReads);
    await emulator('DELETE', '/_emulator/faults');
    log(
      `  applied by the worker afterwards: ${recorded} events in ${appliedSeconds.toFixed(1)} s = ${(recorded / appliedSeconds).toFixed(0)} events/s; statuses ${JSON.stringify(statuses)}; Stripe reads ${reads} = ${(reads / Math.max(1, recorded)).toFixed(2)} per event`,
    );

    // 2. Burst with slow Stripe reads, and a user's subscriptions query alongside.
    const ids = (await db.query(`select stripe_subscription_id from subscriptions where status in ('active', 'trialing', 'incomplete') order by created_at limit 10`)).rows.map((r) => r.stripe_subscription_id as string);
    const objects = await Promise.all(ids.map((id) => emulator('GET', `/v1/subscriptions/${id}`)));
    const reader = users[0];
    const SUBSCRIPTIONS = JSON.stringify({ query: '{ subscriptions { id status quantity product { code } } }' });
    const readLoad = { duration: 4, connections: 4, pipelining: 1 };
    const idle = await runLoad({ url: `${tollgate.info.url}/graphql`, headers: { authorization: `Bearer ${reader.token}` }, body: SUBSCRIPTIONS }, readLoad);
    const slow = (await emulator('POST', '/_emulator/faults', { delayMs: 300, count: COUNTER, path: '/v1/subscriptions/', method: 'GET' })).fault.id as number;
    const events = Array.from({ length: 200 }, (_, i) => ({
      ...JSON.parse(templates[0].replace('__ID__', `evt_burst_${run}_${i}`)),
      type: 'customer.subscription.updated',
      data: { object: objects[i % objects.length] },
    }));
    const burstStarted = performance.now();
    const during = runLoad({ url: `${tollgate.info.url}/graphql`, headers: { authorization: `Bearer ${reader.token}` }, body: SUBSCRIPTIONS }, readLoad);
    const ackTimes: number[] = [];
    for (let i = 0; i < events.length; i += 50) {
      await Promise.all(
        events.slice(i, i + 50).map(async (e) => {
          const body = JSON.stringify(e);
          const t0 = performance.now();
          const res = await fetch(`${tollgate.info.url}/webhooks/stripe`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': sign(body) }, body });
          if (res.status !== 200) throw new Error(`burst delivery answered ${res.status}`);
          ackTimes.push(performance.now() - t0);
        }),
      );
    }
    const ackSeconds = (performance.now() - burstStarted) / 1000;
    await waitFor(async () => (await pendingEvents()) === 0, 300_000);
    const burstApplied = (performance.now() - burstStarted) / 1000;
    const burstReads = await readsOf(slow);
    const busy = await during;
    await emulator('DELETE', '/_emulator/faults');
    ackTimes.sort((a, b) => a - b);
    log('burst: 200 customer.subscription.updated over 10 subscriptions, 50 at a time, Stripe reads delayed 300 ms');
    log(`  acknowledged ${(200 / ackSeconds).toFixed(0)} events/s (delivery p50 ${ackTimes[100].toFixed(0)} ms, max ${ackTimes[199].toFixed(0)} ms); applied ${(200 / burstApplied).toFixed(0)} events/s (all 200 in ${burstApplied.toFixed(1)} s)`);
    log(`  Stripe subscription reads ${burstReads} = ${(burstReads / 200).toFixed(2)} per event (${(burstReads / 10).toFixed(1)} per subscription)`);
    log(`  subscriptions query: idle p50 ${idle.p50Ms} ms p99 ${idle.p99Ms} ms; during the burst p50 ${busy.p50Ms} ms p99 ${busy.p99Ms} ms (${(busy.p99Ms / Math.max(1, idle.p99Ms)).toFixed(1)}x)`);

    // 3. A backlog: 2,000 events over 200 subscriptions of 50 customers, applied once the worker starts.
    const subs = (await db.query(`select stripe_subscription_id from subscriptions order by created_at limit 200`)).rows.map((r) => r.stripe_subscription_id as string);
    const subObjects = await Promise.all(subs.map((id) => emulator('GET', `/v1/subscriptions/${id}`)));
    await tollgate.request('pauseJobs');
    const PER_OBJECT = 10;
    const backlog = subObjects.flatMap((object, i) =>
      Array.from({ length: PER_OBJECT }, (_, k) => ({
        ...JSON.parse(templates[0].replace('__ID__', `evt_backlog_${run}_${i}_${k}`)),
        type: 'customer.subscription.updated',
        data: { object },
      })),
    );
    // Interleaved as Stripe would send them: a round of one event per subscription, ten rounds.
    backlog.sort((a, b) => Number(a.id.split('_').pop()) - Number(b.id.split('_').pop()));
    for (let i = 0; i < backlog.length; i += 50) {
      await Promise.all(
        backlog.slice(i, i + 50).map(async (e) => {
          const body = JSON.stringify(e);
          const res = await fetch(`${tollgate.info.url}/webhooks/stripe`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': sign(body) }, body });
          if (res.status !== 200) throw new Error(`backlog delivery answered ${res.status}`);
        }),
      );
    }
    const subReads = await readsCounter('/v1/subscriptions/');
    const backlogStarted = performance.now();
    const backlogCpu = cpuTimeMs(tollgate.pid);
    const backlogPgCpu = postgresCpuMs(work);
    await tollgate.request('resumeJobs');
    const progress: string[] = [];
    await waitFor(async () => {
      const left = await pendingEvents();
      progress.push(`${((performance.now() - backlogStarted) / 1000).toFixed(1)}s:${left}`);
      return left === 0;
    }, 600_000, 250);
    const backlogSeconds = (performance.now() - backlogStarted) / 1000;
    const backlogCpuMs = cpuTimeMs(tollgate.pid) - backlogCpu;
    const backlogPgCpuMs = postgresCpuMs(work) - backlogPgCpu;
    const backlogReads = await readsOf(subReads);
    await emulator('DELETE', '/_emulator/faults');
    log(`backlog: ${backlog.length} customer.subscription.updated over ${subs.length} subscriptions of 50 customers, recorded with the worker paused`);
    log(`  applied ${(backlog.length / backlogSeconds).toFixed(0)} events/s (all in ${backlogSeconds.toFixed(1)} s); Stripe subscription reads ${backlogReads} = ${(backlogReads / subs.length).toFixed(2)} per subscription`);
    log(
      `  Tollgate's CPU (worker, API and the in-process emulator): ${(backlogCpuMs / 1000).toFixed(1)} s over ${backlogSeconds.toFixed(1)} s = ${(backlogCpuMs / backlogSeconds / 10).toFixed(0)}% of one core; ${(backlogCpuMs / Math.max(1, backlogReads)).toFixed(1)} ms per job; PostgreSQL's ${(backlogPgCpuMs / 1000).toFixed(1)} s = ${(backlogPgCpuMs / backlogSeconds / 10).toFixed(0)}% of one core, ${(backlogPgCpuMs / Math.max(1, backlogReads)).toFixed(1)} ms per job; load average ${os.loadavg()[0].toFixed(1)}`,
    );
    log(`  events left to apply over time: ${progress.filter((_, i) => i % 4 === 0 || i === progress.length - 1).join(' ')}`);

    // 4. Ingest again with the worker running meanwhile (deliveries and jobs on the same objects at once).
    const liveBefore = Number((await db.query(`select count(*)::int as n from stripe_events`)).rows[0].n);
    const liveStarted = performance.now();
    const live = await runLoad({ url: `${tollgate.info.url}/webhooks/stripe`, body: next }, load);
    const liveProgress: string[] = [];
    await waitFor(async () => {
      const left = await pendingEvents();
      liveProgress.push(`${((performance.now() - liveStarted) / 1000).toFixed(0)}s:${left}`);
      return left === 0;
    }, 600_000, 1000);
    const liveSeconds = (performance.now() - liveStarted) / 1000;
    const liveRecorded = Number((await db.query(`select count(*)::int as n from stripe_events`)).rows[0].n) - liveBefore;
    log(`ingest with the worker running: ${live.reqPerSec.toFixed(0)} events/s acknowledged; ${liveRecorded} events all applied ${liveSeconds.toFixed(1)} s after the first delivery (${(liveRecorded / liveSeconds).toFixed(0)} events/s)`);
    log(`  events left to apply over time: ${liveProgress.filter((_, i) => i % 5 === 0 || i === liveProgress.length - 1).join(' ')}`);
    await db.end();
  } finally {
    for (const child of children.reverse()) await child.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

// Run directly (scripts/run.cjs sets argv[1] to this file), not when bench/run.ts imports it.
if (process.argv[1] && path.resolve(process.argv[1]) === __filename) {
  const argv = process.argv.slice(2);
  const flag = (name: string, fallback: number) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : fallback;
  };
  const workerConcurrency = flag('--worker-concurrency', 0) || undefined;
  runWebhookBench({ duration: flag('--duration', 10), connections: flag('--connections', 50), workerConcurrency }).catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
