/**
 * `node scripts/run.cjs bench/emulator-journal.bench.ts`: what the emulator's request journal
 * costs on the meter event paths. The emulator runs as `npm run emulator` does, in a child
 * process, three ways: without a state file (nothing written), with a state file (each
 * state-changing request appended to the journal before its answer), and with `--fsync` (each
 * record also flushed to the disk). autocannon drives v1 meter events (one event a request, a
 * unique identifier each) and the v2 meter event stream (100 events a request); prints req/s,
 * events/s and p50/p99 per run.
 *
 * Then the append alone, in this process: µs per record of a v1 event and of a 100-event stream
 * request, without and with fdatasync.
 *
 * Options (environment): BENCH_JOURNAL_DURATION (s per run, default 4), BENCH_JOURNAL_CONNECTIONS
 * (default 20).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../src/db/embedded-postgres';
import { projectRoot } from '../src/common/paths';
import { RequestJournal } from '../src/emulator/journal';
import { runLoad } from './lib/load';

const ROOT = projectRoot();
const DURATION = Number(process.env.BENCH_JOURNAL_DURATION ?? 4);
const CONNECTIONS = Number(process.env.BENCH_JOURNAL_CONNECTIONS ?? 20);
const KEY = 'sk_test_bench_journal';

async function startEmulator(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/run.cjs'), path.join(ROOT, 'src/emulator/cli.ts'), '--port', String(port), '--quiet', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (/ready at/.test(out)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`emulator exited with ${code}`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

/**
 * CPU time (user + system, ms) the process has used, from /proc (Linux; 0 elsewhere): per
 * request it shows the journal's cost even when other work on the machine skews req/s.
 */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

async function post(url: string, key: string, body: string, type = 'application/x-www-form-urlencoded'): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': type }, body });
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return res.json();
}

async function run(label: string, args: string[]): Promise<void> {
  const emu = await startEmulator(args);
  try {
    const customer = await post(`${emu.url}/v1/customers`, KEY, 'email=bench%40example.com');
    await post(`${emu.url}/v1/billing/meters`, KEY, 'display_name=Calls&event_name=calls&default_aggregation[formula]=sum');
    let n = 0;
    const pid = emu.child.pid!;
    let cpu = cpuMs(pid);
    const v1 = await runLoad(
      {
        url: `${emu.url}/v1/billing/meter_events`,
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: () => ({ body: `event_name=calls&identifier=${label}-v1-${n++}&payload[stripe_customer_id]=${customer.id}&payload[value]=1` }),
      },
      { duration: DURATION, connections: CONNECTIONS, pipelining: 1 },
    );
    const v1Cpu = cpuMs(pid) - cpu;
    const session = await post(`${emu.url}/v2/billing/meter_event_session`, KEY, '{}', 'application/json');
    let b = 0;
    cpu = cpuMs(pid);
    const v2 = await runLoad(
      {
        url: `${emu.url}/v2/billing/meter_event_stream`,
        headers: { authorization: `Bearer ${session.authentication_token}` },
        body: () => {
          const batch = b++;
          const events = Array.from({ length: 100 }, (_, i) => ({ event_name: 'calls', identifier: `${label}-v2-${batch}-${i}`, payload: { stripe_customer_id: customer.id, value: '1' } }));
          return { body: JSON.stringify({ events }) };
        },
      },
      { duration: DURATION, connections: Math.min(CONNECTIONS, 8), pipelining: 1 },
    );
    const v2Cpu = cpuMs(pid) - cpu;
    const line = (name: string, r: typeof v1, events: number, cpuUsed: number) =>
      `  ${name.padEnd(22)} ${r.reqPerSec.toFixed(0).padStart(6)} req/s ${(r.reqPerSec * events).toFixed(0).padStart(8)} events/s  p50 ${r.p50Ms} ms  p99 ${r.p99Ms} ms  ` +
      `emulator CPU ${((cpuUsed * 1000) / Math.max(1, r.requests)).toFixed(0)} µs/request  errors ${r.errors}`;
    console.log(`${label}`);
    console.log(line('v1 meter_events', v1, 1, v1Cpu));
    console.log(line('v2 meter_event_stream', v2, 100, v2Cpu));
  } finally {
    const exited = new Promise((resolve) => emu.child.once('exit', resolve));
    emu.child.kill('SIGTERM');
    await exited;
  }
}

/** µs per RequestJournal.append of a record with `body`. */
function appendCost(file: string, body: string, fsync: boolean, n: number): number {
  const journal = new RequestJournal(file, fsync);
  const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
  const seed = '00'.repeat(16);
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) journal.append({ seq: i + 1, at: Date.now(), seed, method: 'POST', path: '/v1/billing/meter_events', query: '', headers, body });
  const us = Number(process.hrtime.bigint() - started) / 1000 / n;
  journal.close();
  return us;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-journal-'));
  try {
    const v1Body = 'event_name=calls&identifier=bench-v1-123456&payload[stripe_customer_id]=cus_0123456789abcdefghijklmn&payload[value]=1';
    const v2Body = JSON.stringify({ events: Array.from({ length: 100 }, (_, i) => ({ event_name: 'calls', identifier: `bench-v2-1234-${i}`, payload: { stripe_customer_id: 'cus_0123456789abcdefghijklmn', value: '1' } })) });
    console.log('journal append alone');
    console.log(`  v1 event record        ${appendCost(path.join(dir, 'j1'), v1Body, false, 20_000).toFixed(1)} µs   with fdatasync ${appendCost(path.join(dir, 'j2'), v1Body, true, 300).toFixed(0)} µs`);
    console.log(`  v2 100-event record    ${appendCost(path.join(dir, 'j3'), v2Body, false, 5_000).toFixed(1)} µs   with fdatasync ${appendCost(path.join(dir, 'j4'), v2Body, true, 300).toFixed(0)} µs`);
    await run('no state file', []);
    await run('state file + journal', ['--state-file', path.join(dir, 'a.json')]);
    await run('journal with --fsync', ['--state-file', path.join(dir, 'b.json'), '--fsync']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
