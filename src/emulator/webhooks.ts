/**
 * Signs events exactly as Stripe does (`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.payload">`)
 * and delivers them to webhook endpoints: one delivery in flight per endpoint so events arrive in
 * creation order, retried with backoff while the endpoint fails, every timer cleared by close().
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Obj } from './store';

export function signPayload(payload: string, secret: string, timestamp: number): string {
  const sig = createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${sig}`;
}

export interface Endpoint {
  id: string;
  url: string;
  secret: string;
  enabledEvents: string[];
  disabled?: boolean;
}

interface Pending {
  event: Obj;
  payload: string;
  attempts: number;
}

interface EndpointQueue {
  endpoint: Endpoint;
  queue: Pending[];
  busy: boolean;
  timer?: NodeJS.Timeout;
  request?: http.ClientRequest;
}

export interface DeliveryRecord {
  endpoint: string;
  event: string;
  type: string;
  attempt: number;
  status: number | null;
  error?: string;
  at: number;
}

export function endpointWants(e: Endpoint, type: string): boolean {
  return !e.disabled && (e.enabledEvents.includes('*') || e.enabledEvents.includes(type));
}

export class WebhookDelivery {
  private readonly queues = new Map<string, EndpointQueue>();
  private closed = false;
  readonly log: DeliveryRecord[] = [];

  constructor(
    private readonly retryDelaysMs: number[],
    private readonly logger: (line: string) => void,
    private readonly nowSeconds: () => number,
    private readonly timeoutMs = 10_000,
  ) {}

  setEndpoint(endpoint: Endpoint): void {
    const q = this.queues.get(endpoint.id);
    if (q) q.endpoint = endpoint;
    else this.queues.set(endpoint.id, { endpoint, queue: [], busy: false });
  }

  removeEndpoint(id: string): void {
    const q = this.queues.get(id);
    if (!q) return;
    if (q.timer) clearTimeout(q.timer);
    q.request?.destroy();
    this.queues.delete(id);
  }

  endpoints(): Endpoint[] {
    return [...this.queues.values()].map((q) => q.endpoint);
  }

  countFor(type: string): number {
    let n = 0;
    for (const q of this.queues.values()) if (endpointWants(q.endpoint, type)) n++;
    return n;
  }

  enqueue(event: Obj): void {
    if (this.closed) return;
    let payload: string | undefined;
    for (const q of this.queues.values()) {
      if (!endpointWants(q.endpoint, event.type)) continue;
      payload ??= JSON.stringify(event, null, 2);
      q.queue.push({ event, payload, attempts: 0 });
      if (!q.busy) this.pump(q);
    }
  }

  /** Number of deliveries not yet acknowledged with a 2xx (or given up). */
  pendingCount(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.queue.length;
    return n;
  }

  private pump(q: EndpointQueue): void {
    if (this.closed || q.busy) return;
    const next = q.queue[0];
    if (!next) return;
    q.busy = true;
    next.attempts++;
    this.send(q, next, (status, error) => {
      q.busy = false;
      q.request = undefined;
      if (this.closed || !this.queues.has(q.endpoint.id)) return;
      this.log.push({
        endpoint: q.endpoint.id,
        event: next.event.id,
        type: next.event.type,
        attempt: next.attempts,
        status,
        error,
        at: Date.now(),
      });
      const ok = status !== null && status >= 200 && status < 300;
      if (ok || next.attempts > this.retryDelaysMs.length) {
        if (!ok) this.logger(`webhook ${next.event.id} to ${q.endpoint.url} given up after ${next.attempts} attempts`);
        q.queue.shift();
        this.pump(q);
        return;
      }
      const delay = this.retryDelaysMs[next.attempts - 1];
      this.logger(`webhook ${next.event.id} to ${q.endpoint.url} failed (${error ?? status}); retry in ${delay} ms`);
      q.busy = true;
      q.timer = setTimeout(() => {
        q.timer = undefined;
        q.busy = false;
        this.pump(q);
      }, delay);
    });
  }

  private send(q: EndpointQueue, p: Pending, done: (status: number | null, error?: string) => void): void {
    let finished = false;
    const finish = (status: number | null, error?: string) => {
      if (finished) return;
      finished = true;
      done(status, error);
    };
    let url: URL;
    try {
      url = new URL(q.endpoint.url);
    } catch {
      finish(null, 'invalid url');
      return;
    }
    const header = signPayload(p.payload, q.endpoint.secret, this.nowSeconds());
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(
      url,
      {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Length': Buffer.byteLength(p.payload),
          'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          'Stripe-Signature': header,
          Accept: '*/*; q=0.5, application/xml',
          'Cache-Control': 'no-cache',
        },
        timeout: this.timeoutMs,
      },
      (res) => {
        res.resume();
        res.on('end', () => finish(res.statusCode ?? null));
        res.on('error', (e) => finish(null, e.message));
      },
    );
    q.request = req;
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => finish(null, e.message));
    req.end(p.payload);
  }

  close(): void {
    this.closed = true;
    for (const q of this.queues.values()) {
      if (q.timer) clearTimeout(q.timer);
      q.request?.destroy();
      q.queue = [];
    }
  }
}
