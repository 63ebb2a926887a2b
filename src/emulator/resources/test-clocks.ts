/**
 * Stripe's test clocks (`/v1/test_helpers/test_clocks`): create, retrieve, list, advance, delete.
 * A customer created with `test_clock` lives at its clock's frozen time: what a request makes for
 * it is created then, and only advancing its clock moves its subscriptions and retries.
 */
import { invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import { int, str } from '../params';
import { addInterval } from '../periods';
import type { Ctx, Router } from '../router';
import { listOut, out } from '../router';
import type { Obj, Store } from '../store';
import { deleteCustomer, getCustomer } from './customers';
import { cycleOf, ENDED } from './subscription-model';
import { clockOfCustomer, travel } from './time-travel';

export const TEST_CLOCK = 'test_helpers.test_clock';
/** Stripe deletes a test clock 30 days after it was created. */
const LIFETIME = 30 * 86400;

export function getTestClock(store: Store, id: string, param?: string): Obj {
  const clock = store.get(TEST_CLOCK, id);
  if (!clock) throw noSuch(TEST_CLOCK, id, param);
  return clock;
}

function customersOf(store: Store, clock: Obj): Obj[] {
  return store.list('customer').filter((c) => c.test_clock === clock.id);
}

/**
 * The latest time the clock may be advanced to, as Stripe documents it: two intervals of the
 * shortest subscription of its customers, or two years when they have none.
 */
export function advanceLimit(store: Store, clock: Obj): { limit: number; interval: string } {
  const from = clock.frozen_time as number;
  let best: { limit: number; interval: string } = { limit: addInterval(from, 'year', 2), interval: '2 years' };
  for (const sub of store.table('subscription').values()) {
    if (ENDED.includes(sub.status) || clockOfCustomer(store, sub.customer) !== clock.id) continue;
    const { interval, count } = cycleOf(store, sub);
    const limit = addInterval(from, interval, 2 * count);
    if (limit < best.limit) best = { limit, interval: count === 1 ? interval : `${count} ${interval}s` };
  }
  return best;
}

/** Advances the clock: status `advancing`, everything due in time order, then `ready`. Returns the clock as it was while advancing. */
export function advanceTestClock(store: Store, clock: Obj, target: number): Obj {
  clock.status = 'advancing';
  clock.status_details = { advancing: { target_frozen_time: target } };
  const advancing = store.render(clock);
  store.atTime(clock.frozen_time, () => store.emit('test_helpers.test_clock.advancing', clock));
  try {
    travel(store, clock.id, target);
  } catch (e) {
    clock.status = 'internal_failure';
    clock.status_details = {};
    store.atTime(clock.frozen_time, () => store.emit('test_helpers.test_clock.internal_failure', clock));
    throw e;
  }
  clock.frozen_time = target;
  clock.status = 'ready';
  clock.status_details = {};
  store.atTime(target, () => store.emit('test_helpers.test_clock.ready', clock));
  return advancing;
}

/** The frozen time of the customer's test clock; null for a customer on the global clock (or none). */
export function customerClockTime(store: Store, customerId: string | null | undefined): number | null {
  const clockId = clockOfCustomer(store, customerId);
  const clock = clockId ? store.get(TEST_CLOCK, clockId) : undefined;
  return clock ? (clock.frozen_time as number) : null;
}

/** The test clock whose time a request runs at: that of the customer it names or acts on, if any. */
export function requestClockTime(store: Store, ctx: Ctx): number | null {
  const p = ctx.params;
  const clockId = typeof p.test_clock === 'string' ? p.test_clock : customerClock(store, ctx);
  const clock = clockId ? store.get(TEST_CLOCK, clockId) : undefined;
  return clock ? (clock.frozen_time as number) : null;
}

function customerClock(store: Store, ctx: Ctx): string | null {
  const p = ctx.params;
  const ids: unknown[] = [p.customer, p.subscription, p.from_subscription, p.invoice, ...Object.values(ctx.pathParams)];
  for (const id of ids) {
    if (typeof id !== 'string') continue;
    const clock = clockOfCustomer(store, customerOf(store, store.byId.get(id)));
    if (clock) return clock;
  }
  return null;
}

/** The customer an object belongs to (a customer itself, or through its subscription). */
function customerOf(store: Store, o: Obj | undefined): string | null {
  if (!o) return null;
  if (o.object === 'customer') return o.id as string;
  if (typeof o.customer === 'string') return o.customer;
  if (typeof o.subscription === 'string') return (store.get('subscription', o.subscription)?.customer as string | undefined) ?? null;
  return null;
}

function frozenTime(p: Obj, param: string): number {
  const t = int(p, param);
  if (t === undefined) throw invalidRequest(`Missing required param: ${param}.`, param, 'parameter_missing');
  return t;
}

export function registerTestClocks(router: Router, store: Store): void {
  router.add('POST', '/v1/test_helpers/test_clocks', (ctx) => {
    const p = ctx.params;
    const frozen = frozenTime(p, 'frozen_time');
    const customerId = str(p, 'customer');
    const customer = customerId ? getCustomer(store, customerId) : undefined;
    if (customer?.test_clock) {
      throw invalidRequest(`The customer ${customer.id} is already attached to the test clock ${customer.test_clock as string}.`, 'customer');
    }
    const created = store.globalNow();
    const clock: Obj = {
      id: newId('clock_'),
      object: TEST_CLOCK,
      created,
      deletes_after: created + LIFETIME,
      frozen_time: frozen,
      livemode: false,
      name: str(p, 'name') ?? null,
      status: 'ready',
      status_details: {},
    };
    store.insert(TEST_CLOCK, clock);
    if (customer) customer.test_clock = clock.id;
    store.atTime(frozen, () => store.emit('test_helpers.test_clock.created', clock));
    return out(ctx, clock);
  });

  router.add('GET', '/v1/test_helpers/test_clocks/:id', (ctx) => out(ctx, getTestClock(store, ctx.pathParams.id, 'test_clock')));

  router.add('GET', '/v1/test_helpers/test_clocks', (ctx) => listOut(ctx, store.list(TEST_CLOCK)));

  router.add('POST', '/v1/test_helpers/test_clocks/:id/advance', (ctx) => {
    const clock = getTestClock(store, ctx.pathParams.id, 'test_clock');
    const target = frozenTime(ctx.params, 'frozen_time');
    if (target <= clock.frozen_time) {
      throw invalidRequest(
        `The frozen_time (${target}) must be after the test clock's current frozen_time (${clock.frozen_time as number}).`,
        'frozen_time',
      );
    }
    const { limit, interval } = advanceLimit(store, clock);
    if (target > limit) {
      throw invalidRequest(
        `The test clock cannot be advanced more than two intervals of its shortest subscription (${interval}) at a time: frozen_time must be at most ${limit}.`,
        'frozen_time',
      );
    }
    // The answer is the clock as it was while advancing, as Stripe answers before the work is done.
    return advanceTestClock(store, clock, target);
  });

  router.add('DELETE', '/v1/test_helpers/test_clocks/:id', (ctx) => {
    const clock = getTestClock(store, ctx.pathParams.id, 'test_clock');
    // Its customers go with it, and with them their subscriptions, as on Stripe.
    store.atTime(clock.frozen_time, () => {
      for (const c of customersOf(store, clock)) deleteCustomer(store, c);
      store.remove(TEST_CLOCK, clock.id);
      store.emit('test_helpers.test_clock.deleted', clock);
    });
    return { id: clock.id, object: TEST_CLOCK, deleted: true };
  });
}
