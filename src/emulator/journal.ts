/**
 * The emulator's request journal (`<stateFile>.journal`): every API request that may change the
 * state, written as one JSON line before its answer is sent, with the wall-clock time it ran at
 * and the seed of its random bytes. Replayed on top of the state file at start, those requests
 * rebuild exactly what was acknowledged (same ids, same times, same idempotent answers), so
 * nothing answered is lost when the process is killed between two saves of the state file.
 *
 * Replay is exact only if a request's effects depend on nothing but the state, the request, its
 * time and its seed: handlers read the time through the store (`now()`, `nowMs()`, `wallMs()`)
 * and draw ids and secrets through ids.ts, never `Date.now()` or `Math.random()` directly.
 *
 * Each line carries a sequence number; the state file records the last one it holds, so a crash
 * between writing the state file and emptying the journal replays nothing twice.
 *
 * Lines are written with one write(2) each and no fsync by default: a killed process loses
 * nothing (the kernel has the bytes), a power cut may lose the last moments. With `fsync` each
 * line is flushed to the disk before the answer (much slower).
 */
import fs from 'node:fs';

export interface JournalRequest {
  /** Wall-clock ms at which the request ran (its `created` times derive from it). */
  at: number;
  /** Hex seed of the request's random bytes (ids, secrets). */
  seed: string;
  method: string;
  path: string;
  query: string;
  /** The headers the emulator reads: authorization, idempotency-key, stripe-version, content-type. */
  headers: Record<string, string>;
  /** The body's bytes as latin1 (one character a byte, exact). */
  body: string;
}

export interface JournalRecord extends JournalRequest {
  seq: number;
}

export interface JournalContents {
  records: JournalRecord[];
  /** Bytes of complete, valid lines from the start. */
  validBytes: number;
  /** What follows the valid lines, when anything does: a line cut short, or damage. */
  problem?: string;
  /** True when only the last line is bad (what a crash in the middle of a write leaves). */
  tornTail: boolean;
}

export function journalFileOf(stateFile: string): string {
  return `${stateFile}.journal`;
}

function isRecord(v: unknown): v is JournalRecord {
  if (v === null || typeof v !== 'object') return false;
  const r = v as Record<string, unknown>;
  return (
    Number.isSafeInteger(r.seq) &&
    typeof r.at === 'number' &&
    Number.isFinite(r.at) &&
    typeof r.seed === 'string' &&
    /^[0-9a-f]{32,}$/.test(r.seed) &&
    typeof r.method === 'string' &&
    typeof r.path === 'string' &&
    typeof r.query === 'string' &&
    typeof r.body === 'string' &&
    r.headers !== null &&
    typeof r.headers === 'object' &&
    Object.values(r.headers).every((h) => typeof h === 'string')
  );
}

/** Reads a journal's complete lines; stops at the first bad one. A missing file is an empty journal. */
export function readJournal(file: string): JournalContents {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], validBytes: 0, tornTail: false };
    throw e;
  }
  const records: JournalRecord[] = [];
  let pos = 0;
  while (pos < data.length) {
    const nl = data.indexOf(0x0a, pos);
    if (nl < 0) return { records, validBytes: pos, problem: `a record cut short at byte ${pos}`, tornTail: true };
    let value: unknown;
    try {
      value = JSON.parse(data.toString('utf8', pos, nl));
    } catch {
      value = undefined;
    }
    if (!isRecord(value) || (records.length > 0 && value.seq !== records[records.length - 1].seq + 1)) {
      return { records, validBytes: pos, problem: `an unreadable record at byte ${pos}`, tornTail: nl + 1 >= data.length };
    }
    records.push(value);
    pos = nl + 1;
  }
  return { records, validBytes: pos, tornTail: false };
}

/** The journal file, open for appending (mode 0600). */
export class RequestJournal {
  private fd: number | undefined;

  constructor(
    readonly file: string,
    private readonly fsync = false,
  ) {}

  /** Appends one record with a single write; throws when it cannot be written. */
  append(record: JournalRecord): void {
    const bytes = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
    const fd = this.open();
    for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    if (this.fsync) fs.fdatasyncSync(fd);
  }

  /** Empties the journal (once the state file holds everything in it). */
  truncate(): void {
    if (this.fd === undefined && !fs.existsSync(this.file)) return;
    fs.ftruncateSync(this.open(), 0);
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): number {
    if (this.fd === undefined) {
      this.fd = fs.openSync(this.file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
      fs.fchmodSync(this.fd, 0o600);
    }
    return this.fd;
  }
}
