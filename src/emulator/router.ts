/** Minimal method + path-pattern router for the emulator's API routes. */
import type { Params } from './params';
import type { Obj, Store } from './store';
import { applyExpand, paginate } from './store';
import { expandList, rangeFilter } from './params';
import { ROUTE_PARAM_TYPES, routeKey } from './spec/routes';
import { STRIPE_PARAMS } from './spec/stripe-params.generated';
import type { ParamNode } from './spec/validate';

export interface Ctx {
  store: Store;
  method: string;
  /** Path without query string. */
  path: string;
  params: Params;
  pathParams: Record<string, string>;
  baseUrl: string;
  /** The request's bearer token. */
  apiKey: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface HandlerResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type Handler = (ctx: Ctx) => Obj | HandlerResult;

interface Route {
  method: string;
  pattern: string;
  regex: RegExp;
  names: string[];
  /** Literal path segments: a route with more of them wins (`/search` before `/:id`). */
  literals: number;
  handler: Handler;
  /** The accepted parameters; undefined: not declared, anything passes. */
  spec: ParamNode | undefined;
}

export interface Match {
  handler: Handler;
  pathParams: Record<string, string>;
  spec: ParamNode | undefined;
}

/** Static sub-paths Stripe serves beside `/:id`: never taken for an object id. */
const RESERVED_SEGMENTS = new Set(['search', 'create_preview', 'upcoming']);

export class Router {
  private readonly routes: Route[] = [];

  /** Every route as `METHOD /pattern` with the Stripe request type it accepts (null: none declared). */
  describe(): { key: string; method: string; pattern: string; type: string | null | undefined }[] {
    return this.routes.map((r) => {
      const key = routeKey(r.method, r.pattern);
      return { key, method: r.method, pattern: r.pattern, type: ROUTE_PARAM_TYPES[key] };
    });
  }

  add(method: string, pattern: string, handler: Handler): void {
    const names: string[] = [];
    const regex = new RegExp(
      '^' +
        pattern.replace(/:([a-zA-Z_]+)/g, (_m, name: string) => {
          names.push(name);
          return '([^/]+)';
        }) +
        '/?$',
    );
    const type = ROUTE_PARAM_TYPES[routeKey(method, pattern)];
    const spec = type ? STRIPE_PARAMS[type] : undefined;
    const literals = pattern.split('/').filter((seg) => seg && !seg.startsWith(':')).length;
    this.routes.push({ method, pattern, regex, names, literals, handler, spec });
  }

  /** Replaces the handler of an existing route by one built around it (extra behaviour for a route another file owns). */
  wrap(method: string, pattern: string, build: (original: Handler) => Handler): void {
    const key = routeKey(method, pattern);
    const route = this.routes.find((r) => routeKey(r.method, r.pattern) === key);
    if (!route) throw new Error(`no route ${key} to wrap`);
    route.handler = build(route.handler);
  }

  /** Returns the handler and path params, `'method'` when the path exists with another method. */
  match(method: string, path: string): Match | 'method' | undefined {
    let pathMatched = false;
    let best: { route: Route; m: RegExpExecArray } | undefined;
    for (const r of this.routes) {
      const m = r.regex.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== method) continue;
      if (r.names.some((_n, i) => RESERVED_SEGMENTS.has(m[i + 1]))) continue;
      // The route with the most literal segments wins, so static sub-paths (`/search`,
      // `/create_preview`, `/upcoming`) are never taken for an `/:id`, whatever the order
      // the resources registered them in.
      if (!best || r.literals > best.route.literals) best = { route: r, m };
    }
    if (!best) return pathMatched ? 'method' : undefined;
    const { route, m } = best;
    const pathParams: Record<string, string> = {};
    route.names.forEach((n, i) => (pathParams[n] = decodeURIComponent(m[i + 1])));
    return { handler: route.handler, pathParams, spec: route.spec };
  }
}

/** Renders an object and applies the request's `expand[]`. */
export function out(ctx: Ctx, o: Obj): Obj {
  return applyExpand(ctx.store, ctx.store.render(o), expandList(ctx.params));
}

export function isResult(x: unknown): x is HandlerResult {
  return typeof x === 'object' && x !== null && 'status' in x && 'body' in x && !('object' in x);
}

/** A Stripe list of the given newest-first objects, paginated, with `expand[]=data.*` applied. */
export function listOut(ctx: Ctx, items: Obj[]): Obj {
  // `created` (exact or `created[gt|gte|lt|lte]`) filters every list whose request type has it.
  const created = rangeFilter(ctx.params, 'created');
  if (created) items = items.filter((o) => typeof o.created === 'number' && created(o.created));
  const list = paginate(items, ctx.params, ctx.path, (o) => ctx.store.render(o));
  return applyExpand(ctx.store, list, expandList(ctx.params));
}
