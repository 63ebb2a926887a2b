import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/*
 * The journal replays requests after a crash with their recorded time and random seed; that
 * reproduces what was answered only if request handling takes time and randomness from those
 * (the store's clock, ids.ts). This keeps other sources out of the emulator's request code.
 */

const EMULATOR = path.resolve(__dirname, '../../../src/emulator');
/** Files that run outside a request (the process, persistence, webhook delivery) or are the sources themselves. */
const OUTSIDE_REQUESTS = new Set(['ids.ts', 'store.ts', 'server.ts', 'index.ts', 'persistence.ts', 'journal.ts', 'webhooks.ts', 'cli.ts', 'faults.ts', 'state-format.ts']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'spec' ? [] : sources(p);
    return e.name.endsWith('.ts') && !OUTSIDE_REQUESTS.has(path.relative(EMULATOR, p)) ? [p] : [];
  });
}

describe('emulator request handling', () => {
  it('reads time and randomness only through the store and ids.ts, so a replay from the journal is exact', () => {
    const offenders: string[] = [];
    for (const file of sources(EMULATOR)) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/\bDate\.now\(|\bMath\.random\(|\brandomBytes\(|\brandomUUID\(|new Date\(\)/.test(line)) offenders.push(`${path.relative(EMULATOR, file)}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });
});
