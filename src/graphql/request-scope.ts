import { AsyncLocalStorage } from 'node:async_hooks';
import type { RequestHandler } from 'express';

/**
 * What a part of Apollo that is handed no request (the landing page) needs to know about the
 * request being answered.
 */
export interface RequestScope {
  /** The Host header. */
  host: string | undefined;
}

const scopes = new AsyncLocalStorage<RequestScope>();

/** The scope of the request being answered, if any. */
export function currentRequestScope(): RequestScope | undefined {
  return scopes.getStore();
}

/**
 * Runs the rest of a GET request inside its scope (only a GET can ask for the landing page: a
 * POST never pays for the scope's bookkeeping on every promise it makes). It answers nothing itself.
 */
export function requestScope(): RequestHandler {
  return function requestScope(req, _res, next) {
    if (req.method !== 'GET') return next();
    scopes.run({ host: req.headers.host }, next);
  };
}
