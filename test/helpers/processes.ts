import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

/** The repository's root. */
export const ROOT = path.resolve(__dirname, '../..');

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export interface Started {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  output: () => string;
}

/**
 * Runs a TypeScript entry point as the npm scripts do (`node scripts/run.cjs <entry> ...args`)
 * and waits until its output matches `ready`. Resolves with the process, or with its exit code
 * when it ends first; rejects after `timeoutMs`. A process in `tracked` is removed once it exits,
 * so a test's `afterAll` can stop whatever is left.
 */
export function startTs(
  entry: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; ready: RegExp; timeoutMs?: number; tracked?: Set<ChildProcess> },
): Promise<Started | { exitCode: number | null; output: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/run.cjs'), path.join(ROOT, entry), ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  options.tracked?.add(child);
  child.once('exit', () => options.tracked?.delete(child));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${entry} did not get ready:\n${out}`)), options.timeoutMs ?? 60_000);
    child.stdout!.on('data', () => {
      if (options.ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, output: () => out });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, output: out });
    });
  });
}

/** The process of a start that must have got ready; throws with its output when it exited instead. */
export function ready(s: Started | { exitCode: number | null; output: string }): Started {
  if (!('child' in s)) throw new Error(`exited with ${s.exitCode} before it was ready:\n${s.output}`);
  return s;
}

/** Sends `signal` and resolves with the exit code once the process has exited (at once if it already has). */
export function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}
