/**
 * Optional on-disk state for the emulator (`stateFile`): objects, events, idempotency records,
 * meter event logs and the clock offset, saved as JSON. Writes are debounced, atomic (temp file
 * in the same directory, fsync, rename) and private (mode 0600: the file holds webhook secrets).
 *
 * Objects that reference other stored objects (a subscription's `_items`) keep that identity:
 * such references are written as `{ "__emulator_ref__": [type, id] }` and relinked on load.
 * Webhook endpoints marked `_config` (from options or `addWebhookEndpoint`) are configuration,
 * not state: they are left out and recreated by the caller on every start.
 *
 * Accepted meter event identifiers, most of a busy emulator's state, go to a second file next to
 * it (`<stateFile>.identifiers`, the identifier log's own bytes): each save appends what was
 * accepted since the last one, then the state file records how many of those bytes are valid.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Obj, Store } from './store';
import type { ApiServer, StoredResponse } from './server';
import type { MeterEventLog, UsageRow } from './resources/meter-event-log';
import type { WebhookDelivery } from './webhooks';

/**
 * 3: meter usage as per-second buckets, identifiers in the identifiers file. Still read: 2 (the
 * identifiers as an acceptance log in `meterAcceptances`) and 1 (one object per meter event,
 * identifier maps).
 */
const FORMAT_VERSION = 3;
const REF_KEY = '__emulator_ref__';

/** Version 1's meter events, converted on load. */
interface MeterStateV1 {
  seen: [string, number][];
  received: [string, number][];
  accepted: [string, number][];
  byName: [string, { customer: string; value: number; timestamp: number }[]][];
  sessions: [string, { id: string; expiresAtMs: number }][];
  totalAccepted: number;
  totalReceived: number;
  duplicates: number;
}

interface MeterState {
  /** identifier → receipts beyond the first. */
  repeats: [string, number][];
  /** identifier → acceptances beyond the first. */
  reaccepted: [string, number][];
  usage: UsageRow[];
  sessions: [string, { id: string; expiresAtMs: number }][];
  totalAccepted: number;
  totalReceived: number;
  duplicates: number;
  /** Valid bytes at the start of the identifiers file. */
  identifierBytes: number;
}

interface StateFile {
  version: number;
  savedAt: string;
  clockOffsetSeconds: number;
  invoiceSequence: number;
  tables: Record<string, Obj[]>;
  /** id → table of the object `byId` resolves it to (ids can repeat across tables, e.g. deleted customers). */
  byId: [string, string][];
  idempotency: [string, StoredResponse][];
  meters: MeterState;
}

/** A parsed state file, meter data in the current shape. */
interface ParsedState extends StateFile {
  /** Versions 1 and 2: accepted identifiers with the time they were accepted, oldest first. */
  acceptances?: [string, number][];
}

/** The file that holds the accepted meter event identifiers of a state file. */
export function identifiersFileOf(stateFile: string): string {
  return `${stateFile}.identifiers`;
}

export interface PersistDeps {
  store: Store;
  api: ApiServer;
  meters: MeterEventLog;
  delivery: WebhookDelivery;
}

function isConfigEndpoint(type: string, o: Obj): boolean {
  return type === 'webhook_endpoint' && o._config === true;
}

/** The whole state as a JSON-ready value; the identifiers themselves go to their own file. */
export function snapshot(d: PersistDeps): StateFile {
  const { store, meters } = d;
  const location = new Map<Obj, [string, string]>();
  for (const [type, table] of store.tables) {
    for (const [id, o] of table) if (!isConfigEndpoint(type, o)) location.set(o, [type, id]);
  }
  const encode = (value: unknown, root: boolean, stack: Set<unknown>): unknown => {
    if (value === null || typeof value !== 'object') return value;
    if (!root) {
      const at = location.get(value as Obj);
      if (at) return { [REF_KEY]: at };
    }
    if (stack.has(value)) throw new Error('cyclic object in emulator state');
    stack.add(value);
    let out: unknown;
    if (Array.isArray(value)) out = value.map((v) => encode(v, false, stack));
    else {
      const o: Obj = {};
      for (const [k, v] of Object.entries(value as Obj)) if (v !== undefined) o[k] = encode(v, false, stack);
      out = o;
    }
    stack.delete(value);
    return out;
  };
  const tables: Record<string, Obj[]> = {};
  for (const [type, table] of store.tables) {
    const rows: Obj[] = [];
    for (const o of table.values()) if (!isConfigEndpoint(type, o)) rows.push(encode(o, true, new Set()) as Obj);
    if (rows.length) tables[type] = rows;
  }
  const byId: [string, string][] = [];
  for (const [id, o] of store.byId) {
    const at = location.get(o);
    if (at) byId.push([id, at[0]]);
  }
  return {
    version: FORMAT_VERSION,
    savedAt: new Date().toISOString(),
    clockOffsetSeconds: store.clockOffsetSeconds,
    invoiceSequence: store.invoiceSequence,
    tables,
    byId,
    idempotency: d.api.idempotencyEntries(),
    meters: {
      repeats: [...meters.repeats],
      reaccepted: [...meters.reaccepted],
      usage: meters.usageRows(),
      sessions: [...meters.sessions],
      totalAccepted: meters.totalAccepted,
      totalReceived: meters.totalReceived,
      duplicates: meters.duplicates,
      identifierBytes: meters.seen.byteLength,
    },
  };
}

function fail(what: string): never {
  throw new Error(`invalid state file: ${what}`);
}

function isRecord(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function pairs<V>(v: unknown, what: string, check: (x: unknown) => boolean): [string, V][] {
  if (!Array.isArray(v)) fail(what);
  for (const p of v) if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'string' || !check(p[1])) fail(what);
  return v as [string, V][];
}

const isNum = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

/** Parses and checks a state file's text; throws on anything malformed, without touching live state. */
export function parseState(text: string): ParsedState {
  const s: unknown = JSON.parse(text);
  if (!isRecord(s)) fail('not an object');
  if (s.version !== FORMAT_VERSION && s.version !== 2 && s.version !== 1) fail(`unsupported version ${String(s.version)}`);
  if (!isNum(s.clockOffsetSeconds) || !isNum(s.invoiceSequence)) fail('clock');
  if (!isRecord(s.tables)) fail('tables');
  const index = new Map<string, Map<string, Obj>>();
  for (const [type, rows] of Object.entries(s.tables)) {
    if (!Array.isArray(rows)) fail(`table ${type}`);
    const t = new Map<string, Obj>();
    for (const o of rows) {
      if (!isRecord(o) || typeof o.id !== 'string') fail(`object in ${type}`);
      t.set(o.id, o);
    }
    index.set(type, t);
  }
  // Relink references to stored objects.
  const relink = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) value[i] = relink(value[i]);
      return value;
    }
    const o = value as Obj;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === REF_KEY) {
      const at = o[REF_KEY];
      const target = Array.isArray(at) ? index.get(String(at[0]))?.get(String(at[1])) : undefined;
      if (!target) fail(`dangling reference ${JSON.stringify(at)}`);
      return target;
    }
    for (const k of keys) o[k] = relink(o[k]);
    return o;
  };
  for (const t of index.values()) for (const o of t.values()) for (const k of Object.keys(o)) o[k] = relink(o[k]);
  pairs<string>(s.byId, 'byId', (x) => typeof x === 'string');
  pairs<StoredResponse>(s.idempotency, 'idempotency', (x) =>
    isRecord(x) && typeof x.fingerprint === 'string' && isRecord(x.response) && isNum(x.response.status) && isRecord(x.response.headers) && typeof x.response.body === 'string',
  );
  const m = s.meters;
  if (!isRecord(m) || !isNum(m.totalAccepted) || !isNum(m.totalReceived) || !isNum(m.duplicates)) fail('meters');
  pairs(m.sessions, 'meters.sessions', (x) => isRecord(x) && typeof x.id === 'string' && isNum(x.expiresAtMs));
  if (s.version === 1) return { ...(s as unknown as StateFile), ...fromV1(m) };
  pairs(m.repeats, 'meters.repeats', isNum);
  pairs(m.reaccepted, 'meters.reaccepted', isNum);
  if (!Array.isArray(m.usage)) fail('meters.usage');
  for (const r of m.usage) {
    if (!Array.isArray(r) || r.length !== 6 || typeof r[0] !== 'string' || typeof r[1] !== 'string' || !r.slice(2).every(isNum)) fail('meters.usage');
  }
  if (s.version === FORMAT_VERSION) {
    if (!isNum(m.identifierBytes) || m.identifierBytes < 0) fail('meters.identifierBytes');
    return s as unknown as StateFile;
  }
  if (!Array.isArray(s.meterAcceptances)) fail('meterAcceptances');
  const acceptances: [string, number][] = [];
  for (const chunk of s.meterAcceptances) {
    if (!Array.isArray(chunk) || chunk.length % 2 !== 0) fail('meterAcceptances');
    for (let i = 0; i < chunk.length; i += 2) {
      if (typeof chunk[i] !== 'string' || !isNum(chunk[i + 1])) fail('meterAcceptances');
      acceptances.push([chunk[i], chunk[i + 1]]);
    }
  }
  delete s.meterAcceptances;
  return { ...(s as unknown as StateFile), meters: { ...(m as MeterState), identifierBytes: 0 }, acceptances };
}

/** Version 1's meter data (identifier maps, one object per event) in the current shape. */
function fromV1(m: Obj): { meters: MeterState; acceptances: [string, number][] } {
  pairs(m.seen, 'meters.seen', isNum);
  pairs(m.received, 'meters.received', isNum);
  pairs(m.accepted, 'meters.accepted', isNum);
  pairs(m.byName, 'meters.byName', (x) => Array.isArray(x) && x.every((e) => isRecord(e) && isNum(e.value) && isNum(e.timestamp)));
  const v1 = m as MeterStateV1;
  const beyondFirst = (entries: [string, number][]) => entries.filter(([, n]) => n > 1).map(([id, n]): [string, number] => [id, n - 1]);
  const usage = new Map<string, UsageRow>();
  for (const [name, events] of v1.byName) {
    for (const e of events) {
      const key = JSON.stringify([name, e.customer, e.timestamp]);
      const row = usage.get(key);
      if (row) {
        row[3] += e.value;
        row[4]++;
        row[5] = e.value;
      } else usage.set(key, [name, e.customer ?? '', e.timestamp, e.value, 1, e.value]);
    }
  }
  return {
    acceptances: v1.seen,
    meters: {
      repeats: beyondFirst(v1.received),
      reaccepted: beyondFirst(v1.accepted),
      usage: [...usage.values()],
      sessions: v1.sessions,
      totalAccepted: v1.totalAccepted,
      totalReceived: v1.totalReceived,
      duplicates: v1.duplicates,
      identifierBytes: 0,
    },
  };
}

/**
 * Replaces the live state with a parsed state file and the valid bytes of its identifiers file
 * (version 3; earlier versions carry their identifiers in `acceptances`).
 */
export function applyState(d: PersistDeps, s: ParsedState, identifiers?: Buffer): void {
  const { store, meters, delivery } = d;
  store.reset();
  meters.clear();
  d.api.resetIdempotency();
  store.clockOffsetSeconds = s.clockOffsetSeconds;
  store.invoiceSequence = s.invoiceSequence;
  for (const [type, rows] of Object.entries(s.tables)) {
    const t = store.table(type);
    for (const o of rows) t.set(o.id, o);
  }
  for (const [id, type] of s.byId) {
    const o = store.tables.get(type)?.get(id);
    if (o) store.byId.set(id, o);
  }
  for (const we of store.table('webhook_endpoint').values()) {
    delivery.setEndpoint({ id: we.id, url: we.url, secret: we._secret, enabledEvents: we.enabled_events, disabled: we.status !== 'enabled' });
  }
  d.api.restoreIdempotency(s.idempotency);
  if (identifiers) meters.seen.load(identifiers);
  for (const [id, at] of s.acceptances ?? []) meters.seen.set(id, at);
  meters.restoreUsage(s.meters.usage);
  for (const [k, v] of s.meters.repeats) meters.repeats.set(k, v);
  for (const [k, v] of s.meters.reaccepted) meters.reaccepted.set(k, v);
  for (const [k, v] of s.meters.sessions) meters.sessions.set(k, v);
  meters.totalAccepted = s.meters.totalAccepted;
  meters.totalReceived = s.meters.totalReceived;
  meters.duplicates = s.meters.duplicates;
}

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

/** Loads the state file at start and saves it, debounced, after changes and on close. */
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

  constructor(
    private readonly file: string,
    private readonly deps: PersistDeps,
    private readonly logger: (line: string) => void,
    private readonly debounceMs = 200,
  ) {
    this.identifiersFile = identifiersFileOf(file);
  }

  /** Restores the file if it exists; a corrupt or unreadable file leaves the state empty with one warning. */
  load(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.logger(`warning: cannot read state file ${this.file} (${(e as Error).message}); starting with empty state`);
      return;
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
      if (identifiers) {
        this.identifiersSaved = identifiers.length;
        this.identifiersGeneration = this.deps.meters.seen.generation;
      }
      const n = this.deps.store.tables.get('event')?.size ?? 0;
      this.logger(`state restored from ${this.file} (${this.deps.store.byId.size - n} objects, ${n} events)`);
    } catch (e) {
      this.deps.store.reset();
      this.deps.store.clockOffsetSeconds = 0;
      this.deps.meters.clear();
      this.deps.api.resetIdempotency();
      for (const we of this.deps.delivery.endpoints()) this.deps.delivery.removeEndpoint(we.id);
      this.logger(`warning: state file ${this.file} is corrupt (${(e as Error).message}); starting with empty state, the file will be overwritten`);
    }
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

  save(): void {
    const started = performance.now();
    try {
      this.saveIdentifiers();
      writeFileAtomic(this.file, JSON.stringify(snapshot(this.deps)));
      if (this.failing) this.logger(`state file ${this.file} saved again`);
      this.failing = false;
    } catch (e) {
      if (!this.failing) this.logger(`warning: cannot save state file ${this.file}: ${(e as Error).message}`);
      this.failing = true;
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

  /** Cancels the pending save and writes the final state. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.save();
  }
}
