import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeProcess, recoverOrphanedPostgres } from '../../../src/db/orphaned-postgres';

/*
 * Stand-ins for PostgreSQL: Node processes whose argv[0] is "postgres" and whose arguments name
 * a data directory, as `postgres -D <dir>` does. The real server is in
 * test/integration/fault-matrix-kill-local.test.ts.
 */

let dir: string;
let dataDir: string;
const started: number[] = [];
const children: ChildProcess[] = [];

const IDLE = 'process.on("SIGINT", () => process.exit(0)); setInterval(() => {}, 1000)';

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'orphaned-pg-'));
  dataDir = path.join(dir, 'postgres');
  mkdirSync(dataDir);
});

afterEach(async () => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function lock(pid: number): void {
  writeFileSync(path.join(dataDir, 'postmaster.pid'), `${pid}\n${dataDir}\n1700000000\n5432\n\n127.0.0.1\n  1234   5678\nready   \n`);
}

/** A fake server that is this test process's child (as in a live instance). */
function child(args: string[], argv0 = 'postgres'): ChildProcess {
  const c = spawn(process.execPath, ['-e', IDLE, '--', ...args], { argv0, stdio: 'ignore' });
  children.push(c);
  return c;
}

/** A fake server whose parent has exited (as after a kill -9 of the app); returns its pid. */
function orphan(args: string[]): number {
  const out = execFileSync('/bin/bash', ['-c', `exec -a postgres "$0" -e '${IDLE}' -- "$@" >/dev/null 2>&1 & echo $!`, process.execPath, ...args], { encoding: 'utf8' });
  const pid = Number(out.trim());
  started.push(pid);
  return pid;
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100 && !(await check()); i++) await new Promise((r) => setTimeout(r, 50));
}

describe(recoverOrphanedPostgres.name, () => {
  it('does nothing without a lock file', async () => {
    expect(await recoverOrphanedPostgres(dataDir)).toBe('none');
  });

  it('leaves a lock file whose process is gone to PostgreSQL', async () => {
    const c = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => c.once('exit', r));
    lock(c.pid!);
    expect(await recoverOrphanedPostgres(dataDir)).toBe('none');
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(true);
  });

  it('stops an orphaned server of this data directory and waits until it is gone', async () => {
    const pid = orphan(['-D', dataDir, '-p', '5432']);
    await until(async () => (await describeProcess(pid)).args[0] === 'postgres');
    lock(pid);
    const notices: string[] = [];
    expect(await recoverOrphanedPostgres(dataDir, (l) => notices.push(l))).toBe('stopped');
    expect((await describeProcess(pid)).state).not.toBe('running');
    expect(notices.join('\n')).toMatch(new RegExp(`orphaned embedded PostgreSQL .*pid ${pid}`));
  });

  it('never stops a server whose parent is a live Node process (another instance on the same DATA_DIR)', async () => {
    const c = child(['-D', dataDir]);
    await until(async () => (await describeProcess(c.pid!)).args[0] === 'postgres');
    lock(c.pid!);
    await expect(recoverOrphanedPostgres(dataDir)).rejects.toThrow(/belongs to another running process/);
    expect((await describeProcess(c.pid!)).state).toBe('running');
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(true);
  });

  it('removes the lock but leaves the process alone when the pid now belongs to another program or data directory', async () => {
    const other = orphan(['-D', path.join(dir, 'another-cluster')]);
    const unrelated = child(['--serve'], 'some-daemon');
    for (const pid of [other, unrelated.pid!]) {
      await until(async () => (await describeProcess(pid)).args.length > 0);
      lock(pid);
      expect(await recoverOrphanedPostgres(dataDir)).toBe('stale-lock-removed');
      expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
      expect((await describeProcess(pid)).state).toBe('running');
    }
  });
});
