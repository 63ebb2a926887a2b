/**
 * Where `npm run clock -- advance <span|date>` moves a clock from `from`: a span such as `7d`,
 * `2w`, `1month`, `12h` or `1y` (months and years are calendar ones, in UTC, kept on the last
 * day of a shorter month), or an ISO date or time (`2027-03-01`, `2027-03-01T12:00:00Z`).
 * Throws a RangeError that says what is accepted.
 */
export function clockTarget(spec: string, from: Date): Date {
  const text = spec.trim().toLowerCase();
  const span = /^(\d{1,4})\s*(h|hours?|d|days?|w|weeks?|mo|months?|y|years?)$/.exec(text);
  if (span) {
    const n = Number(span[1]);
    const unit = span[2];
    if (n < 1) throw new RangeError('the span must be at least 1');
    if (unit.startsWith('h')) return new Date(from.getTime() + n * 3600_000);
    if (unit.startsWith('d')) return new Date(from.getTime() + n * 86_400_000);
    if (unit.startsWith('w')) return new Date(from.getTime() + n * 7 * 86_400_000);
    return addMonths(from, unit.startsWith('y') ? 12 * n : n);
  }
  if (/^\d{4}-\d{2}-\d{2}([t ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(z|[+-]\d{2}:?\d{2})?)?$/.test(text)) {
    // A date alone is midnight UTC, as `new Date('2027-03-01')` reads it.
    const date = new Date(spec.trim().replace(' ', 'T'));
    if (Number.isNaN(date.getTime())) throw new RangeError(`"${spec}" is not a valid date`);
    return date;
  }
  throw new RangeError(`"${spec}" is neither a span (12h, 7d, 2w, 1month, 1y) nor an ISO date (2027-03-01)`);
}

function addMonths(from: Date, months: number): Date {
  const result = new Date(from.getTime());
  const day = result.getUTCDate();
  result.setUTCDate(1);
  result.setUTCMonth(result.getUTCMonth() + months);
  const lastDay = new Date(Date.UTC(result.getUTCFullYear(), result.getUTCMonth() + 1, 0)).getUTCDate();
  result.setUTCDate(Math.min(day, lastDay));
  return result;
}
