import v8 from 'node:v8';

/**
 * Applies HEAP_GROWING_PERCENT to V8 at start-up (see AppConfig.heapGrowingPercent). V8 reads
 * the setting whenever it sizes the old generation after a collection, so setting it once the
 * process runs takes effect from the next collection on. A `--heap-growing-percent` given to node
 * itself wins. Returns what was applied.
 */
export function applyHeapSettings(heapGrowingPercent: number, execArgv: readonly string[] = process.execArgv): number | null {
  if (heapGrowingPercent <= 0) return null;
  if (execArgv.some((arg) => arg.startsWith('--heap-growing-percent') || arg.startsWith('--heap_growing_percent'))) return null;
  v8.setFlagsFromString(`--heap-growing-percent=${Math.round(heapGrowingPercent)}`);
  return heapGrowingPercent;
}
