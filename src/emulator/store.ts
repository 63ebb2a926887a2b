/**
 * In-memory state of the emulator: one table per object type (insertion order = creation order),
 * an id index for expansion, the emulator clock, the event log and request context.
 */
import { newId } from './ids';
import { invalidRequest } from './errors';

export const DEFAULT_API_VERSION = '2026-10-28.endive';

export type Obj = Record<string, any>;

export interface RequestContext {
  id: string | null;
  idempotencyKey: string | null;
  apiVersion: string;
}

export type Renderer = (o: Obj, store: Store) => Obj;
export type Includable = (o: Obj, store: Store) => unknown;

/** Deep copy that drops private fields (keys starting with `_`). */
export function publicCopy<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => publicCopy(v)) as unknown as T;
  const out: Obj = {};
  for (const [k, v] of Object.entries(value as Obj)) {
    if (k.charCodeAt(0) === 95 /* _ */) continue;
    out[k] = publicCopy(v);
  }
  return out as T;
}

export class Store {
  clockOffsetSeconds = 0;
  readonly tables = new Map<string, Map<string, Obj>>();
  readonly byId = new Map<string, Obj>();
  readonly renderers = new Map<string, Renderer>();
  readonly includables = new Map<string, Record<string, Includable>>();
  request: RequestContext = { id: null, idempotencyKey: null, apiVersion: DEFAULT_API_VERSION };
  onEvent: (event: Obj) => void = () => undefined;
  /** Number of webhook endpoints an event would be delivered to (set by the delivery service). */
  countEndpointsFor: (type: string) => number = () => 0;
  invoiceSequence = 0;
  /** Discount ids for the subscription being created in this request (its first invoice uses them). */
  pendingSubscriptionDiscounts: string[] | null = null;
  /** Public base URL of this emulator (hosted pages). */
  baseUrl = "";

  /**
   * The time `now()` answers while set: a test clock's frozen time during a request for one of
   * its customers, or the moment being simulated while a clock advances. Null: the global clock.
   */
  private timeAt: number | null = null;

  /** Seconds since the epoch: the global emulator clock, or the time set by `atTime`. */
  now(): number {
    return this.timeAt ?? this.globalNow();
  }

  nowMs(): number {
    return this.timeAt !== null ? this.timeAt * 1000 : Date.now() + this.clockOffsetSeconds * 1000;
  }

  /** The global clock (real time plus the offset of `/_emulator/clock/advance`), whatever `atTime` says. */
  globalNow(): number {
    return Math.floor(Date.now() / 1000) + this.clockOffsetSeconds;
  }

  /** Runs fn with `now()` answering `time` (null: the global clock); nests. */
  atTime<T>(time: number | null, fn: () => T): T {
    const prior = this.timeAt;
    this.timeAt = time;
    try {
      return fn();
    } finally {
      this.timeAt = prior;
    }
  }

  table(type: string): Map<string, Obj> {
    let t = this.tables.get(type);
    if (!t) {
      t = new Map();
      this.tables.set(type, t);
    }
    return t;
  }

  private txn: { inserted: [string, string][]; events: Obj[] } | null = null;

  /**
   * Runs fn atomically: objects it inserts are removed and its events dropped when it throws
   * (unless the error asks to keep its effects, like a declined card), otherwise its events
   * are recorded and delivered in order.
   */
  transaction<T>(fn: () => T): T {
    if (this.txn) return fn();
    const txn = { inserted: [] as [string, string][], events: [] as Obj[] };
    this.txn = txn;
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.txn = null;
      if ((e as { keepEffects?: boolean }).keepEffects) this.commit(txn.events);
      else for (const [type, id] of txn.inserted) this.remove(type, id);
      throw e;
    }
    this.txn = null;
    this.commit(txn.events);
    return result;
  }

  private commit(events: Obj[]): void {
    for (const e of events) {
      this.insert('event', e);
      this.onEvent(e);
    }
  }

  /** Position in the current transaction's event list, to emit an event before later ones. */
  eventMark(): number {
    return this.txn ? this.txn.events.length : -1;
  }

  insert<T extends Obj>(type: string, o: T): T {
    if (this.txn && type !== 'event') this.txn.inserted.push([type, o.id]);
    this.table(type).set(o.id, o);
    this.byId.set(o.id, o);
    return o;
  }

  remove(type: string, id: string): void {
    this.table(type).delete(id);
    this.byId.delete(id);
  }

  get(type: string, id: string): Obj | undefined {
    return this.table(type).get(id);
  }

  /** Newest first, like Stripe's lists. */
  list(type: string): Obj[] {
    return [...this.table(type).values()].reverse();
  }

  render(o: Obj): Obj {
    const r = this.renderers.get(o.object);
    return r ? r(o, this) : publicCopy(o);
  }

  renderId(id: string): Obj | undefined {
    const o = this.byId.get(id);
    return o ? this.render(o) : undefined;
  }

  reset(): void {
    this.tables.clear();
    this.byId.clear();
    this.invoiceSequence = 0;
  }

  /** Records an event for a state change; `data.object` is the object as it is now. */
  emit(type: string, o: Obj, previousAttributes?: Obj, options: { at?: number } = {}): Obj {
    const data: Obj = { object: this.render(o) };
    if (previousAttributes && Object.keys(previousAttributes).length > 0) data.previous_attributes = publicCopy(previousAttributes);
    const event: Obj = {
      id: newId('evt_'),
      object: 'event',
      api_version: this.request.apiVersion,
      created: this.now(),
      data,
      livemode: false,
      pending_webhooks: this.countEndpointsFor(type),
      request: { id: this.request.id, idempotency_key: this.request.idempotencyKey },
      type,
    };
    if (this.txn) {
      if (options.at !== undefined && options.at >= 0) this.txn.events.splice(options.at, 0, event);
      else this.txn.events.push(event);
    } else {
      this.insert('event', event);
      this.onEvent(event);
    }
    return event;
  }
}

/** Expands `expand[]` paths (`a.b.c`, `data.x` in lists) in a rendered object, in place. */
export function applyExpand(store: Store, root: Obj, paths: string[]): Obj {
  for (const path of paths) {
    const parts = path.split('.');
    if (parts.length > 4) throw invalidRequest(`You cannot expand more than 4 levels of a property. Property: ${path}`, 'expand');
    expandAt(store, root, parts, path);
  }
  return root;
}

function expandAt(store: Store, node: any, parts: string[], full: string): void {
  if (node === null || typeof node !== 'object') return;
  const [head, ...rest] = parts;
  if ((node.object === 'list' || node.object === 'search_result') && head === 'data') {
    for (const item of node.data) if (rest.length) expandAt(store, item, rest, full);
    return;
  }
  let value = node[head];
  if (typeof value === 'string') {
    const target = store.renderId(value);
    if (target) node[head] = value = target;
  } else if (value === undefined || value === null) {
    const inc = store.includables.get(node.object)?.[head];
    if (inc) {
      node[head] = value = inc(store.byId.get(node.id) ?? node, store);
    } else if (value === undefined) {
      throw invalidRequest(`This property cannot be expanded (${head}).`, 'expand');
    }
  }
  if (rest.length && value !== null && value !== undefined) {
    if (Array.isArray(value)) for (const v of value) expandAt(store, v, rest, full);
    else expandAt(store, value, rest, full);
  }
}

/** Stripe's cursor pagination over a newest-first array. */
export function paginate(items: Obj[], p: Obj, url: string, render: (o: Obj) => Obj): Obj {
  let limit = 10;
  if (p.limit !== undefined && p.limit !== '') {
    limit = Number(p.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw invalidRequest(`Invalid integer: ${p.limit}. This value must be between 1 and 100.`, 'limit', 'parameter_invalid_integer');
    }
  }
  let start = 0;
  let end = items.length;
  if (p.starting_after && p.ending_before) {
    throw invalidRequest('You may only specify one of these parameters: ending_before, starting_after.', 'ending_before', 'parameters_exclusive');
  }
  if (p.starting_after) {
    const i = items.findIndex((o) => o.id === p.starting_after);
    if (i < 0) throw invalidRequest(`No such object: '${p.starting_after}'`, 'starting_after', 'resource_missing');
    start = i + 1;
  } else if (p.ending_before) {
    const i = items.findIndex((o) => o.id === p.ending_before);
    if (i < 0) throw invalidRequest(`No such object: '${p.ending_before}'`, 'ending_before', 'resource_missing');
    end = i;
    start = Math.max(0, end - limit);
    const data = items.slice(start, end).map(render);
    return { object: 'list', data, has_more: start > 0, url };
  }
  const data = items.slice(start, start + limit).map(render);
  return { object: 'list', data, has_more: start + limit < end, url };
}
