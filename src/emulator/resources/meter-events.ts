/**
 * Meter events: v1 `/v1/billing/meter_events` and adjustments, and the v2 high-throughput pair
 * `/v2/billing/meter_event_session` + `/v2/billing/meter_event_stream` (plus v2 single events
 * and adjustments). Accepted events go to the store's MeterEventLog.
 */
import { ApiError, invalidRequest } from '../errors';
import { newId, randomToken } from '../ids';
import { int, obj, str } from '../params';
import type { Router } from '../router';
import type { Obj, Store } from '../store';
import { meterLog } from './meter-event-log';

const SESSION_TTL_MS = 15 * 60 * 1000;
const MAX_STREAM_EVENTS = 100;

/** The active meter of an event name, else the first one created with it. */
function findMeterByEvent(store: Store, eventName: string): Obj | undefined {
  for (const m of store.table('billing.meter').values()) if (m.event_name === eventName && m.status === 'active') return m;
  for (const m of store.table('billing.meter').values()) if (m.event_name === eventName) return m;
  return undefined;
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

function v2Error(status: number, type: string, message: string, code?: string): ApiError {
  return new ApiError(status, { type: type as 'invalid_request_error', message, ...(code ? { code } : {}) });
}

export function registerMeterEvents(router: Router, store: Store): void {
  const log = () => meterLog(store);

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
    log().sessions.set(token, { id, expiresAtMs: store.wallMs() + SESSION_TTL_MS });
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
    if (session.expiresAtMs < store.wallMs()) {
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
