/** Minimal method + path-pattern router for the emulator's API routes. */
import type { Params } from './params';
import type { Obj, Store } from './store';
import { applyExpand, paginate } from './store';
import { expandList } from './params';

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
  regex: RegExp;
  names: string[];
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

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
    this.routes.push({ method, regex, names, handler });
  }

  /** Returns the handler and path params, `'method'` when the path exists with another method. */
  match(method: string, path: string): { handler: Handler; pathParams: Record<string, string> } | 'method' | undefined {
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.regex.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== method) continue;
      const pathParams: Record<string, string> = {};
      r.names.forEach((n, i) => (pathParams[n] = decodeURIComponent(m[i + 1])));
      return { handler: r.handler, pathParams };
    }
    return pathMatched ? 'method' : undefined;
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
  const list = paginate(items, ctx.params, ctx.path, (o) => ctx.store.render(o));
  return applyExpand(ctx.store, list, expandList(ctx.params));
}
