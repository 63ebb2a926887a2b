import { execFile } from 'node:child_process';
import { readFile, realpath, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * An embedded cluster outlives a process killed with SIGKILL: PostgreSQL is a child process
 * that keeps running (reparented to init), holding its data directory's `postmaster.pid`, so the
 * next start would fail with `lock file "postmaster.pid" already exists`. Before starting, the
 * lock file is examined and an orphaned server of the same data directory is stopped.
 *
 * Stopped rather than reused: the orphan's log pipe is dead, no process would stop it on exit
 * (it is nobody's child any more), it listens on the port the dead process picked, and it may
 * be half-way through something the dead process asked of it. A fresh start costs well under a
 * second and leaves one owner. A server whose parent is still a live Node process belongs to
 * another running instance with the same DATA_DIR and is never touched.
 */

export interface ProcessInfo {
  /** A zombie has exited; only its exit status is left for its parent to collect. */
  state: 'gone' | 'zombie' | 'running';
  /** The command line, split into arguments where the platform allows. */
  args: string[];
  ppid: number;
}

export type OrphanOutcome =
  /** No lock file, or one PostgreSQL itself will find stale (its pid is gone). */
  | 'none'
  /** The lock file named a process that is not this cluster's server any more; removed. */
  | 'stale-lock-removed'
  /** An orphaned server of this data directory was stopped. */
  | 'stopped';

const STOP_SIGNALS: { signal: NodeJS.Signals; waitMs: number }[] = [
  // Fast shutdown: ends sessions, writes a checkpoint.
  { signal: 'SIGINT', waitMs: 20_000 },
  // Immediate shutdown: the next start runs crash recovery (as after a power cut); never SIGKILL.
  { signal: 'SIGQUIT', waitMs: 10_000 },
];

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(cmd, args, { timeout: 5_000 }, (error, stdout) => (error ? reject(error) : resolve(stdout))));
}

/** What the system says about `pid` (Linux: /proc; elsewhere: ps). */
export async function describeProcess(pid: number): Promise<ProcessInfo> {
  const gone: ProcessInfo = { state: 'gone', args: [], ppid: 0 };
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return gone;
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
    return { state: state === 'Z' || state === 'X' ? 'zombie' : 'running', args, ppid: Number(ppid) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && process.platform === 'linux') return gone;
  }
  try {
    const line = (await run('ps', ['-o', 'stat=', '-o', 'ppid=', '-o', 'command=', '-p', String(pid)])).trim();
    const match = /^(\S+)\s+(\d+)\s+(.*)$/.exec(line);
    if (!match) return gone;
    return { state: match[1].startsWith('Z') ? 'zombie' : 'running', args: match[3].split(/\s+/), ppid: Number(match[2]) };
  } catch {
    return gone;
  }
}

/** The pid in a data directory's `postmaster.pid`, or null when there is none. */
export async function lockOwner(dataDir: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

async function samePath(a: string, b: string): Promise<boolean> {
  const real = (p: string) => realpath(p).catch(() => path.resolve(p));
  return (await real(a)) === (await real(b));
}

/** True when `args` is a PostgreSQL server started on `dataDir` (`postgres -D <dataDir> ...`). */
async function isServerOf(args: string[], dataDir: string): Promise<boolean> {
  if (args.length === 0 || !/(^|\/)postgres$/.test(args[0])) return false;
  const d = args.indexOf('-D');
  return d >= 0 && d + 1 < args.length && samePath(args[d + 1], dataDir);
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if ((await describeProcess(pid)).state !== 'running') return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Makes the data directory startable after a crash of the process that ran its server: stops
 * an orphaned server of this directory, removes a lock file whose owner is gone for certain
 * (its pid now belongs to another program, or is only a zombie), and leaves everything else to
 * PostgreSQL's own checks. Throws when the server belongs to a live process or will not stop.
 */
export async function recoverOrphanedPostgres(dataDir: string, log: (line: string) => void = () => undefined): Promise<OrphanOutcome> {
  const pid = await lockOwner(dataDir);
  if (pid === null || pid === process.pid) return 'none';
  const info = await describeProcess(pid);
  // PostgreSQL removes a lock file whose pid is gone by itself (checking shared memory too).
  if (info.state === 'gone') return 'none';
  if (info.state === 'zombie') {
    // But not one whose pid is a zombie: it looks alive to kill(pid, 0).
    await rm(path.join(dataDir, 'postmaster.pid'), { force: true });
    log(`removed the lock file of an exited PostgreSQL (pid ${pid}) in ${dataDir}`);
    return 'stale-lock-removed';
  }
  if (!(await isServerOf(info.args, dataDir))) {
    // The pid was reused by another program after the server died (a reboot, a new container).
    await rm(path.join(dataDir, 'postmaster.pid'), { force: true });
    log(`removed a stale lock file in ${dataDir}: pid ${pid} is now ${info.args[0] ?? 'another process'}`);
    return 'stale-lock-removed';
  }
  const parent = info.ppid > 1 ? await describeProcess(info.ppid) : undefined;
  if (parent?.state === 'running' && /(^|\/)node(js)?$/.test(parent.args[0] ?? '')) {
    throw new Error(
      `The embedded PostgreSQL in ${dataDir} (pid ${pid}) belongs to another running process (pid ${info.ppid}): ` +
        'stop that instance first, or give this one its own DATA_DIR.',
    );
  }
  for (const { signal, waitMs } of STOP_SIGNALS) {
    log(`stopping the orphaned embedded PostgreSQL of ${dataDir} (pid ${pid}, left by a process that was killed) with ${signal}`);
    try {
      process.kill(pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return 'stopped';
      throw error;
    }
    if (await waitForExit(pid, waitMs)) return 'stopped';
  }
  throw new Error(`The orphaned embedded PostgreSQL in ${dataDir} (pid ${pid}) did not stop; stop it by hand (kill ${pid}).`);
}
