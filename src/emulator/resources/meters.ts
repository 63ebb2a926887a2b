/**
 * Billing meters and meter events: `/v1/billing/meters` (create, retrieve, update, list,
 * deactivate, reactivate, event_summaries), v1 `/v1/billing/meter_events`, and the v2
 * high-throughput pair `/v2/billing/meter_event_session` + `/v2/billing/meter_event_stream`.
 */
import { ApiError, invalidRequest, noSuch } from '../errors';
import { newId, randomToken } from '../ids';
import { int, obj, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { paginate } from '../store';
import { IdentifierLog } from '../identifier-log';

/** Stripe enforces identifier uniqueness over a rolling window of at least 24 hours. */
const DEDUPE_WINDOW = 24 * 3600;
const SESSION_TTL_MS = 15 * 60 * 1000;
const MAX_STREAM_EVENTS = 100;
/** Accepted events kept by identifier for cancel adjustments. */
const RECENT_LIMIT = 10_000;

/** Accepted usage of one customer in one second of event time, for one event name. */
export interface UsageBucket {
  sum: number;
  count: number;
  /** The value of the event recorded last for this second (for the `last` formula). */
  last: number;
}

/** One bucket as saved: event name, customer, timestamp (s), sum, count, last. */
export type UsageRow = [string, string, number, number, number, number];

/**
 * Accepted meter events, kept as what Stripe's aggregation needs rather than one object per
 * event: per event name, customer and second of event time, the sum, the count and the last
 * value. Summaries over any range of whole seconds come out exactly as they would from the
 * events themselves. Identifiers are kept for deduplication (identifier → time accepted, off
 * the JS heap); receive and accept counts above one are the exception and are kept apart.
 */
export class MeterEventLog {
  /** identifier → time (emulator seconds) it was last accepted. */
  readonly seen = new IdentifierLog();
  /** identifier → receipts beyond the first (duplicates and re-sends after the window). */
  readonly repeats = new Map<string, number>();
  /** identifier → acceptances beyond the first (sent again after the dedupe window). */
  readonly reaccepted = new Map<string, number>();
  /** event_name → customer → event time (s) → usage. */
  readonly usage = new Map<string, Map<string, Map<number, UsageBucket>>>();
  totalAccepted = 0;
  totalReceived = 0;
  duplicates = 0;
  readonly sessions = new Map<string, { id: string; expiresAtMs: number }>();
  /**
   * The most recent accepted events by identifier, what a cancel adjustment needs to take one
   * back out of the usage. Bounded (RECENT_LIMIT): older events cannot be canceled here.
   */
  readonly recent = new Map<string, { eventName: string; customer: string; timestamp: number; value: number }>();

  clear(): void {
    this.recent.clear();
    this.seen.clear();
    this.repeats.clear();
    this.reaccepted.clear();
    this.usage.clear();
    this.sessions.clear();
    this.totalAccepted = this.totalReceived = this.duplicates = 0;
  }

  count(identifier?: string): number {
    if (identifier === undefined) return this.totalAccepted;
    return this.seen.has(identifier) ? 1 + (this.reaccepted.get(identifier) ?? 0) : 0;
  }

  /**
   * Records one event; false when its identifier was already accepted within the window.
   * `customer` and `value` are read from the payload by the caller (the meter's payload keys).
   */
  record(now: number, identifier: string, eventName: string, customer: string, value: number, timestamp: number): boolean {
    this.totalReceived++;
    // Accepted unless the identifier was accepted within the window.
    const prior = this.seen.set(identifier, now, (at) => now - at >= DEDUPE_WINDOW);
    if (prior !== undefined) {
      this.repeats.set(identifier, (this.repeats.get(identifier) ?? 0) + 1);
      if (now - prior < DEDUPE_WINDOW) {
        this.duplicates++;
        return false;
      }
      this.reaccepted.set(identifier, (this.reaccepted.get(identifier) ?? 0) + 1);
    }
    this.totalAccepted++;
    const v = Number.isFinite(value) ? value : 0;
    this.addUsage(eventName, customer, timestamp, v);
    this.recent.delete(identifier);
    this.recent.set(identifier, { eventName, customer, timestamp, value: v });
    if (this.recent.size > RECENT_LIMIT) this.recent.delete(this.recent.keys().next().value as string);
    return true;
  }

  /** Takes an accepted event back out of the usage (a cancel adjustment); false when it is unknown. */
  cancel(eventName: string, identifier: string): boolean {
    const e = this.recent.get(identifier);
    if (!e || e.eventName !== eventName) return false;
    this.recent.delete(identifier);
    this.addUsage(e.eventName, e.customer, e.timestamp, -e.value, -1, 0);
    this.totalAccepted--;
    return true;
  }

  /** Adds `count` events summing to `sum` (the last of them `last`) to the second `timestamp`. */
  private addUsage(eventName: string, customer: string, timestamp: number, sum: number, count = 1, last = sum): void {
    let byCustomer = this.usage.get(eventName);
    if (!byCustomer) this.usage.set(eventName, (byCustomer = new Map()));
    let byTime = byCustomer.get(customer);
    if (!byTime) byCustomer.set(customer, (byTime = new Map()));
    const bucket = byTime.get(timestamp);
    if (bucket) {
      bucket.sum += sum;
      bucket.count += count;
      bucket.last = last;
    } else {
      byTime.set(timestamp, { sum, count, last });
    }
  }

  /** Usage of one customer for one event name over [start, end), by the meter's formula. */
  aggregate(eventName: string, customer: string, start: number, end: number, formula: string): number {
    const byTime = this.usage.get(eventName)?.get(customer);
    let sum = 0;
    let count = 0;
    let lastAt = -Infinity;
    let last = 0;
    if (byTime) {
      for (const [t, b] of byTime) {
        if (t < start || t >= end) continue;
        sum += b.sum;
        count += b.count;
        if (t > lastAt) {
          lastAt = t;
          last = b.last;
        }
      }
    }
    switch (formula) {
      case 'count':
        return count;
      case 'last':
        return last;
      default:
        return sum;
    }
  }

  stats(): Obj {
    const byIdentifier: Record<string, { received: number; accepted: number }> = {};
    for (const [id] of this.seen.entries()) {
      byIdentifier[id] = { received: 1 + (this.repeats.get(id) ?? 0), accepted: 1 + (this.reaccepted.get(id) ?? 0) };
    }
    return {
      total_accepted: this.totalAccepted,
      total_received: this.totalReceived,
      duplicates: this.duplicates,
      by_identifier: byIdentifier,
    };
  }

  /** Usage buckets as rows, for the state file. */
  usageRows(): UsageRow[] {
    const rows: UsageRow[] = [];
    for (const [name, byCustomer] of this.usage) {
      for (const [customer, byTime] of byCustomer) for (const [t, b] of byTime) rows.push([name, customer, t, b.sum, b.count, b.last]);
    }
    return rows;
  }

  /** Restores saved usage rows into an empty log. */
  restoreUsage(usage: Iterable<UsageRow>): void {
    for (const [name, customer, t, sum, count, last] of usage) this.addUsage(name, customer, t, sum, count, last);
  }
}

const logs = new WeakMap<Store, MeterEventLog>();

export function meterLog(store: Store): MeterEventLog {
  let l = logs.get(store);
  if (!l) logs.set(store, (l = new MeterEventLog()));
  return l;
}

function findMeterByEvent(store: Store, eventName: string): Obj | undefined {
  for (const m of store.table('billing.meter').values()) if (m.event_name === eventName && m.status === 'active') return m;
  for (const m of store.table('billing.meter').values()) if (m.event_name === eventName) return m;
  return undefined;
}

/** Aggregated usage of a meter for a customer over [start, end). */
export function aggregateUsage(store: Store, meterId: string, customer: string, start: number, end: number): number {
  const meter = store.get('billing.meter', meterId);
  if (!meter) return 0;
  return meterLog(store).aggregate(meter.event_name, customer, start, end, meter.default_aggregation.formula);
}

/** Where a meter reads the customer and the value in an event's payload. */
function payloadKeys(meter: Obj | undefined): { customerKey: string; valueKey: string } {
  return {
    customerKey: meter?.customer_mapping.event_payload_key ?? 'stripe_customer_id',
    valueKey: meter?.value_settings.event_payload_key ?? 'value',
  };
}

/** The value an event counts for: 1 when the payload has none, 0 when it is not a number. */
function eventValue(raw: unknown): number {
  if (raw === undefined) return 1;
  const value = Number(raw);
  return Number.isFinite(value) ? value : 0;
}

function getMeter(store: Store, id: string): Obj {
  const m = store.get('billing.meter', id);
  if (!m) throw noSuch('billing.meter', id, 'id');
  return m;
}

function v2Error(status: number, type: string, message: string, code?: string): ApiError {
  return new ApiError(status, { type: type as 'invalid_request_error', message, ...(code ? { code } : {}) });
}

export function registerMeters(router: Router, store: Store): void {
  const log = () => meterLog(store);

  router.add('POST', '/v1/billing/meters', (ctx) => {
    const p = ctx.params;
    const displayName = str(p, 'display_name');
    if (!displayName) throw invalidRequest('Missing required param: display_name.', 'display_name', 'parameter_missing');
    const eventName = str(p, 'event_name');
    if (!eventName) throw invalidRequest('Missing required param: event_name.', 'event_name', 'parameter_missing');
    const agg = obj(p, 'default_aggregation');
    const formula = agg ? str(agg, 'formula') : undefined;
    if (!formula) throw invalidRequest('Missing required param: default_aggregation.', 'default_aggregation', 'parameter_missing');
    if (!['sum', 'count', 'last'].includes(formula)) throw invalidRequest(`Invalid default_aggregation[formula]: must be one of count, last, or sum`, 'default_aggregation[formula]', 'parameter_invalid_string');
    if ([...store.table('billing.meter').values()].some((m) => m.event_name === eventName && m.status === 'active')) {
      throw invalidRequest(`An active meter with event_name \`${eventName}\` already exists.`, 'event_name', 'resource_already_exists');
    }
    const cm = obj(p, 'customer_mapping');
    const vs = obj(p, 'value_settings');
    const now = store.now();
    const meter: Obj = {
      id: newId('mtr_test_'),
      object: 'billing.meter',
      created: now,
      customer_mapping: { event_payload_key: (cm && str(cm, 'event_payload_key')) ?? 'stripe_customer_id', type: (cm && str(cm, 'type')) ?? 'by_id' },
      default_aggregation: { formula },
      display_name: displayName,
      event_name: eventName,
      event_time_window: str(p, 'event_time_window') ?? null,
      livemode: false,
      status: 'active',
      status_transitions: { deactivated_at: null },
      updated: now,
      value_settings: { event_payload_key: (vs && str(vs, 'event_payload_key')) ?? 'value' },
    };
    store.insert('billing.meter', meter);
    store.emit('billing.meter.created', meter);
    return out(ctx, meter);
  });

  router.add('GET', '/v1/billing/meters/:id', (ctx) => out(ctx, getMeter(store, ctx.pathParams.id)));

  router.add('POST', '/v1/billing/meters/:id', (ctx) => {
    const m = getMeter(store, ctx.pathParams.id);
    const name = str(ctx.params, 'display_name');
    if (name && name !== m.display_name) {
      const prev = { display_name: m.display_name };
      m.display_name = name;
      m.updated = store.now();
      store.emit('billing.meter.updated', m, prev);
    }
    return out(ctx, m);
  });

  router.add('POST', '/v1/billing/meters/:id/deactivate', (ctx) => {
    const m = getMeter(store, ctx.pathParams.id);
    if (m.status === 'active') {
      m.status = 'inactive';
      m.status_transitions.deactivated_at = store.now();
      m.updated = store.now();
      store.emit('billing.meter.deactivated', m, { status: 'active' });
    }
    return out(ctx, m);
  });

  router.add('POST', '/v1/billing/meters/:id/reactivate', (ctx) => {
    const m = getMeter(store, ctx.pathParams.id);
    if (m.status === 'inactive') {
      m.status = 'active';
      m.status_transitions.deactivated_at = null;
      m.updated = store.now();
      store.emit('billing.meter.reactivated', m, { status: 'inactive' });
    }
    return out(ctx, m);
  });

  router.add('GET', '/v1/billing/meters', (ctx) => {
    let items = store.list('billing.meter');
    const status = str(ctx.params, 'status');
    if (status) items = items.filter((m) => m.status === status);
    return listOut(ctx, items);
  });

  router.add('GET', '/v1/billing/meters/:id/event_summaries', (ctx) => {
    const m = getMeter(store, ctx.pathParams.id);
    const p = ctx.params;
    const customer = str(p, 'customer');
    if (!customer) throw invalidRequest('Missing required param: customer.', 'customer', 'parameter_missing');
    const start = int(p, 'start_time');
    const end = int(p, 'end_time');
    if (start === undefined) throw invalidRequest('Missing required param: start_time.', 'start_time', 'parameter_missing');
    if (end === undefined) throw invalidRequest('Missing required param: end_time.', 'end_time', 'parameter_missing');
    if (end <= start) throw invalidRequest('end_time must be after start_time.', 'end_time');
    const window = str(p, 'value_grouping_window');
    const step = window === 'hour' ? 3600 : window === 'day' ? 86400 : end - start;
    const summaries: Obj[] = [];
    for (let s = start; s < end; s += step) {
      const e = Math.min(end, s + step);
      summaries.push({
        id: `mtrusg_${m.id.slice(-16)}${s}`,
        object: 'billing.meter_event_summary',
        aggregated_value: aggregateUsage(store, m.id, customer, s, e),
        end_time: e,
        livemode: false,
        meter: m.id,
        start_time: s,
      });
      if (summaries.length > 10_000) break;
    }
    // Summaries come earliest first unless the caller pages backwards.
    return paginate(summaries, p, ctx.path, (o) => o);
  });

  router.add('POST', '/v1/billing/meter_events', (ctx) => {
    const p = ctx.params;
    const eventName = str(p, 'event_name');
    if (!eventName) throw invalidRequest('Missing required param: event_name.', 'event_name', 'parameter_missing');
    const payload = obj(p, 'payload');
    if (!payload) throw invalidRequest('Missing required param: payload.', 'payload', 'parameter_missing');
    const meter = findMeterByEvent(store, eventName);
    const customerKey = meter?.customer_mapping.event_payload_key ?? 'stripe_customer_id';
    if (!payload[customerKey]) {
      throw invalidRequest(`Missing required param: payload[${customerKey}].`, `payload[${customerKey}]`, 'parameter_missing');
    }
    const valueKey = meter?.value_settings.event_payload_key ?? 'value';
    if (payload[valueKey] !== undefined && !Number.isFinite(Number(payload[valueKey]))) {
      throw invalidRequest(`Invalid payload[${valueKey}]: must be a number.`, `payload[${valueKey}]`, 'parameter_invalid_integer');
    }
    const identifier = str(p, 'identifier') ?? newId('', 32);
    const timestamp = int(p, 'timestamp') ?? store.now();
    const stringPayload: Record<string, string> = {};
    for (const [k, v] of Object.entries(payload)) stringPayload[k] = String(v);
    if (!log().record(store.now(), identifier, eventName, stringPayload[customerKey], eventValue(stringPayload[valueKey]), timestamp)) {
      // Stripe rejects a repeated identifier synchronously: 400 invalid_request_error
      // "An event already exists with identifier ..." with `Stripe-Should-Retry: false`.
      throw new ApiError(
        400,
        { type: 'invalid_request_error', message: `An event already exists with identifier ${identifier}.`, param: 'identifier' },
        { 'Stripe-Should-Retry': 'false' },
      );
    }
    return {
      object: 'billing.meter_event',
      created: store.now(),
      event_name: eventName,
      identifier,
      livemode: false,
      payload: stringPayload,
      timestamp,
    };
  });

  router.add('POST', '/v1/billing/meter_event_adjustments', (ctx) => {
    const p = ctx.params;
    const eventName = str(p, 'event_name') as string;
    const cancel = obj(p, 'cancel');
    const identifier = cancel ? str(cancel, 'identifier') : undefined;
    if (!identifier) throw invalidRequest('Missing required param: cancel[identifier].', 'cancel[identifier]', 'parameter_missing');
    // Stripe validates adjustments asynchronously: an unknown identifier is still accepted here.
    log().cancel(eventName, identifier);
    return { object: 'billing.meter_event_adjustment', cancel: { identifier }, event_name: eventName, livemode: false, status: 'pending', type: 'cancel' };
  });

  router.add('POST', '/v2/billing/meter_events', (ctx) => {
    const p = ctx.params;
    const eventName = typeof p.event_name === 'string' ? p.event_name : '';
    const payload = p.payload && typeof p.payload === 'object' ? (p.payload as Obj) : undefined;
    if (!eventName || !payload) throw v2Error(400, 'invalid_request_error', 'event_name and payload are required.', 'invalid_request');
    const keys = payloadKeys(findMeterByEvent(store, eventName));
    if (payload[keys.customerKey] === undefined) {
      throw v2Error(400, 'invalid_request_error', `The payload is missing ${keys.customerKey}.`, 'invalid_request');
    }
    const identifier = typeof p.identifier === 'string' && p.identifier ? p.identifier : newId('', 32);
    const parsed = typeof p.timestamp === 'string' ? Date.parse(p.timestamp) : NaN;
    const timestamp = Number.isFinite(parsed) ? Math.floor(parsed / 1000) : store.now();
    const stringPayload: Record<string, string> = {};
    for (const [k, v] of Object.entries(payload)) stringPayload[k] = String(v);
    const raw = payload[keys.valueKey];
    if (!log().record(store.now(), identifier, eventName, stringPayload[keys.customerKey], eventValue(raw === undefined ? undefined : String(raw)), timestamp)) {
      throw v2Error(400, 'invalid_request_error', `An event already exists with identifier ${identifier}.`, 'duplicate_meter_event');
    }
    return {
      object: 'v2.billing.meter_event',
      created: new Date(store.nowMs()).toISOString(),
      event_name: eventName,
      identifier,
      livemode: false,
      payload: stringPayload,
      timestamp: new Date(timestamp * 1000).toISOString(),
    };
  });

  router.add('POST', '/v2/billing/meter_event_adjustments', (ctx) => {
    const p = ctx.params;
    const identifier = p.cancel && typeof p.cancel === 'object' ? (p.cancel as Obj).identifier : undefined;
    if (typeof p.event_name !== 'string' || typeof identifier !== 'string') {
      throw v2Error(400, 'invalid_request_error', 'event_name, type and cancel.identifier are required.', 'invalid_request');
    }
    log().cancel(p.event_name, identifier);
    return {
      id: newId('mtr_adj_'),
      object: 'v2.billing.meter_event_adjustment',
      cancel: { identifier },
      created: new Date(store.nowMs()).toISOString(),
      event_name: p.event_name,
      livemode: false,
      status: 'pending',
      type: 'cancel',
    };
  });

  router.add('POST', '/v2/billing/meter_event_session', () => {
    const id = newId('mes_test_');
    const token = `mes_tok_${randomToken(32)}`;
    const createdMs = store.nowMs();
    log().sessions.set(token, { id, expiresAtMs: Date.now() + SESSION_TTL_MS });
    return {
      id,
      object: 'v2.billing.meter_event_session',
      authentication_token: token,
      created: new Date(createdMs).toISOString(),
      expires_at: new Date(createdMs + SESSION_TTL_MS).toISOString(),
      livemode: false,
    };
  });

  router.add('POST', '/v2/billing/meter_event_stream', (ctx) => {
    const session = log().sessions.get(ctx.apiKey);
    if (!session) {
      throw v2Error(401, 'invalid_request_error', 'The meter event stream requires a meter event session authentication token.');
    }
    if (session.expiresAtMs < Date.now()) {
      throw v2Error(401, 'temporary_session_expired', 'The meter event session has expired. Create a new session.', 'billing_meter_event_session_expired');
    }
    const events = ctx.params.events;
    if (!Array.isArray(events) || events.length === 0) throw v2Error(400, 'invalid_request_error', 'events must be a non-empty array.', 'invalid_request');
    if (events.length > MAX_STREAM_EVENTS) {
      throw v2Error(400, 'invalid_request_error', `A request can contain at most ${MAX_STREAM_EVENTS} events.`, 'invalid_request');
    }
    const now = store.now();
    for (const [i, e] of events.entries()) {
      if (!e || typeof e !== 'object' || typeof e.event_name !== 'string' || !e.payload || typeof e.payload !== 'object') {
        throw v2Error(400, 'invalid_request_error', `events[${i}] needs event_name and payload.`, 'invalid_request');
      }
    }
    // The meter (hence the payload keys) of each event name, looked up once per request.
    const keysByName = new Map<string, { customerKey: string; valueKey: string }>();
    const meterLogOfStore = log();
    for (const e of events) {
      const parsed = e.timestamp ? Date.parse(e.timestamp) : NaN;
      const ts = Number.isFinite(parsed) ? Math.floor(parsed / 1000) : now;
      let keys = keysByName.get(e.event_name);
      if (!keys) keysByName.set(e.event_name, (keys = payloadKeys(findMeterByEvent(store, e.event_name))));
      const payload = e.payload as Obj;
      const customer = payload[keys.customerKey];
      // Duplicates by identifier are dropped silently on the stream (validation is asynchronous on Stripe).
      meterLogOfStore.record(
        now,
        e.identifier ?? newId('', 32),
        e.event_name,
        // An event without a customer is accepted but belongs to no customer's summaries.
        customer === undefined ? '' : String(customer),
        eventValue(payload[keys.valueKey] === undefined ? undefined : String(payload[keys.valueKey])),
        ts,
      );
    }
    return { status: 202, body: {} };
  });
}

/** True for a live meter event session token (accepted as Bearer on the v2 stream only). */
export function isSessionToken(store: Store, token: string, path: string): boolean {
  if (path !== '/v2/billing/meter_event_stream') return false;
  return meterLog(store).sessions.has(token);
}
