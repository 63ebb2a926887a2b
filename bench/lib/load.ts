import autocannon from 'autocannon';

export interface LoadOptions {
  duration: number;
  connections: number;
  pipelining: number;
}

export interface LoadResult {
  requests: number;
  /** How long the load ran, in seconds. */
  seconds: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors and timeouts, non-2xx answers, and 2xx answers that carry GraphQL errors. */
  errors: number;
  errorDetail: { connection: number; timeouts: number; non2xx: number; graphqlErrors: number; firstErrorBody?: string };
}

export interface LoadTarget {
  url: string;
  headers?: Record<string, string>;
  /** A fixed body, or one built per request (unique keys, fresh signatures). */
  body: string | (() => { body: string; headers?: Record<string, string> });
  /** Told of every answer (status and body) as it arrives. */
  onAnswer?: (status: number, body: string) => void;
}

/**
 * Drives one target with autocannon. Every answer's body is checked for a GraphQL `errors` entry
 * (Apollo answers 200 for resolver errors), for the ceiling as for Tollgate, so both pay the same.
 */
export async function runLoad(target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  let graphqlErrors = 0;
  let firstErrorBody: string | undefined;
  const onResponse = (status: number, body: string) => {
    target.onAnswer?.(status, body);
    const failed = status >= 300 || body.startsWith('{"errors"') || body.includes('"errors":[');
    if (failed) {
      if (status < 300) graphqlErrors++;
      firstErrorBody ??= `${status} ${body.slice(0, 500)}`;
    }
  };
  const baseHeaders = { 'content-type': 'application/json', ...target.headers };
  const build = target.body;
  const request =
    typeof build === 'string'
      ? { method: 'POST' as const, body: build, headers: baseHeaders, onResponse }
      : {
          method: 'POST' as const,
          headers: baseHeaders,
          setupRequest: (req: autocannon.Request) => {
            const next = build();
            return { ...req, body: next.body, headers: { ...baseHeaders, ...next.headers } };
          },
          onResponse,
        };
  const result = await autocannon({
    url: target.url,
    connections: options.connections,
    pipelining: options.pipelining,
    duration: options.duration,
    requests: [request],
  });
  const connection = result.errors - result.timeouts;
  return {
    requests: result.requests.total,
    seconds: result.duration,
    reqPerSec: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.non2xx + graphqlErrors,
    errorDetail: { connection, timeouts: result.timeouts, non2xx: result.non2xx, graphqlErrors, firstErrorBody },
  };
}
