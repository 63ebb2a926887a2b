import { createHash, timingSafeEqual } from 'node:crypto';
import cors from 'cors';
import type { Request, RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * Apollo serves the playground to a GET that prefers HTML over the GraphQL media types; the same
 * negotiation picks which header set applies here.
 */
function wantsPlaygroundPage(req: Request): boolean {
  return req.method === 'GET' && req.accepts(['application/json', 'application/graphql-response+json', 'text/html']) === 'text/html';
}

/**
 * helmet's headers on every response. The playground page is the one exception to the strict
 * Content-Security-Policy: GraphiQL runs inline scripts and styles, so that page (outside
 * production, or when ENABLE_PLAYGROUND is set) gets every other header but no CSP.
 */
export function securityHeaders(options: { playground: boolean }): RequestHandler {
  const strict = helmet();
  const playgroundPage = helmet({ contentSecurityPolicy: false });
  return function securityHeaders(req, res, next) {
    // The method first: a POST (every GraphQL operation) is never the playground page.
    const playground = options.playground && req.method === 'GET' && req.path.replace(/\/$/, '') === '/graphql' && wantsPlaygroundPage(req);
    (playground ? playgroundPage : strict)(req, res, next);
  };
}

/**
 * CORS for the GraphQL endpoint: only the configured origins get `access-control-allow-origin`;
 * any other origin gets no CORS headers, so its browser refuses to hand over the answer. The
 * allowed request headers include Apollo's CSRF-prevention header so browser clients can send it.
 */
export function graphqlCors(origins: string[]): RequestHandler {
  const allowed = new Set(origins);
  return cors({
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['authorization', 'content-type', 'apollo-require-preflight', 'x-apollo-operation-name', 'idempotency-key'],
    maxAge: 600,
  });
}

/**
 * Who may read `/metrics`. With METRICS_TOKEN set, only a request carrying
 * `Authorization: Bearer <METRICS_TOKEN>` (Prometheus' `authorization` setting); without it,
 * everyone outside production, and nobody in production (404, as if the route did not exist):
 * process and usage figures are not for the public.
 */
export function metricsAccess(options: { token?: string; production: boolean }): RequestHandler {
  const expected = options.token ? createHash('sha256').update(options.token).digest() : null;
  return (req, res, next) => {
    if (!expected) {
      if (!options.production) return next();
      res.status(404).json({ errors: [{ message: 'No such route', extensions: { code: 'NOT_FOUND' } }] });
      return;
    }
    const match = /^Bearer +(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    // Compared as hashes: equal lengths for timingSafeEqual, and no early exit on the first difference.
    if (match && timingSafeEqual(createHash('sha256').update(match[1]).digest(), expected)) return next();
    res.status(401).setHeader('www-authenticate', 'Bearer').json({ errors: [{ message: 'Send Authorization: Bearer <METRICS_TOKEN>', extensions: { code: 'UNAUTHENTICATED' } }] });
  };
}
