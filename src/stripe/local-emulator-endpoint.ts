import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The key the app's gateway uses with the in-process emulator in local mode. */
export const LOCAL_EMULATOR_SECRET_KEY = 'sk_test_tollgate_local_emulator';

/** Where a running local-mode server says how to reach its emulator (it takes a free port at every start). */
export function localEmulatorEndpointFile(dataDir: string): string {
  return path.join(dataDir, 'stripe-emulator.endpoint.json');
}

export interface LocalEmulatorEndpoint {
  apiBase: string;
  secretKey: string;
  /** The server process, for a clearer message once it is gone. */
  pid: number;
}

/** Written by `npm start` in local mode so commands (`npm run clock`) reach the same emulator. */
export async function writeLocalEmulatorEndpoint(dataDir: string, apiBase: string): Promise<() => Promise<void>> {
  const file = localEmulatorEndpointFile(dataDir);
  const endpoint: LocalEmulatorEndpoint = { apiBase, secretKey: LOCAL_EMULATOR_SECRET_KEY, pid: process.pid };
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, `${JSON.stringify(endpoint)}\n`, { mode: 0o600 });
  return () => rm(file, { force: true });
}

/** The running local server's emulator, or null when no local server has announced one. */
export async function readLocalEmulatorEndpoint(dataDir: string): Promise<LocalEmulatorEndpoint | null> {
  try {
    const parsed = JSON.parse(await readFile(localEmulatorEndpointFile(dataDir), 'utf8')) as Partial<LocalEmulatorEndpoint>;
    if (typeof parsed.apiBase !== 'string' || typeof parsed.secretKey !== 'string') return null;
    return { apiBase: parsed.apiBase, secretKey: parsed.secretKey, pid: typeof parsed.pid === 'number' ? parsed.pid : 0 };
  } catch {
    return null;
  }
}
