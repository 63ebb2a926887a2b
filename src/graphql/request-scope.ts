import { AsyncLocalStorage } from 'node:async_hooks';
import type { RequestHandler } from 'express';

/**
 * What parts of Apollo that are handed no request (the landing page, the document store) need
 * to know about the request being answered.
 */
export interface RequestScope {
  /** The Host header. */
  host: string | undefined;
  /** Set once the context has verified the caller's token. */
  authenticated: boolean;
}

const scopes = new AsyncLocalStorage<RequestScope>();

/** The scope of the request being answered, if any. */
export function currentRequestScope(): RequestScope | undefined {
  return scopes.getStore();
}

/** Runs the rest of the request inside its scope. It answers nothing itself. */
export function requestScope(): RequestHandler {
  return function requestScope(req, _res, next) {
    scopes.run({ host: req.headers.host, authenticated: false }, next);
  };
}
