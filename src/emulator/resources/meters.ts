/**
 * Billing meters: `/v1/billing/meters` (create, retrieve, update, list, deactivate, reactivate,
 * event_summaries) and the aggregated usage that summaries and metered invoices read. The
 * events themselves are in meter-events.ts, what is kept of them in meter-event-log.ts.
 */
import { invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import { int, obj, str } from '../params';
import type { Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { paginate } from '../store';
import { meterLog } from './meter-event-log';

/** Aggregated usage of a meter for a customer over [start, end). */
export function aggregateUsage(store: Store, meterId: string, customer: string, start: number, end: number): number {
  const meter = store.get('billing.meter', meterId);
  if (!meter) return 0;
  return meterLog(store).aggregate(meter.event_name, customer, start, end, meter.default_aggregation.formula);
}

function getMeter(store: Store, id: string): Obj {
  const m = store.get('billing.meter', id);
  if (!m) throw noSuch('billing.meter', id, 'id');
  return m;
}

export function registerMeters(router: Router, store: Store): void {
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
}
