import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Client } from 'pg';
import { projectRoot } from '../../src/common/paths';
import { ensureDatabase } from '../../src/db/database';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres';
import type { RunningEmulator } from '../../src/emulator';

/** Cleanups of a bench run, run in reverse order at its end. */
export type Cleanups = (() => Promise<unknown>)[];

/**
 * A scratch database for a bench run: on BENCH_DATABASE_URL's server when set (created here and
 * dropped at the end), else on an embedded PostgreSQL in `dir`.
 */
export async function scratchDatabase(dir: string, cleanups: Cleanups): Promise<string> {
  let serverUrl = process.env.BENCH_DATABASE_URL;
  if (!serverUrl) {
    const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), persistent: false });
    cleanups.push(() => pg.stop());
    serverUrl = pg.url;
  }
  const name = `tollgate_bench_${randomBytes(4).toString('hex')}`;
  const url = await ensureDatabase(serverUrl, name);
  cleanups.push(async () => {
    const c = new Client({ connectionString: serverUrl });
    await c.connect();
    await c.query(`drop database if exists ${c.escapeIdentifier(name)} with (force)`).finally(() => c.end());
  });
  return url;
}

/**
 * A Tollgate server process in production mode on `databaseUrl`, with the emulator as Stripe,
 * its forwarder and rate limits off (the load would otherwise be RATE_LIMITED answers).
 */
export function startApp(
  dir: string,
  databaseUrl: string,
  emulator: RunningEmulator,
  jwtSecret: string,
  cleanups: Cleanups,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; url: string }> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|STRIPE_|AUTH_|USAGE_|RATE_LIMIT_|PORT|HOST)/.test(k)));
  const root = projectRoot();
  const child = spawn(process.execPath, [path.join(root, 'scripts/run.cjs'), path.join(root, 'src/main.ts')], {
    cwd: dir,
    env: {
      ...inherited,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'warn',
      DATABASE_URL: databaseUrl,
      STRIPE_SECRET_KEY: 'sk_test_bench',
      STRIPE_WEBHOOK_SECRET: 'whsec_bench',
      STRIPE_API_BASE: emulator.url,
      AUTH_JWT_SECRET: jwtSecret,
      USAGE_FORWARDER_ENABLED: 'false',
      RATE_LIMIT_USAGE_PER_MINUTE: '0',
      RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      const m = /GraphQL\s+(http:\/\/\S+)\/graphql[\s\S]*Press Ctrl-C/.exec(out);
      if (m) {
        child.stdout!.off('data', onData);
        resolve({ child, url: m[1] });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d) => (out += d));
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}:\n${out}`)));
  });
}
