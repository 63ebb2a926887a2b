/**
 * Moving a clock forward: every moment at which something falls due for the clock's customers
 * (renewals, trial ends, cancellations, schedule phases, payment retries) is visited in time
 * order, with `now()` answering that moment, so objects and events carry the time they happened
 * at and a retry scheduled by a failure during the same advance runs when it falls due.
 */
import type { Obj, Store } from '../store';
import { nextRetryAt, retryInvoice } from './dunning';
import { advanceSubscription, nextDueAt } from './subscription-lifecycle';

/** Which customers a clock moves: those of a test clock, or (null) every customer on no test clock. */
export type ClockScope = string | null;

export function clockOfCustomer(store: Store, customerId: string | null | undefined): string | null {
  if (!customerId) return null;
  return (store.get('customer', customerId)?.test_clock as string | null | undefined) ?? null;
}

function inScope(store: Store, scope: ClockScope, customerId: string | null | undefined): boolean {
  return clockOfCustomer(store, customerId) === scope;
}

function subscriptionsOf(store: Store, scope: ClockScope): Obj[] {
  return [...store.table('subscription').values()].filter((s) => inScope(store, scope, s.customer));
}

function retriedInvoicesOf(store: Store, scope: ClockScope): Obj[] {
  return [...store.table('invoice').values()].filter((i) => nextRetryAt(i) !== null && inScope(store, scope, i.customer));
}

/** The earliest moment after `after` and at most `until` at which something falls due in the scope. */
function nextMoment(store: Store, scope: ClockScope, after: number, until: number): number | null {
  let due = Infinity;
  const consider = (t: number | null) => {
    if (t !== null && t > after && t <= until && t < due) due = t;
  };
  for (const sub of subscriptionsOf(store, scope)) consider(nextDueAt(store, sub));
  for (const inv of retriedInvoicesOf(store, scope)) consider(nextRetryAt(inv));
  return due === Infinity ? null : due;
}

function runDue(store: Store, scope: ClockScope, at: number): void {
  for (const sub of subscriptionsOf(store, scope)) advanceSubscription(store, sub);
  for (const inv of retriedInvoicesOf(store, scope)) if ((nextRetryAt(inv) as number) <= at) retryInvoice(store, inv);
}

/**
 * Runs everything that falls due up to `target` for the customers of `scope`, in time order.
 * Something already overdue (the global clock runs on real time too) runs at the time it fell due.
 */
export function travel(store: Store, scope: ClockScope, target: number): void {
  let last = -Infinity;
  for (let guard = 0; guard < 100_000; guard++) {
    const at = nextMoment(store, scope, last, target);
    if (at === null) break;
    last = at;
    store.atTime(at, () => runDue(store, scope, at));
  }
  store.atTime(target, () => runDue(store, scope, target));
}
