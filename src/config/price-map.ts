/**
 * `STRIPE_PRODUCT_PRICE_MAP` maps plan codes to Stripe price ids. Two spellings are accepted:
 * JSON (`{"starter":"price_1"}`) or a list (`starter=price_1,pro=price_2`).
 * Returns the map, or the list of problems naming each malformed entry.
 */
export type PriceMapResult = { ok: true; map: Record<string, string> } | { ok: false; problems: string[] };

const PLAN = /^[a-z0-9][a-z0-9_-]*$/i;
const PRICE = /^price_[A-Za-z0-9_]+$/;

export function parsePriceMap(raw: string | undefined): PriceMapResult {
  const text = raw?.trim() ?? '';
  if (text === '') return { ok: true, map: {} };
  const entries: [string, unknown][] = [];
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { ok: false, problems: ['is not valid JSON'] };
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      return { ok: false, problems: ['must be a JSON object of plan to price id'] };
    }
    entries.push(...Object.entries(parsed));
  } else {
    for (const part of text.split(',')) {
      const entry = part.trim();
      if (entry === '') continue;
      const eq = entry.indexOf('=');
      if (eq <= 0) {
        entries.push([entry, undefined]);
        continue;
      }
      entries.push([entry.slice(0, eq).trim(), entry.slice(eq + 1).trim()]);
    }
  }
  const map: Record<string, string> = {};
  const problems: string[] = [];
  for (const [plan, price] of entries) {
    if (typeof price !== 'string' || !PLAN.test(plan) || !PRICE.test(price)) {
      problems.push(`entry "${plan}${typeof price === 'string' ? `=${price}` : ''}" is not plan=price_id`);
      continue;
    }
    if (map[plan]) problems.push(`plan "${plan}" appears twice`);
    map[plan] = price;
  }
  return problems.length ? { ok: false, problems } : { ok: true, map };
}
