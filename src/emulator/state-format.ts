/**
 * The emulator's state file format: objects, events, idempotency records, meter event logs and
 * the clock offset as JSON (snapshot, parse with checks, apply). persistence.ts writes and
 * reads the files.
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
import type { Obj, Store } from './store';
import type { ApiServer, StoredResponse } from './server';
import type { MeterEventLog, UsageRow } from './resources/meter-event-log';
import type { WebhookDelivery } from './webhooks';

/**
 * 3: meter usage as per-second buckets, identifiers in the identifiers file. Still read: 2 (the
 * identifiers as an acceptance log in `meterAcceptances`) and 1 (one object per meter event,
 * identifier maps).
 */
export const FORMAT_VERSION = 3;
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
  /** The last journal record this state holds (0: none; absent before the journal existed). */
  journalSeq?: number;
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
export function snapshot(d: PersistDeps, journalSeq = 0): StateFile {
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
    journalSeq,
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
  if (s.journalSeq !== undefined && !(Number.isSafeInteger(s.journalSeq) && (s.journalSeq as number) >= 0)) fail('journalSeq');
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
