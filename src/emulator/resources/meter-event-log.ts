/**
 * What the emulator keeps of accepted meter events: usage per event name, customer and second,
 * identifiers for deduplication, counters, and the v2 meter event sessions. One log per store.
 */
import type { Obj, Store } from '../store';
import { IdentifierLog } from '../identifier-log';

/** Stripe enforces identifier uniqueness over a rolling window of at least 24 hours. */
const DEDUPE_WINDOW = 24 * 3600;
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
