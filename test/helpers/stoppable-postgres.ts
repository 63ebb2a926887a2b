import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** An embedded PostgreSQL in a child process that a test can stop and start again on the same port. */
export class StoppablePostgres {
  private child?: ChildProcess;
  url = '';
  port = 0;

  private constructor(private readonly dir: string) {}

  static async create(): Promise<StoppablePostgres> {
    const pg = new StoppablePostgres(await mkdtemp(path.join(os.tmpdir(), 'tollgate-pg-')));
    await pg.start();
    return pg;
  }

  async start(): Promise<void> {
    const args = [path.join(ROOT, 'scripts/run.cjs'), 'test/helpers/embedded-pg-child.ts', path.join(this.dir, 'data')];
    if (this.port) args.push(String(this.port));
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.url = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /READY (\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.stderr!.on('data', (d) => (err += d));
      child.once('exit', (code) => reject(new Error(`embedded postgres exited (${code}): ${err}`)));
    });
    this.port = Number(new URL(this.url).port);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
    this.child = undefined;
  }

  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
