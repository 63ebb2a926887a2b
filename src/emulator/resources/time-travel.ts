/**
 * Moving a clock forward: every moment at which something falls due for the clock's customers
 * (renewals, trial ends, cancellations, schedule phases, payment retries) is visited in time
 * order, with `now()` answering that moment, so objects and events carry the time they happened
 * at and a retry scheduled by a failure during the same advance runs when it falls due. Checkout
 * sessions of the clock's customers expire when the clock passes their `expires_at`.
 */
import type { Obj, Store } from '../store';
import { expireDueSessions } from './checkout';
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

/** Open invoices with a scheduled retry, by subscription. */
function retriedInvoicesBySubscription(store: Store, scope: ClockScope): Map<string, Set<Obj>> {
  const out = new Map<string, Set<Obj>>();
  for (const inv of store.table('invoice').values()) {
    const sub = inv.parent?.subscription_details?.subscription as string | undefined;
    if (!sub || nextRetryAt(inv) === null || !inScope(store, scope, inv.customer)) continue;
    let set = out.get(sub);
    if (!set) out.set(sub, (set = new Set()));
    set.add(inv);
  }
  return out;
}

/** A subscription and the moment it next needs the clock. */
interface Due {
  at: number;
  seq: number;
  sub: Obj;
}

/** A binary min-heap of due subscriptions, earliest first (ties: in the order they were queued). */
class DueQueue {
  private readonly items: Due[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  push(at: number, sub: Obj): void {
    const a = this.items;
    a.push({ at, seq: this.seq++, sub });
    for (let i = a.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!before(a[i], a[parent])) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }

  pop(): Due | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(x: Due, y: Due): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

/** When the subscription next needs the clock: its own next event or the next retry of one of its invoices. */
function nextMoment(store: Store, sub: Obj, retried: Set<Obj> | undefined): number | null {
  let due = nextDueAt(store, sub) ?? Infinity;
  for (const inv of retried ?? []) {
    const t = nextRetryAt(inv);
    if (t === null) retried?.delete(inv);
    else if (t < due) due = t;
  }
  return due === Infinity ? null : due;
}

/** Runs what is due for the subscription at `at`: its own lifecycle, then the retries of its invoices. */
function runDue(store: Store, sub: Obj, retried: Set<Obj> | undefined, at: number): void {
  advanceSubscription(store, sub);
  for (const inv of [...(retried ?? [])]) if ((nextRetryAt(inv) ?? Infinity) <= at) retryInvoice(store, inv);
}

/**
 * Runs everything that falls due up to `target` for the customers of `scope`, in time order
 * across subscriptions (each one's moments, and its invoices' retries, from a queue).
 * Something already overdue (the global clock runs on real time too) runs at the time it fell due.
 */
export function travel(store: Store, scope: ClockScope, target: number): void {
  const subs = subscriptionsOf(store, scope);
  const retries = retriedInvoicesBySubscription(store, scope);
  const queue = new DueQueue();
  const enqueue = (sub: Obj, after: number) => {
    const at = nextMoment(store, sub, retries.get(sub.id));
    // Each subscription's moments strictly increase, so the walk ends.
    if (at !== null && at > after && at <= target) queue.push(at, sub);
  };
  for (const sub of subs) enqueue(sub, -Infinity);
  while (queue.size > 0) {
    const { at, sub } = queue.pop() as Due;
    store.atTime(at, () => runDue(store, sub, retries.get(sub.id), at));
    // A failed renewal during this moment schedules a retry of the subscription's latest invoice.
    const latest = sub.latest_invoice ? store.get('invoice', sub.latest_invoice) : undefined;
    if (latest && nextRetryAt(latest) !== null) {
      if (!retries.has(sub.id)) retries.set(sub.id, new Set());
      retries.get(sub.id)?.add(latest);
    }
    enqueue(sub, at);
  }
  store.atTime(target, () => {
    for (const sub of subs) runDue(store, sub, retries.get(sub.id), target);
    expireDueSessions(store, (s) => inScope(store, scope, s.customer));
  });
}
