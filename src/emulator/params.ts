/**
 * Stripe wire-format parsing: form bodies and query strings with bracket notation
 * (`items[0][price]=x`, `expand[]=a`, `metadata[k]=v`) into nested objects, plus typed accessors.
 */
import { invalidRequest } from './errors';

export type Params = Record<string, any>;

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

function splitKey(key: string): string[] {
  const first = key.indexOf('[');
  if (first <= 0) return [key];
  const parts = [key.slice(0, first)];
  const re = /\[([^\]]*)\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(key.slice(first))) !== null) parts.push(m[1]);
  return parts;
}

/** Objects whose keys are all array indices become arrays (Stripe's `items[0][price]`). */
function arrayify(value: any): any {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(arrayify);
  const keys = Object.keys(value);
  for (const k of keys) value[k] = arrayify(value[k]);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => value[k]);
  }
  return value;
}

export function parseForm(body: string): Params {
  const root: Params = {};
  if (!body) return root;
  for (const pair of body.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const rawKey = decode(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : decode(pair.slice(eq + 1));
    const parts = splitKey(rawKey);
    let node: any = root;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      const last = i === parts.length - 1;
      if (part === '') {
        // `expand[]=a`: append to an array held by the parent.
        break;
      }
      if (last) {
        node[part] = value;
      } else if (parts[i + 1] === '') {
        if (!Array.isArray(node[part])) node[part] = node[part] === undefined ? [] : [node[part]];
        if (i + 2 === parts.length) {
          node[part].push(value);
          break;
        }
        const obj = {};
        node[part].push(obj);
        node = obj;
        i++;
      } else {
        if (node[part] === null || typeof node[part] !== 'object') node[part] = {};
        node = node[part];
      }
    }
  }
  return arrayify(root);
}

export function str(p: Params, key: string): string | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'object') throw invalidRequest(`Invalid string: ${JSON.stringify(v)}`, key, 'parameter_invalid_string');
  return String(v);
}

export function int(p: Params, key: string, param = key): number | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n)) throw invalidRequest(`Invalid integer: ${v}`, param, 'parameter_invalid_integer');
  return n;
}

export function num(p: Params, key: string, param = key): number | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) throw invalidRequest(`Invalid decimal: ${v}`, param, 'parameter_invalid_integer');
  return n;
}

export function bool(p: Params, key: string, param = key): boolean | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw invalidRequest(`Invalid boolean: ${v}`, param, 'parameter_invalid_string');
}

export function obj(p: Params, key: string): Params | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidRequest(`Invalid object`, key, 'parameter_invalid_string');
  return v;
}

export function arr(p: Params, key: string): any[] | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (Array.isArray(v)) return v;
  if (typeof v === 'object') return Object.values(v);
  return [v];
}

export function strList(p: Params, key: string): string[] | undefined {
  const a = arr(p, key);
  return a?.map((x) => String(x));
}

/** Stripe metadata semantics: `metadata=` clears, `metadata[k]=` removes k, other keys merge. */
export function applyMetadata(current: Record<string, string>, p: Params): Record<string, string> {
  if (!('metadata' in p)) return current;
  const m = p.metadata;
  if (m === '' || m === null) return {};
  if (typeof m !== 'object') throw invalidRequest('Invalid object', 'metadata', 'parameter_invalid_string');
  const next = { ...current };
  for (const [k, v] of Object.entries(m)) {
    if (v === '' || v === null) delete next[k];
    else next[k] = String(v);
  }
  return next;
}

export function expandList(p: Params): string[] {
  return strList(p, 'expand') ?? [];
}

/** Range filter like `created[gte]=...` or an exact value. */
export function rangeFilter(p: Params, key: string): ((n: number) => boolean) | undefined {
  const v = p[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'object') {
    const n = Number(v);
    return (x) => x === n;
  }
  const r = v as Record<string, string>;
  const gt = r.gt !== undefined ? Number(r.gt) : undefined;
  const gte = r.gte !== undefined ? Number(r.gte) : undefined;
  const lt = r.lt !== undefined ? Number(r.lt) : undefined;
  const lte = r.lte !== undefined ? Number(r.lte) : undefined;
  return (x) =>
    (gt === undefined || x > gt) && (gte === undefined || x >= gte) && (lt === undefined || x < lt) && (lte === undefined || x <= lte);
}
