/**
 * Stripe's search query language over stored objects: clauses `field:value` (exact),
 * `field~value` (substring), `field>value` / `>=` / `<` / `<=` (numbers), `-field:value`
 * (negation), `metadata['key']:value`, `field:null`, joined all by `AND` or all by `OR`
 * (Stripe refuses a mix, and more than 10 clauses). Results are newest first and page through
 * `page` / `next_page` tokens.
 */
import { invalidRequest } from './errors';
import type { Obj } from './store';

type Op = ':' | '~' | '>' | '>=' | '<' | '<=';

interface Clause {
  field: string;
  key?: string;
  op: Op;
  value: string | null;
  negate: boolean;
}

const MAX_CLAUSES = 10;

function parseError(query: string, detail: string): never {
  throw invalidRequest(`We were unable to parse your search query. ${detail} Query: ${query}`, 'query', 'parameter_invalid_string');
}

/** Splits the query into clauses and the connective joining them. */
export function parseQuery(query: string): { clauses: Clause[]; join: 'AND' | 'OR' } {
  const clauses: Clause[] = [];
  const joins = new Set<string>();
  let i = 0;
  const s = query;
  const skip = () => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  const quoted = (): string => {
    const q = s[i];
    i++;
    let out = '';
    while (i < s.length && s[i] !== q) {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      out += s[i++];
    }
    if (s[i] !== q) parseError(query, 'A quoted value is not closed.');
    i++;
    return out;
  };
  skip();
  if (i >= s.length) parseError(query, 'The query is empty.');
  while (i < s.length) {
    skip();
    let negate = false;
    if (s[i] === '-') {
      negate = true;
      i++;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(s.slice(i));
    if (!m) parseError(query, `Expected a field at position ${i}.`);
    const field = m[0];
    i += field.length;
    let key: string | undefined;
    if (s[i] === '[') {
      i++;
      if (s[i] !== '"' && s[i] !== "'") parseError(query, 'A metadata key must be quoted.');
      key = quoted();
      if (s[i] !== ']') parseError(query, 'Expected ] after the metadata key.');
      i++;
    }
    const opm = /^(>=|<=|:|~|>|<)/.exec(s.slice(i));
    if (!opm) parseError(query, `Expected one of : ~ > >= < <= after ${field}.`);
    const op = opm[0] as Op;
    i += op.length;
    let value: string | null;
    if (s[i] === '"' || s[i] === "'") value = quoted();
    else {
      const vm = /^[^\s]+/.exec(s.slice(i));
      if (!vm) parseError(query, `Expected a value after ${field}${op}.`);
      value = vm[0];
      i += value.length;
      if (value === 'null') value = null;
    }
    clauses.push({ field, key, op, value, negate });
    skip();
    if (i >= s.length) break;
    const jm = /^(AND|OR)\b/.exec(s.slice(i));
    if (!jm) parseError(query, `Expected AND or OR at position ${i}.`);
    joins.add(jm[0]);
    i += jm[0].length;
    skip();
    if (i >= s.length) parseError(query, 'The query ends with a connective.');
  }
  if (joins.size > 1) throw invalidRequest('A search query cannot mix AND and OR. Use only one of them.', 'query', 'parameter_invalid_string');
  if (clauses.length > MAX_CLAUSES) throw invalidRequest(`A search query can have at most ${MAX_CLAUSES} clauses.`, 'query', 'parameter_invalid_string');
  return { clauses, join: joins.has('OR') ? 'OR' : 'AND' };
}

/** How to read each searchable field of one resource. */
export type SearchFields = Record<string, (o: Obj) => unknown>;

function test(c: Clause, actual: unknown): boolean {
  if (c.value === null) return actual === null || actual === undefined || actual === '';
  if (actual === null || actual === undefined) return false;
  if (c.op === ':') {
    if (typeof actual === 'boolean') return String(actual) === c.value.toLowerCase();
    if (typeof actual === 'number') return actual === Number(c.value);
    return String(actual).toLowerCase() === c.value.toLowerCase();
  }
  if (c.op === '~') return String(actual).toLowerCase().includes(c.value.toLowerCase());
  const a = Number(actual);
  const v = Number(c.value);
  if (!Number.isFinite(v)) return false;
  switch (c.op) {
    case '>':
      return a > v;
    case '>=':
      return a >= v;
    case '<':
      return a < v;
    default:
      return a <= v;
  }
}

/** A filter for the query, refusing fields the resource does not search on as Stripe does. */
export function searchFilter(query: string, resource: string, fields: SearchFields): (o: Obj) => boolean {
  const { clauses, join } = parseQuery(query);
  for (const c of clauses) {
    const ok = c.field === 'metadata' ? c.key !== undefined && 'metadata' in fields : c.key === undefined && c.field in fields;
    if (!ok) {
      throw invalidRequest(
        `Field \`${c.field}\` is an unsupported search field for resource \`${resource}\`. See http://stripe.com/docs/search#query-fields-for-${resource.replace(/_/g, '-')} for a list of supported fields.`,
        'query',
        'parameter_invalid_string',
      );
    }
    if (c.op !== ':' && c.op !== '~' && c.field !== 'created' && c.field !== 'amount' && c.field !== 'total') {
      throw invalidRequest(`Field \`${c.field}\` does not support the \`${c.op}\` operator.`, 'query', 'parameter_invalid_string');
    }
  }
  return (o) => {
    const hit = (c: Clause) => {
      const actual = c.field === 'metadata' ? (o.metadata ?? {})[c.key as string] : fields[c.field](o);
      const r = test(c, actual);
      return c.negate ? !r : r;
    };
    return join === 'AND' ? clauses.every(hit) : clauses.some(hit);
  };
}

/** Stripe's `search_result` page over newest-first matches, with opaque `next_page` tokens. */
export function searchPage(items: Obj[], p: Obj, url: string, render: (o: Obj) => Obj): Obj {
  let limit = 10;
  if (p.limit !== undefined && p.limit !== '') {
    limit = Number(p.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw invalidRequest(`Invalid integer: ${p.limit}. This value must be between 1 and 100.`, 'limit', 'parameter_invalid_integer');
    }
  }
  let offset = 0;
  if (p.page !== undefined && p.page !== '') {
    const decoded = /^off_(\d+)$/.exec(Buffer.from(String(p.page), 'base64url').toString('utf8'));
    if (!decoded) throw invalidRequest(`Invalid page: ${p.page}`, 'page', 'parameter_invalid_string');
    offset = Number(decoded[1]);
  }
  const data = items.slice(offset, offset + limit).map(render);
  const hasMore = offset + limit < items.length;
  const result: Obj = {
    object: 'search_result',
    data,
    has_more: hasMore,
    next_page: hasMore ? Buffer.from(`off_${offset + limit}`).toString('base64url') : null,
    url,
  };
  const expand: unknown = p.expand;
  if (Array.isArray(expand) && expand.includes('total_count')) result.total_count = items.length;
  return result;
}
