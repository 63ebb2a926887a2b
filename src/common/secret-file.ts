import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

async function readSecret(file: string): Promise<string | null> {
  try {
    const value = (await readFile(file, 'utf8')).trim();
    return value.length > 0 ? value : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * A secret kept in `file` (mode 0600): read when the file exists, otherwise `generate()`d and
 * written once. The value is written in full to a private temp file, then linked into place:
 * `link` fails with EEXIST when another process got there first, so concurrent starts all end
 * up with the winner's secret and nobody reads a half-written file.
 */
export async function ensureSecretFile(file: string, generate: () => string): Promise<string> {
  const existing = await readSecret(file);
  if (existing) return existing;
  await mkdir(path.dirname(file), { recursive: true });
  const candidate = generate();
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, `${candidate}\n`, { mode: 0o600, flag: 'wx' });
  try {
    // writeFile's mode is filtered by the umask; the secret must be owner-only regardless.
    await chmod(temp, 0o600);
    await link(temp, file);
    return candidate;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const winner = await readSecret(file);
    if (!winner) throw new Error(`${file} exists but is empty; delete it to create a new secret`, { cause: error });
    return winner;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}
