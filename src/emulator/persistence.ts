/**
 * Optional on-disk state for the emulator (`stateFile`), kept in three files:
 * - the state file (state-format.ts), written whole, atomically (temp file in the same
 *   directory, fsync, rename) and privately (mode 0600: it holds webhook secrets), debounced
 *   after changes and on close;
 * - `<stateFile>.identifiers`, the accepted meter event identifiers, appended at each save;
 * - `<stateFile>.journal` (journal.ts), every API request that may have changed the state,
 *   appended before the request is answered and emptied once a save of the state file holds it.
 * At start the state file is loaded and the journal replayed on top of it, so what the emulator
 * acknowledged survives `kill -9`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { journalFileOf, readJournal, RequestJournal, type JournalRequest } from './journal';
import { applyState, FORMAT_VERSION, identifiersFileOf, parseState, snapshot, type PersistDeps } from './state-format';

/** Writes `text` to `file` atomically with mode 0600. */
export function writeFileAtomic(file: string, text: string): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o600);
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  try {
    // Makes the rename itself durable; not every platform can fsync a directory.
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    /* best effort */
  }
}

/**
 * A save waits at least this many times as long as the previous save took, so that saving takes
 * at most about 1/50 of the time however large the state grows (up to MAX_SAVE_DELAY_MS apart).
 */
const SAVE_SPACING_FACTOR = 50;
const MAX_SAVE_DELAY_MS = 5_000;

export interface PersisterOptions {
  debounceMs?: number;
  /** fdatasync each journal record before the answer: survives a power cut too, at a cost. */
  fsync?: boolean;
}

/**
 * Loads the state file and replays the journal at start; journals each state-changing request
 * before it is answered; saves the state file (debounced) after changes and on close, emptying
 * the journal each time.
 */
export class StatePersister {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private failing = false;
  /** How long the last save took, in ms. */
  private lastSaveMs = 0;
  private readonly identifiersFile: string;
  /** Bytes of the identifier log (of `identifiersGeneration`) already in the identifiers file. */
  private identifiersSaved = 0;
  private identifiersGeneration = -1;
  private readonly journal: RequestJournal;
  /** Sequence number of the last journal record written or replayed. */
  private seq = 0;
  private readonly debounceMs: number;

  constructor(
    private readonly file: string,
    private readonly deps: PersistDeps,
    private readonly logger: (line: string) => void,
    options: PersisterOptions = {},
  ) {
    this.identifiersFile = identifiersFileOf(file);
    this.journal = new RequestJournal(journalFileOf(file), options.fsync ?? false);
    this.debounceMs = options.debounceMs ?? 200;
  }

  /**
   * Restores the state file if it exists, then replays the journal on top of it and saves the
   * result (which empties the journal). A corrupt or unreadable state file leaves the state
   * empty with one warning, and the journal is then dropped: its requests need the state they
   * ran on. A journal whose last record was cut short by a crash loses that record only.
   */
  load(): void {
    const restored = this.loadStateFile();
    const journal = readJournal(this.journal.file);
    if (journal.problem) {
      this.logger(`warning: ${this.journal.file} ends with ${journal.problem}${journal.tornTail ? ' (a write cut short by a crash)' : ''}; it is ignored`);
    }
    const pending = journal.records.filter((r) => r.seq > this.seq);
    if (pending.length && (!restored || pending[0].seq !== this.seq + 1)) {
      this.logger(`warning: ${this.journal.file} does not follow ${this.file}; its ${pending.length} requests are dropped`);
    } else if (pending.length) {
      for (const r of pending) this.deps.api.replay(r);
      this.seq = pending[pending.length - 1].seq;
      this.logger(`replayed ${pending.length} requests from ${this.journal.file}`);
    }
    if (journal.records.length || journal.problem) this.save();
  }

  /** Reads the state file into the live state; false when a file exists but cannot be used. */
  private loadStateFile(): boolean {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
      this.logger(`warning: cannot read state file ${this.file} (${(e as Error).message}); starting with empty state`);
      return false;
    }
    try {
      const state = parseState(text);
      let identifiers: Buffer | undefined;
      if (state.version === FORMAT_VERSION && state.meters.identifierBytes > 0) {
        const data = fs.readFileSync(this.identifiersFile);
        if (data.length < state.meters.identifierBytes) throw new Error(`${this.identifiersFile} is shorter than recorded`);
        identifiers = data.subarray(0, state.meters.identifierBytes);
      }
      applyState(this.deps, state, identifiers);
      this.seq = state.journalSeq ?? 0;
      if (identifiers) {
        this.identifiersSaved = identifiers.length;
        this.identifiersGeneration = this.deps.meters.seen.generation;
      }
      const n = this.deps.store.tables.get('event')?.size ?? 0;
      this.logger(`state restored from ${this.file} (${this.deps.store.byId.size - n} objects, ${n} events)`);
      return true;
    } catch (e) {
      this.deps.store.reset();
      this.deps.store.clockOffsetSeconds = 0;
      this.deps.meters.clear();
      this.deps.api.resetIdempotency();
      for (const we of this.deps.delivery.endpoints()) this.deps.delivery.removeEndpoint(we.id);
      this.logger(`warning: state file ${this.file} is corrupt (${(e as Error).message}); starting with empty state, the file will be overwritten`);
      return false;
    }
  }

  /** Writes a request that ran to the journal (before it is answered); throws when it cannot. */
  record(request: JournalRequest): void {
    if (this.closed) return;
    this.journal.append({ seq: this.seq + 1, ...request });
    this.seq++;
    this.markDirty();
  }

  /**
   * Schedules a save; at most one per debounce interval, or further apart when saving the
   * state takes long (see SAVE_SPACING_FACTOR).
   */
  markDirty(): void {
    if (this.closed || this.timer) return;
    const delay = Math.min(MAX_SAVE_DELAY_MS, Math.max(this.debounceMs, this.lastSaveMs * SAVE_SPACING_FACTOR));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.save();
    }, delay);
    this.timer.unref();
  }

  /** Saves now; throws when the state cannot be saved (for changes that have no journal record). */
  saveNow(): void {
    if (this.closed) return;
    if (!this.save()) throw new Error(`cannot save state file ${this.file}`);
  }

  /** Writes the state file, then empties the journal it now holds; false when that failed. */
  save(): boolean {
    const started = performance.now();
    try {
      this.saveIdentifiers();
      writeFileAtomic(this.file, JSON.stringify(snapshot(this.deps, this.seq)));
      this.journal.truncate();
      if (this.failing) this.logger(`state file ${this.file} saved again`);
      this.failing = false;
      return true;
    } catch (e) {
      if (!this.failing) this.logger(`warning: cannot save state file ${this.file}: ${(e as Error).message}`);
      this.failing = true;
      return false;
    } finally {
      this.lastSaveMs = performance.now() - started;
    }
  }

  /**
   * Brings the identifiers file up to the log: appends what was accepted since the last save
   * (everything after a clear), cuts off anything beyond (left by a save that failed before the
   * state file recorded it) and syncs, before the state file says how many bytes are valid.
   */
  private saveIdentifiers(): void {
    const log = this.deps.meters.seen;
    if (log.generation !== this.identifiersGeneration || log.byteLength < this.identifiersSaved) {
      this.identifiersSaved = 0;
      this.identifiersGeneration = log.generation;
    }
    if (log.byteLength === 0 && !fs.existsSync(this.identifiersFile)) return;
    const fd = fs.openSync(this.identifiersFile, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    try {
      let position = this.identifiersSaved;
      for (const piece of log.bytes(this.identifiersSaved)) {
        for (let done = 0; done < piece.length; ) done += fs.writeSync(fd, piece, done, piece.length - done, position + done);
        position += piece.length;
      }
      fs.ftruncateSync(fd, log.byteLength);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.identifiersSaved = log.byteLength;
  }

  /** Cancels the pending save, writes the final state and closes the journal. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.save();
    this.journal.close();
  }
}
