import type { CatalogChange } from './catalog-sync.service';

/** The plan as a fixed-width table, one change per line, Stripe changes before database ones. */
export function formatChangeTable(changes: CatalogChange[]): string {
  const header = ['WHERE', 'ACTION', 'OBJECT', 'KEY', 'DETAIL'];
  const rows = changes.map((c) => [c.where, c.action, c.object, c.key, c.detail]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** A one-line count per place: "Stripe: 2 create, 1 archive; database: 3 create". */
export function summarizeChanges(changes: CatalogChange[]): string {
  const parts: string[] = [];
  for (const where of ['stripe', 'database'] as const) {
    const counts = new Map<string, number>();
    for (const c of changes) if (c.where === where) counts.set(c.action, (counts.get(c.action) ?? 0) + 1);
    if (counts.size) parts.push(`${where === 'stripe' ? 'Stripe' : 'database'}: ${[...counts].map(([a, n]) => `${n} ${a}`).join(', ')}`);
  }
  return parts.join('; ');
}
