import { randomBytes } from 'node:crypto';
import { constants, unlinkSync } from 'node:fs';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { parseEnv } from 'node:util';

/**
 * Editing of `.env`-style files that keeps everything the edit was not about: comments, blank
 * lines, order, quoting and `export` prefixes of untouched lines. Only the value of a key that
 * is set is replaced (in place, at its last assignment, which is the one that wins); new keys are
 * appended at the end.
 */

const ASSIGNMENT = /^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_.-]*)(\s*=\s*)(.*)$/;

/** The values the file sets, as the app reads them. */
export function parseEnvText(text: string): Record<string, string> {
  return parseEnv(text) as Record<string, string>;
}

/** A value spelled so that the env parser reads back exactly `value`. */
export function formatEnvValue(value: string): string {
  if (/[\r\n]/.test(value)) throw new TypeError('An env file value cannot span lines');
  if (/^[A-Za-z0-9_\-.:/@+=,%~?&]*$/.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"') && !value.includes('\\')) return `"${value}"`;
  if (!value.includes('`')) return `\`${value}\``;
  throw new TypeError('This value cannot be written to an env file (it mixes all three quote characters)');
}

export interface EnvEdit {
  text: string;
  updated: string[];
  added: string[];
  unchanged: string[];
}

/** Sets `updates` in the text of an env file; keys whose value is already the same are left as they are. */
export function updateEnvText(text: string, updates: Record<string, string>): EnvEdit {
  const current = parseEnvText(text);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = text === '' ? [] : text.split(/\r?\n/);
  const trailingNewline = text === '' || /\r?\n$/.test(text);
  if (trailingNewline && lines.length && lines[lines.length - 1] === '') lines.pop();
  const result: EnvEdit = { text, updated: [], added: [], unchanged: [] };
  const appended: string[] = [];

  for (const [key, value] of Object.entries(updates)) {
    if (current[key] === value) {
      result.unchanged.push(key);
      continue;
    }
    let index = -1;
    lines.forEach((line, i) => {
      const m = ASSIGNMENT.exec(line);
      if (m && m[2] === key) index = i;
    });
    if (index >= 0) {
      const m = ASSIGNMENT.exec(lines[index])!;
      // Keep a trailing comment on the line (`KEY=value # why`), but only when the old value
      // was quoted or bare-with-space-hash, where the parser agrees it is a comment.
      const comment = /^(?:'[^']*'|"[^"]*"|`[^`]*`|[^'"`#\s][^#]*?|)(\s+#.*)$/.exec(m[4])?.[1] ?? '';
      lines[index] = `${m[1]}${key}${m[3]}${formatEnvValue(value)}${comment}`;
      result.updated.push(key);
    } else {
      appended.push(`${key}=${formatEnvValue(value)}`);
      result.added.push(key);
    }
  }
  if (!result.updated.length && !result.added.length) return result;
  const out = [...lines, ...appended];
  result.text = out.join(eol) + (out.length ? eol : '');
  return result;
}

export async function readEnvFile(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Replaces `file` with `text` atomically: a temporary file next to it (mode 0600, it holds
 * secrets) is written and synced, then renamed over the target, so a reader or an interrupted
 * run sees either the old file or the new one, never a half-written one.
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  pendingTemps.add(temp);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.chmod(0o600);
    await handle.sync();
    await handle.close();
    await rename(temp, file);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  } finally {
    pendingTemps.delete(temp);
  }
}

const pendingTemps = new Set<string>();

/** Removes temporary files of writes still in progress (for an exit on a signal: the target stays as it was). */
export function removePendingTempFiles(): void {
  for (const temp of pendingTemps) {
    try {
      unlinkSync(temp);
    } catch {
      // already renamed or never created
    }
  }
  pendingTemps.clear();
}
