import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  idempotencyKey: string | null;
  status: number | null;
}

/** A canned answer instead of forwarding; return undefined to forward the request. */
export type Intercept = (request: { method: string; path: string }) =>
  | { status: number; body: unknown; headers?: Record<string, string> }
  | undefined;

/**
 * A pass-through HTTP proxy between the SDK and the emulator that records every request's
 * idempotency key and answer, so tests can see what the SDK really sent on its retries.
 * `intercept` answers chosen requests itself, to play Stripe behaviour the emulator has no
 * switch for (an expired meter session, a server without the v2 API).
 */
export async function startRecordingProxy(target: string, intercept?: Intercept): Promise<{
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}> {
  const targetUrl = new URL(target);
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: (req.url ?? '/').split('?')[0],
      idempotencyKey: (req.headers['idempotency-key'] as string | undefined) ?? null,
      status: null,
    };
    requests.push(record);
    const canned = intercept?.({ method: record.method, path: record.path });
    if (canned) {
      record.status = canned.status;
      req.resume();
      res.writeHead(canned.status, { 'content-type': 'application/json', ...canned.headers });
      res.end(JSON.stringify(canned.body));
      return;
    }
    const upstream = http.request(
      {
        host: targetUrl.hostname,
        port: targetUrl.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: targetUrl.host },
      },
      (upstreamRes) => {
        record.status = upstreamRes.statusCode ?? null;
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.on('error', () => upstream.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
