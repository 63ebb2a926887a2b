import { GraphQLError, type ASTNode, type GraphQLFormattedError } from 'graphql';
import { HeaderMap } from '@apollo/server';
import { ErrorCode } from '../common/errors';

/** Codes of requests refused before execution by a limit (src/security). */
export enum LimitCode {
  QUERY_TOO_DEEP = 'QUERY_TOO_DEEP',
  QUERY_TOO_COMPLEX = 'QUERY_TOO_COMPLEX',
  TOO_MANY_ALIASES = 'TOO_MANY_ALIASES',
}

const CODES = new Set<string>([...Object.values(LimitCode), ErrorCode.RATE_LIMITED]);
/** Extensions a client may act on: the limit, what the request used, when to retry. */
const KEPT_EXTENSIONS = ['limit', 'actual', 'retryAfterSeconds'] as const;

/** A request-level error with a limit code, located at `node` when given; answered with HTTP 400. */
export function limitError(code: LimitCode, message: string, limit: number, actual: number, node?: ASTNode): GraphQLError {
  return new GraphQLError(message, { nodes: node, extensions: { code, limit, actual, http: { status: 400 } } });
}

/** RATE_LIMITED with the wait in seconds, both in the body and as a Retry-After header. */
export function rateLimitedError(retryAfterSeconds: number): GraphQLError {
  return new GraphQLError(`Too many requests; retry in ${retryAfterSeconds} s`, {
    extensions: {
      code: ErrorCode.RATE_LIMITED,
      retryAfterSeconds,
      // Apollo iterates these headers as a Map; the GraphQLErrorExtensions typing that
      // graphql-yoga's types add (a plain record) does not describe what Apollo reads.
      http: { status: 429, headers: new HeaderMap([['retry-after', String(retryAfterSeconds)]]) as unknown as Record<string, string> },
    },
  });
}

/**
 * Apollo re-codes every validation-rule error as GRAPHQL_VALIDATION_FAILED and keeps the rule's
 * own error as `originalError`, so the code is looked up on both. Returns null for any other error.
 */
export function formatLimitError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError | null {
  const candidates = [error, (error as GraphQLError | undefined)?.originalError];
  for (const candidate of candidates) {
    if (!(candidate instanceof GraphQLError)) continue;
    const code = candidate.extensions?.code;
    if (typeof code !== 'string' || !CODES.has(code)) continue;
    const extensions: Record<string, unknown> = { code };
    for (const key of KEPT_EXTENSIONS) if (candidate.extensions[key] !== undefined) extensions[key] = candidate.extensions[key];
    return { message: candidate.message, locations: formatted.locations, extensions };
  }
  return null;
}
