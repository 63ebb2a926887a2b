import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';

/**
 * The embedded cluster's port: one chosen for it can be taken by another process before
 * PostgreSQL binds it (two clusters starting side by side); it then starts on another. The
 * cluster runs in a child process (test/helpers/embedded-pg-child.ts).
 */

const ROOT = path.resolve(__dirname, '../..');
let dir: string;
let taken: Server;
let takenPort: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-pg-port-'));
  // As root, the cluster runs as "postgres", which must be able to enter the directory.
  await chmod(dir, 0o755);
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  takenPort = (taken.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((resolve) => taken.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** Starts the child; resolves with its first line (READY ...) and a stop function, or rejects with its stderr. */
function startChild(...args: string[]): Promise<{ line: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/run.cjs'), 'test/helpers/embedded-pg-child.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const line = /READY .*/.exec(out)?.[0];
      if (line) resolve({ line, stop });
    });
    child.stderr!.on('data', (d) => (err += d));
    child.once('exit', (code) => reject(new Error(`exited (${code}): ${err}`)));
  });
}

it('starts on another port when the one it chose was taken meanwhile', async () => {
  const { line, stop } = await startChild(path.join(dir, 'a'), '--first-choice', String(takenPort));
  try {
    const [, url, offered] = /READY (\S+) offered=(\S+)/.exec(line)!;
    const ports = offered.split(',').map(Number);
    expect(ports).toHaveLength(2);
    expect(ports[0]).toBe(takenPort);
    expect(Number(new URL(url).port)).toBe(ports[1]);
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.end();
    }
  } finally {
    await stop();
  }
}, 120_000);

it('refuses a taken port given by the caller, naming it', async () => {
  await expect(startChild(path.join(dir, 'b'), String(takenPort))).rejects.toThrow(new RegExp(`did not start on port ${takenPort}[\\s\\S]*Address already in use`));
}, 120_000);
