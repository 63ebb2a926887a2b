/**
 * HTTP front of the emulator: reads the request, applies injected faults, authenticates the
 * Bearer key, replays idempotent POSTs, dispatches to the API router and writes Stripe's JSON.
 */
import type http from 'node:http';
import { createHash } from 'node:crypto';
import { ApiError, invalidRequest } from './errors';
import { newId } from './ids';
import { parseForm, type Params } from './params';
import { isResult, type Ctx, type Router } from './router';
import { DEFAULT_API_VERSION, type Store } from './store';
import { validateParams } from './spec/validate';
import type { FaultController } from './faults';

export interface RawRequest {
  method: string;
  path: string;
  query: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type ExtraHandler = (req: RawRequest) => RawResponse | Promise<RawResponse> | undefined;

export interface StoredResponse {
  fingerprint: string;
  response: RawResponse;
}

const MAX_BODY = 10 * 1024 * 1024;

export class ApiServer {
  private readonly idempotency = new Map<string, StoredResponse>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Bearer tokens other than sk_test_/rk_test_ keys that the router accepts (meter event sessions). */
  tokenAccepted: (token: string, path: string) => boolean = () => false;
  /** The test clock time a request runs at (a customer on a test clock), null for the global clock. */
  clockTime: (ctx: Ctx) => number | null = () => null;

  constructor(
    private readonly store: Store,
    private readonly router: Router,
    private readonly faults: FaultController,
    private readonly extra: ExtraHandler,
    private readonly logger: (line: string) => void,
  ) {}

  resetIdempotency(): void {
    this.idempotency.clear();
  }

  /** Stored idempotent responses, oldest first (for the state file). */
  idempotencyEntries(): [string, StoredResponse][] {
    return [...this.idempotency];
  }

  restoreIdempotency(entries: [string, StoredResponse][]): void {
    for (const [scope, stored] of entries) this.idempotency.set(scope, stored);
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const raw: RawRequest = {
        method: (req.method ?? 'GET').toUpperCase(),
        path: q < 0 ? url : url.slice(0, q),
        query: q < 0 ? '' : url.slice(q + 1),
        headers: req.headers,
        body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
      };
      this.handle(raw, res).catch((e: unknown) => {
        this.logger(`internal error: ${e instanceof Error ? e.stack : String(e)}`);
        if (!res.headersSent) {
          this.write(res, this.json(500, { error: { type: 'api_error', message: 'An unknown error occurred.' } }, newId('req_', 14)));
        }
      });
    });
    req.on('error', () => undefined);
  };

  private write(res: http.ServerResponse, r: RawResponse): void {
    if (res.destroyed) return;
    res.writeHead(r.status, { ...r.headers, 'Content-Length': Buffer.byteLength(r.body) });
    res.end(r.body);
  }

  private json(status: number, body: unknown, requestId: string, headers: Record<string, string> = {}): RawResponse {
    return {
      status,
      headers: {
        'Content-Type': 'application/json',
        'request-id': requestId,
        'Stripe-Version': DEFAULT_API_VERSION,
        'Access-Control-Allow-Origin': '*',
        'Cache-Control': 'no-cache, no-store',
        ...headers,
      },
      body: JSON.stringify(body, null, 2),
    };
  }

  private async handle(raw: RawRequest, res: http.ServerResponse): Promise<void> {
    const requestId = newId('req_', 14);
    const isApi = raw.path.startsWith('/v1/') || raw.path.startsWith('/v2/');
    if (!isApi) {
      const r = await this.extra(raw);
      this.write(res, r ?? this.json(404, { error: { type: 'invalid_request_error', message: `Unrecognized request URL (${raw.method}: ${raw.path}).` } }, requestId));
      return;
    }
    const fault = this.faults.take(raw.method, raw.path);
    if (fault) {
      if (fault.reset) {
        this.logger(`fault: dropped ${raw.method} ${raw.path}`);
        res.socket?.destroy();
        return;
      }
      if (fault.status) {
        this.logger(`fault: ${fault.status} for ${raw.method} ${raw.path}`);
        const body =
          fault.status === 429
            ? { type: 'rate_limit_error', code: 'rate_limit', message: 'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.' }
            : { type: 'api_error', message: 'An unknown error occurred while processing your request.' };
        // Stripe sends no Retry-After; its SDKs retry a 429 only when told to by `Stripe-Should-Retry: true`,
        // which Stripe sets on retryable rate limits (lock contention).
        const headers: Record<string, string> = fault.status === 429 ? { 'Stripe-Should-Retry': 'true' } : {};
        this.write(res, this.json(fault.status, { error: body }, requestId, headers));
        return;
      }
      if (fault.delayMs) {
        this.logger(`fault: delaying ${raw.method} ${raw.path} by ${fault.delayMs} ms`);
        await this.sleep(fault.delayMs);
      }
    }
    const apiVersion = (raw.headers['stripe-version'] as string | undefined) ?? DEFAULT_API_VERSION;
    const idemKey = (raw.headers['idempotency-key'] as string | undefined) ?? null;
    this.write(res, this.echo(this.api(raw, requestId), raw.method === 'POST' || raw.method === 'DELETE' ? idemKey : null, apiVersion));
  }

  /** Runs one API request synchronously, so each request is atomic with respect to the state. */
  private api(raw: RawRequest, requestId: string): RawResponse {
    const auth = raw.headers.authorization ?? '';
    let key = '';
    if (auth.startsWith('Bearer ')) key = auth.slice(7).trim();
    else if (auth.startsWith('Basic ')) key = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':')[0];
    if (!key) {
      return this.json(401, {
        error: {
          type: 'invalid_request_error',
          message:
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        },
      }, requestId);
    }
    const isKey = /^(sk|rk)_test_[A-Za-z0-9_]+$/.test(key);
    if (!isKey && !this.tokenAccepted(key, raw.path)) {
      const masked = key.length > 8 ? `${key.slice(0, 8)}${'*'.repeat(Math.max(0, key.length - 12))}${key.slice(-4)}` : '****';
      return this.json(401, {
        error: { type: 'invalid_request_error', code: 'api_key_invalid', message: `Invalid API Key provided: ${masked}` },
      }, requestId);
    }
    const apiVersion = (raw.headers['stripe-version'] as string | undefined) ?? DEFAULT_API_VERSION;
    const idemKey = raw.method === 'POST' ? ((raw.headers['idempotency-key'] as string | undefined) ?? null) : null;
    // The v2 meter event stream deduplicates by event identifier, so it skips response storage.
    const storeIdem = idemKey !== null && raw.path !== '/v2/billing/meter_event_stream';
    const scope = `${key}\u0000${idemKey}`;
    const fingerprint = storeIdem ? createHash('sha256').update(`${raw.method} ${raw.path}?${raw.query}\n`).update(raw.body).digest('hex') : '';
    if (storeIdem) {
      const prior = this.idempotency.get(scope);
      if (prior) {
        if (prior.fingerprint !== fingerprint) {
          return this.json(400, {
            error: {
              type: 'idempotency_error',
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idemKey}' if you meant to execute a different request.`,
            },
          }, requestId);
        }
        return { ...prior.response, headers: { ...prior.response.headers, 'Idempotent-Replayed': 'true', 'Original-Request': prior.response.headers['request-id'] } };
      }
    }
    let params: Params;
    try {
      params = this.parse(raw);
    } catch (e) {
      return this.errorResponse(e, requestId);
    }
    const match = this.router.match(raw.method, raw.path);
    if (!match || match === 'method') {
      return this.json(404, {
        error: { type: 'invalid_request_error', message: `Unrecognized request URL (${raw.method}: ${raw.path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.` },
      }, requestId);
    }
    if (match.spec) {
      try {
        validateParams(params, match.spec);
      } catch (e) {
        return this.errorResponse(e, requestId);
      }
    }
    const ctx: Ctx = {
      store: this.store,
      method: raw.method,
      path: raw.path,
      params,
      pathParams: match.pathParams,
      baseUrl: this.store.baseUrl,
      apiKey: key,
      headers: raw.headers,
    };
    this.store.request = { id: requestId, idempotencyKey: idemKey, apiVersion };
    let response: RawResponse;
    let save = true;
    try {
      const result = this.store.atTime(this.clockTime(ctx), () => this.store.transaction(() => match.handler(ctx)));
      response = isResult(result)
        ? this.json(result.status, result.body, requestId, result.headers)
        : this.json(200, result, requestId);
    } catch (e) {
      response = this.errorResponse(e, requestId);
      // Like Stripe, only requests that began executing keep their result for replay:
      // card errors do, validation errors do not.
      save = e instanceof ApiError && e.body.type === 'card_error';
    } finally {
      this.store.request = { id: null, idempotencyKey: null, apiVersion: DEFAULT_API_VERSION };
    }
    if (storeIdem && save) this.idempotency.set(scope, { fingerprint, response });
    return response;
  }

  /** Headers the SDK reads back: the idempotency key it sent and the API version that answered. */
  private echo(response: RawResponse, idemKey: string | null, apiVersion: string): RawResponse {
    const headers: Record<string, string> = { ...response.headers, 'Stripe-Version': apiVersion };
    if (idemKey !== null) headers['Idempotency-Key'] = idemKey;
    return { ...response, headers };
  }

  private errorResponse(e: unknown, requestId: string): RawResponse {
    if (e instanceof ApiError) {
      const headers = { ...e.headers };
      return this.json(e.status, { error: { ...e.body, request_log_url: undefined } }, requestId, headers);
    }
    this.logger(`internal error: ${e instanceof Error ? e.stack : String(e)}`);
    return this.json(500, { error: { type: 'api_error', message: 'An unknown error occurred while processing your request.' } }, requestId);
  }

  private parse(raw: RawRequest): Params {
    const query = raw.query ? parseForm(raw.query) : {};
    if (raw.body.length === 0) return query;
    const type = String(raw.headers['content-type'] ?? '');
    const text = raw.body.toString('utf8');
    if (type.includes('application/json')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw invalidRequest('Invalid JSON body.');
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalidRequest('The request body must be a JSON object.');
      return { ...query, ...(parsed as Params) };
    }
    return { ...query, ...parseForm(text) };
  }
}
