import { fork, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

export interface ServerChild {
  name: string;
  pid: number;
  info: Record<string, any>;
  /** Sends a control command and resolves with the child's answer. */
  request<T = unknown>(cmd: string, args?: unknown): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Forks a server entry with an IPC channel, its output appended to `logFile`, and waits for its
 * `ready` message: `bench/servers/x.ts` from `buildDir` when given (the compiled output), else
 * through `scripts/run.cjs` (TypeScript loaded on the fly). `nodeArgs` go to that node process.
 */
export function startChild(
  name: string,
  entry: string,
  options: { env: NodeJS.ProcessEnv; logFile: string; buildDir?: string; nodeArgs?: string[]; timeoutMs?: number },
): Promise<ServerChild> {
  const out = openSync(options.logFile, 'a');
  const [script, scriptArgs] = options.buildDir
    ? [path.join(options.buildDir, entry.replace(/\.ts$/, '.js')), []]
    : [path.join(ROOT, 'scripts/run.cjs'), [entry]];
  const child: ChildProcess = fork(script, scriptArgs, {
    cwd: ROOT,
    env: options.env,
    execArgv: options.nodeArgs ?? [],
    stdio: ['ignore', out, out, 'ipc'],
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${options.timeoutMs ?? 120_000} ms; see ${options.logFile}`));
    }, options.timeoutMs ?? 120_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const error = new Error(`${name} exited with code ${code}; see ${options.logFile}:\n${tail(options.logFile)}`);
      for (const p of pending.values()) p.reject(error);
      pending.clear();
      reject(error);
    });
    child.on('message', (message: any) => {
      if (message?.type === 'ready') {
        clearTimeout(timer);
        const { type: _type, ...info } = message;
        resolve({
          name,
          pid: child.pid!,
          info,
          request: (cmd, args) =>
            new Promise((res, rej) => {
              const id = nextId++;
              pending.set(id, { resolve: res, reject: rej });
              child.send({ id, cmd, args });
            }),
          stop: () =>
            new Promise<void>((res) => {
              if (child.exitCode !== null || child.signalCode !== null) return res();
              const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
              child.once('exit', () => {
                clearTimeout(kill);
                res();
              });
              child.send({ id: 0, cmd: 'stop' });
            }),
        });
      } else if (message?.type === 'reply') {
        const p = pending.get(message.id);
        if (!p) return;
        pending.delete(message.id);
        if (message.ok) p.resolve(message.result);
        else p.reject(new Error(`${name}: ${message.error}`));
      }
    });
  });
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

/**
 * Peak resident memory of a process while `fn` runs: the kernel's high-water mark (VmHWM), reset
 * first through /proc/PID/clear_refs so each scenario gets its own peak, plus 100 ms samples of
 * VmRSS in case the reset is not permitted.
 */
export async function withPeakRss<T>(pid: number, fn: () => Promise<T>): Promise<{ value: T; peakRssBytes: number; cpuMs: number }> {
  const cpuBefore = cpuTimeMs(pid);
  let hwmReset = false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    hwmReset = true;
  } catch {
    // Not permitted here: VmHWM is then the lifetime peak, so only the samples count.
  }
  let peak = readStatus(pid, 'VmRSS');
  const timer = setInterval(() => {
    peak = Math.max(peak, readStatus(pid, 'VmRSS'));
  }, 100);
  try {
    const value = await fn();
    peak = Math.max(peak, readStatus(pid, 'VmRSS'), hwmReset ? readStatus(pid, 'VmHWM') : 0);
    return { value, peakRssBytes: peak, cpuMs: cpuTimeMs(pid) - cpuBefore };
  } finally {
    clearInterval(timer);
  }
}

/**
 * CPU time (user + system) the process has used, in ms. Per request, it is the figure that other
 * load on the machine disturbs least: contention stretches latency and cuts throughput, but
 * hardly changes how much CPU one request takes.
 */
export function cpuTimeMs(pid: number): number {
  try {
    // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;

function readStatus(pid: number, field: string): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
