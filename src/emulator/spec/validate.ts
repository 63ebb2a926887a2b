/**
 * Checks a request's parameters against the tree of its Stripe request type, the way Stripe's
 * API does before anything runs: unknown names answer `parameter_unknown`, a missing required
 * name `parameter_missing`, a non-integer `parameter_invalid_integer`, a value outside an enum
 * `parameter_invalid_string` (or `parameter_invalid_empty` for an empty string that cannot unset).
 *
 * A tree node is `'s'` (string), `'n'` (number), `'b'` (boolean), `'m'` (free-form map such as
 * metadata), `'*'` (anything), a list of accepted strings (`''` when the value can be unset,
 * `'#n'` when a number is accepted too), or an object of named children where `'!'` lists the
 * required names and `'~'` says a scalar is accepted in place of the object. Arrays are
 * transparent: each element is checked against the node.
 */
import type { ApiError} from '../errors';
import { invalidRequest, missingParam, unknownParam } from '../errors';

export type ParamNode = string | readonly string[] | { readonly [k: string]: ParamNode };

/** Fields Stripe takes as decimals rather than integers. */
const DECIMAL = /percent|_decimal$|^value$|^amount_decimal$/;

function leafName(param: string): string {
  const m = /([A-Za-z_]+)\]?$/.exec(param.replace(/\[\d+\]$/, ''));
  return m ? m[1] : param;
}

function invalidEmpty(param: string): ApiError {
  return invalidRequest(
    `You passed an empty string for '${param}'. We assume empty values are an attempt to unset a parameter; however '${param}' cannot be unset. You should remove '${param}' from your request or supply a non-empty value.`,
    param,
    'parameter_invalid_empty',
  );
}

function oneOf(values: string[]): string {
  if (values.length <= 1) return values.join('');
  return `${values.slice(0, -1).join(', ')}, or ${values[values.length - 1]}`;
}

function checkScalar(value: unknown, node: string | readonly string[], param: string): void {
  if (value === null || value === undefined) return;
  if (typeof value === 'object') {
    if (node === '*' ) return;
    throw invalidRequest(`Invalid ${Array.isArray(node) ? 'string' : node === 'n' ? 'integer' : node === 'b' ? 'boolean' : 'string'}: ${JSON.stringify(value)}`, param, node === 'n' ? 'parameter_invalid_integer' : 'parameter_invalid_string');
  }
  const text = String(value);
  if (Array.isArray(node)) {
    if (node.includes(text)) return;
    if (node.includes('#n') && text !== '' && Number.isFinite(Number(text))) return;
    if (text === '') throw invalidEmpty(param);
    const names = node.filter((v) => v !== '' && v !== '#n');
    throw invalidRequest(`Invalid ${param}: must be one of ${oneOf(names)}`, param, 'parameter_invalid_string');
  }
  switch (node) {
    case 'n': {
      if (text === '') return;
      const n = Number(text);
      if (DECIMAL.test(leafName(param))) {
        if (!Number.isFinite(n)) throw invalidRequest(`Invalid decimal: ${text}`, param, 'parameter_invalid_integer');
        return;
      }
      if (!Number.isInteger(n) || !/^-?\d+$/.test(text.trim())) throw invalidRequest(`Invalid integer: ${text}`, param, 'parameter_invalid_integer');
      return;
    }
    case 'b':
      if (text === '' || text === 'true' || text === 'false') return;
      throw invalidRequest(`Invalid boolean: ${text}`, param, 'parameter_invalid_string');
    default:
      return;
  }
}

function check(value: unknown, node: ParamNode, param: string): void {
  if (node === '*' || value === undefined) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => check(v, node, `${param}[${i}]`));
    return;
  }
  if (typeof node === 'string' && node === 'm') {
    if (value === '' || value === null) return;
    if (typeof value !== 'object') throw invalidRequest(`Invalid object`, param, 'parameter_invalid_string');
    return;
  }
  if (typeof node === 'string' || Array.isArray(node)) {
    checkScalar(value, node as string | readonly string[], param);
    return;
  }
  const shape = node as { readonly [k: string]: ParamNode };
  if (value === '' || value === null) return;
  if (typeof value !== 'object') {
    if (shape['~']) return;
    throw invalidRequest(`Invalid object`, param, 'parameter_invalid_string');
  }
  checkObject(value as Record<string, unknown>, shape, param);
}

function checkObject(value: Record<string, unknown>, shape: { readonly [k: string]: ParamNode }, prefix: string): void {
  const name = (k: string) => (prefix ? `${prefix}[${k}]` : k);
  for (const k of Object.keys(value)) {
    if (k === '!' || k === '~' || !(k in shape)) throw unknownParam(name(k));
  }
  const required = shape['!'] as readonly string[] | undefined;
  if (required) {
    for (const k of required) {
      const v = value[k];
      if (v === undefined || v === null || (v === '' && typeof shape[k] !== 'object')) throw missingParam(name(k));
    }
  }
  for (const [k, v] of Object.entries(value)) check(v, shape[k], name(k));
}

/** Throws Stripe's error for the first parameter the request type does not accept. */
export function validateParams(params: Record<string, unknown>, spec: ParamNode): void {
  if (typeof spec !== 'object' || Array.isArray(spec)) return;
  checkObject(params, spec as { readonly [k: string]: ParamNode }, '');
}
