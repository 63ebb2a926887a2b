import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { Logger } from 'pino';
import { BillingError, ErrorCode } from '../common/errors';
import { formatLimitError } from '../security/security-errors';

/** Codes Apollo itself assigns to requests that never reach a resolver; passed through as they are. */
const REQUEST_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
]);

const OUR_CODES = new Set<string>(Object.values(ErrorCode).filter((c) => c !== ErrorCode.INTERNAL_SERVER_ERROR));

/** graphql-js's hints for misspelt names ("Did you mean "viewer"?"), which name parts of the schema. */
const SUGGESTION = /\s*Did you mean .*\?$/;

/** The HTTP status Apollo gave a request-level error it raised itself, if it is a client error. */
function clientErrorStatus(error: unknown): number | null {
  if (!(error instanceof GraphQLError) || error.path) return null;
  const status = (error.extensions?.http as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : null;
}

/**
 * Every error leaves with an `extensions.code`. BillingErrors keep their message (it is written
 * for users); anything unexpected is logged with its stack and answered as INTERNAL_SERVER_ERROR.
 * With `hideSuggestions` (whenever introspection is off), graphql-js's "Did you mean ...?"
 * hints are cut from messages: they would hand out the schema that introspection keeps back.
 */
export function createErrorFormatter(log: Logger, options: { hideSuggestions?: boolean } = {}) {
  const format = createCodedFormatter(log);
  if (!options.hideSuggestions) return format;
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const result = format(formatted, error);
    return SUGGESTION.test(result.message) ? { ...result, message: result.message.replace(SUGGESTION, '') } : result;
  };
}

function createCodedFormatter(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    // Depth, complexity, alias and rate limits keep their own codes and retry hints.
    const limited = formatLimitError(formatted, error);
    if (limited) return limited;
    const original = unwrapResolverError(error);
    if (original instanceof BillingError) {
      return {
        message: original.message,
        locations: formatted.locations,
        path: formatted.path,
        extensions: { code: original.code, ...original.details },
      };
    }
    const code = formatted.extensions?.code;
    if (typeof code === 'string' && (REQUEST_CODES.has(code) || OUR_CODES.has(code)) && !formatted.path) {
      return { message: formatted.message, locations: formatted.locations, extensions: { code } };
    }
    // Apollo refuses some requests with a 4xx of its own and no code (a persisted query whose
    // hash does not match its text, an unsupported persisted-query version): the client's mistake.
    if (code === ErrorCode.INTERNAL_SERVER_ERROR && clientErrorStatus(error) !== null) {
      return { message: formatted.message, locations: formatted.locations, extensions: { code: 'BAD_REQUEST' } };
    }
    log.error({ err: original, path: formatted.path }, 'unexpected error while resolving');
    return {
      message: 'Internal server error',
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
    };
  };
}
