/** Billing period arithmetic: calendar months/years from an anchor, clamped to month ends like Stripe. */
export type Interval = 'day' | 'week' | 'month' | 'year';

export function addInterval(anchor: number, interval: string, count: number): number {
  const d = new Date(anchor * 1000);
  switch (interval) {
    case 'day':
      return anchor + count * 86400;
    case 'week':
      return anchor + count * 7 * 86400;
    case 'month':
    case 'year': {
      const months = interval === 'year' ? count * 12 : count;
      const y = d.getUTCFullYear();
      const m = d.getUTCMonth() + months;
      const targetYear = y + Math.floor(m / 12);
      const targetMonth = ((m % 12) + 12) % 12;
      const lastDay = new Date(Date.UTC(targetYear, targetMonth + 1, 0)).getUTCDate();
      const day = Math.min(d.getUTCDate(), lastDay);
      return Math.floor(
        Date.UTC(targetYear, targetMonth, day, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()) / 1000,
      );
    }
    default:
      throw new Error(`unknown interval ${interval}`);
  }
}

/** Period number `index` (0-based) of a cycle anchored at `anchor`. */
export function periodAt(anchor: number, interval: string, count: number, index: number): { start: number; end: number } {
  return { start: addInterval(anchor, interval, count * index), end: addInterval(anchor, interval, count * (index + 1)) };
}
