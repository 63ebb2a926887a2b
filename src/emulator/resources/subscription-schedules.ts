/**
 * Subscription schedules (the model; routes in subscription-schedule-routes.ts): created from a subscription (one phase: its items until its period
 * ends), phases replaced by an update, released (the subscription carries on as it is) or
 * canceled (the subscription ends too). When the clock passes a phase's end the next phase's
 * items replace the subscription's; after the last phase `end_behavior` releases the schedule
 * or cancels the subscription.
 */
import { invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import { applyMetadata, arr, int, obj, str } from '../params';
import { addInterval } from '../periods';
import { publicCopy, type Obj, type Store } from '../store';
import { diff } from './customers';
import { checkRecurring, currentPeriod, ENDED, getSubscription } from './subscription-model';
import { applyPlan, changeLines, planToItems, readProrationBehavior } from './subscription-update';

export const OPEN = ['not_started', 'active'];
const END_BEHAVIORS = ['release', 'cancel'];

export function getSchedule(store: Store, id: string): Obj {
  const s = store.get('subscription_schedule', id);
  if (!s) throw noSuch('subscription_schedule', id, 'schedule');
  return s;
}

function activeSchedule(store: Store, sub: Obj): Obj | null {
  const sched = sub.schedule ? store.get('subscription_schedule', sub.schedule) : undefined;
  return sched && sched.status === 'active' ? sched : null;
}

function phaseItem(price: Obj, quantity: number | null, metadata: Obj = {}): Obj {
  const metered = price.recurring?.usage_type === 'metered';
  return {
    billing_thresholds: null,
    discounts: [],
    metadata,
    plan: price.id,
    price: price.id,
    ...(metered ? {} : { quantity: quantity ?? 1 }),
    tax_rates: [],
  };
}

function phase(currency: string, start: number, end: number, items: Obj[], prorationBehavior: string, metadata: Obj = {}): Obj {
  return {
    add_invoice_items: [],
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: null,
    billing_thresholds: null,
    collection_method: null,
    currency,
    default_payment_method: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    end_date: end,
    invoice_settings: null,
    items,
    metadata,
    on_behalf_of: null,
    proration_behavior: prorationBehavior,
    start_date: start,
    transfer_data: null,
    trial_end: null,
  };
}

export function createFromSubscription(store: Store, sub: Obj, metadata: Obj): Obj {
  if (ENDED.includes(sub.status)) throw invalidRequest(`You cannot create a schedule from a ${sub.status} subscription.`, 'from_subscription');
  if (sub.schedule && store.get('subscription_schedule', sub.schedule)?.status === 'active') {
    throw invalidRequest(`The subscription \`${sub.id}\` is already attached to a schedule \`${sub.schedule}\`.`, 'from_subscription');
  }
  const now = store.now();
  const period = currentPeriod(sub);
  const items = (sub._items as Obj[]).map((i) => phaseItem(store.get('price', i.price) as Obj, i.quantity ?? null, { ...i.metadata }));
  const sched: Obj = {
    id: newId('sub_sched_'),
    object: 'subscription_schedule',
    application: null,
    billing_mode: { flexible: { proration_discounts: 'included' }, type: 'flexible', updated_at: now },
    canceled_at: null,
    completed_at: null,
    created: now,
    current_phase: { end_date: period.end, start_date: period.start },
    customer: sub.customer,
    customer_account: null,
    default_settings: {
      application_fee_percent: null,
      automatic_tax: { disabled_reason: null, enabled: false, liability: null },
      billing_cycle_anchor: 'automatic',
      billing_thresholds: null,
      collection_method: 'charge_automatically',
      default_payment_method: sub.default_payment_method,
      description: null,
      invoice_settings: { account_tax_ids: null, days_until_due: null, issuer: { type: 'self' } },
      on_behalf_of: null,
      transfer_data: null,
    },
    end_behavior: 'release',
    livemode: false,
    metadata,
    phases: [phase(sub.currency, period.start, period.end, items, 'create_prorations')],
    released_at: null,
    released_subscription: null,
    status: 'active',
    subscription: sub.id,
    test_clock: sub.test_clock ?? null,
    _phase: 0,
  };
  store.insert('subscription_schedule', sched);
  store.emit('subscription_schedule.created', sched);
  const prev = { schedule: sub.schedule ?? null };
  sub.schedule = sched.id;
  store.emit('customer.subscription.updated', sub, prev);
  return sched;
}

/** Reads `phases[]` of an update; phase 0 is the current one and keeps its start. */
function readPhases(store: Store, sched: Obj, sub: Obj, raw: Obj[]): Obj[] {
  if (raw.length === 0) throw invalidRequest('Missing required param: phases.', 'phases', 'parameter_missing');
  const current = sched.phases[sched._phase];
  const phases: Obj[] = [];
  let start: number = current.start_date;
  raw.forEach((ph: Obj, i) => {
    const param = `phases[${i}]`;
    const given = ph.start_date === 'now' ? store.now() : int(ph, 'start_date', `${param}[start_date]`);
    if (i === 0 && given !== undefined && given !== current.start_date) {
      throw invalidRequest('You can not modify the start date of the current phase.', `${param}[start_date]`);
    }
    if (i > 0 && given !== undefined && given !== start) {
      throw invalidRequest('The start date of a phase must be the end date of the phase before it.', `${param}[start_date]`);
    }
    const items = arr(ph, 'items');
    if (!items || items.length === 0) throw invalidRequest(`Missing required param: ${param}[items].`, `${param}[items]`, 'parameter_missing');
    const phaseItems = items.map((it: Obj, j) => {
      const priceId = str(it, 'price') ?? str(it, 'plan');
      if (!priceId) throw invalidRequest(`Missing required param: ${param}[items][${j}][price].`, `${param}[items][${j}][price]`, 'parameter_missing');
      const price = store.get('price', priceId);
      if (!price) throw noSuch('price', priceId, `${param}[items][${j}][price]`);
      checkRecurring(price, `${param}[items][${j}][price]`);
      if (price.currency !== sub.currency) throw invalidRequest('All prices on a subscription must have the same currency.', `${param}[items][${j}][price]`);
      const quantity = int(it, 'quantity', `${param}[items][${j}][quantity]`);
      if (price.recurring.usage_type === 'metered' && quantity !== undefined) {
        throw invalidRequest(`Quantity should not be specified where usage_type is \`metered\`. Remove quantity from \`${param}[items][${j}]\`.`, `${param}[items][${j}][quantity]`);
      }
      return { price, quantity: quantity ?? null, metadata: applyMetadata({}, it) };
    });
    const first = phaseItems[0].price.recurring;
    for (const [j, it] of phaseItems.entries()) {
      if (it.price.recurring.interval !== first.interval || it.price.recurring.interval_count !== first.interval_count) {
        throw invalidRequest('All prices on a subscription must have the same `recurring.interval` and `recurring.interval_count`.', `${param}[items][${j}][price]`);
      }
    }
    let end = int(ph, 'end_date', `${param}[end_date]`);
    const duration = obj(ph, 'duration');
    const iterations = int(ph, 'iterations', `${param}[iterations]`);
    if (end === undefined && duration) {
      const interval = str(duration, 'interval');
      if (!interval || !['day', 'week', 'month', 'year'].includes(interval)) throw invalidRequest('Invalid duration interval.', `${param}[duration][interval]`);
      end = addInterval(start, interval, int(duration, 'interval_count', `${param}[duration][interval_count]`) ?? 1);
    }
    if (end === undefined) end = addInterval(start, first.interval, first.interval_count * (iterations ?? 1));
    if (end <= start) throw invalidRequest('The end date of a phase must be after its start date.', `${param}[end_date]`);
    phases.push(
      phase(
        sub.currency,
        start,
        end,
        phaseItems.map((it) => phaseItem(it.price, it.quantity, it.metadata)),
        readProrationBehavior(ph, 'proration_behavior'),
        applyMetadata({}, ph),
      ),
    );
    start = end;
  });
  return phases;
}

export function updateSchedule(store: Store, sched: Obj, p: Obj): Obj {
  if (!OPEN.includes(sched.status)) throw invalidRequest(`You cannot update a subscription schedule that is currently \`${sched.status}\`.`);
  const sub = getSubscription(store, sched.subscription);
  const before = publicCopy(sched);
  const subBefore = store.render(sub);
  const raw = arr(p, 'phases');
  if (raw) {
    sched.phases = [...sched.phases.slice(0, sched._phase), ...readPhases(store, sched, sub, raw)];
    const current = sched.phases[sched._phase];
    sched.current_phase = { end_date: current.end_date, start_date: current.start_date };
    // The current phase's items apply at once when they differ from the subscription's.
    const plan = planToItems(store, sub, current.items, store.now());
    const differs = plan.changes.some((c) => c.itemId === null || c.priceId !== c.oldPriceId || (c.priceId !== null && c.quantity !== c.oldQty));
    if (differs) {
      const { lines } = changeLines(store, sub, plan, readProrationBehavior(p));
      applyPlan(store, sub, plan);
      sub._pending.push(...lines);
    }
  }
  if ('end_behavior' in p) {
    const eb = str(p, 'end_behavior') ?? 'release';
    if (!END_BEHAVIORS.includes(eb)) throw invalidRequest(`Invalid end_behavior: must be one of ${END_BEHAVIORS.join(', ')}`, 'end_behavior');
    sched.end_behavior = eb;
  }
  sched.metadata = applyMetadata(sched.metadata, p);
  store.emit('subscription_schedule.updated', sched, diff(before, publicCopy(sched)));
  const prev = diff(subBefore, store.render(sub));
  if (Object.keys(prev).length) store.emit('customer.subscription.updated', sub, prev);
  return sched;
}

export function release(store: Store, sched: Obj, at: number): void {
  const prev = { status: sched.status, released_at: null, released_subscription: null };
  sched.status = 'released';
  sched.released_at = at;
  sched.released_subscription = sched.subscription;
  sched.current_phase = null;
  store.emit('subscription_schedule.released', sched, prev);
  const sub = store.get('subscription', sched.subscription);
  if (sub && sub.schedule === sched.id) {
    sub.schedule = null;
    store.emit('customer.subscription.updated', sub, { schedule: sched.id });
  }
}

/** The end of the current phase of the subscription's active schedule, once the clock reached it. */
export function dueScheduleBoundary(store: Store, sub: Obj, now: number): number | null {
  const sched = activeSchedule(store, sub);
  if (!sched) return null;
  const end = sched.phases[sched._phase]?.end_date;
  return typeof end === 'number' && end <= now ? end : null;
}

/**
 * Moves the subscription's schedule to its next phase at `at`: the phase's items replace the
 * subscription's (prorated when `at` is mid-period). After the last phase: `end_behavior`.
 */
export function transitionSchedule(store: Store, sub: Obj, at: number, prorate: boolean): void {
  const sched = activeSchedule(store, sub);
  if (!sched) return;
  const next = sched.phases[sched._phase + 1];
  if (!next) {
    if (sched.end_behavior === 'cancel') {
      sched.status = 'completed';
      sched.completed_at = at;
      sched.current_phase = null;
      store.emit('subscription_schedule.completed', sched, { status: 'active' });
      sub.cancel_at = at;
      sub.cancel_at_period_end = at === currentPeriod(sub).end;
    } else {
      release(store, sched, at);
    }
    return;
  }
  const prev = { current_phase: { ...sched.current_phase } };
  const plan = { ...planToItems(store, sub, next.items, at), usageFrom: prorate ? at + 1 : at };
  if (prorate) {
    const { lines } = changeLines(store, sub, plan, next.proration_behavior ?? 'create_prorations');
    applyPlan(store, sub, plan);
    sub._pending.push(...lines);
  } else {
    applyPlan(store, sub, plan);
  }
  sched._phase += 1;
  sched.current_phase = { end_date: next.end_date, start_date: next.start_date };
  store.emit('subscription_schedule.updated', sched, prev);
}

/** The subscription ended: its open schedule is canceled with it. */
export function cancelScheduleOf(store: Store, sub: Obj): void {
  const sched = sub.schedule ? store.get('subscription_schedule', sub.schedule) : undefined;
  if (!sched || !OPEN.includes(sched.status)) return;
  const prev = { status: sched.status };
  sched.status = 'canceled';
  sched.canceled_at = store.now();
  sched.current_phase = null;
  store.emit('subscription_schedule.canceled', sched, prev);
}
