/**
 * Injected failures for resilience tests: the next N matching API requests answer 429 or 500,
 * are delayed, or have their connection dropped. A faulted request never reaches a handler,
 * so it changes no state (delays excepted: a delayed request runs normally afterwards).
 */
export interface FaultSpec {
  /** 429 (rate_limit_error) or 500 (api_error). */
  status?: 429 | 500 | number;
  /** Delay before the normal answer, in milliseconds. */
  delayMs?: number;
  /** Destroy the socket without answering. */
  reset?: boolean;
  /** How many matching requests this fault applies to (default 1). */
  count?: number;
  /** Only requests whose path starts with this prefix. */
  path?: string;
  /** Only requests with this HTTP method. */
  method?: string;
}

export interface ActiveFault extends Required<Pick<FaultSpec, 'count'>> {
  id: number;
  status?: number;
  delayMs?: number;
  reset?: boolean;
  path?: string;
  method?: string;
  remaining: number;
}

export class FaultController {
  private faults: ActiveFault[] = [];
  private seq = 0;

  /** Adds a fault; returns its description. */
  add(spec: FaultSpec): ActiveFault {
    const count = spec.count ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new Error('count must be a positive integer');
    if (spec.status === undefined && spec.delayMs === undefined && !spec.reset) {
      throw new Error('a fault needs one of status, delayMs or reset');
    }
    if (spec.status !== undefined && spec.status !== 429 && spec.status !== 500 && spec.status !== 502 && spec.status !== 503) {
      throw new Error('status must be 429, 500, 502 or 503');
    }
    const f: ActiveFault = {
      id: ++this.seq,
      count,
      remaining: count,
      status: spec.status,
      delayMs: spec.delayMs,
      reset: spec.reset,
      path: spec.path,
      method: spec.method?.toUpperCase(),
    };
    this.faults.push(f);
    return f;
  }

  failNext(status: 429 | 500, count = 1, filter: { path?: string; method?: string } = {}): ActiveFault {
    return this.add({ status, count, ...filter });
  }

  delayNext(delayMs: number, count = 1, filter: { path?: string; method?: string } = {}): ActiveFault {
    return this.add({ delayMs, count, ...filter });
  }

  dropNext(count = 1, filter: { path?: string; method?: string } = {}): ActiveFault {
    return this.add({ reset: true, count, ...filter });
  }

  clear(): void {
    this.faults = [];
  }

  list(): ActiveFault[] {
    return this.faults.map((f) => ({ ...f }));
  }

  /** Consumes and returns the first fault matching this request, if any. */
  take(method: string, path: string): ActiveFault | undefined {
    const i = this.faults.findIndex(
      (f) => (!f.method || f.method === method) && (!f.path || path.startsWith(f.path)),
    );
    if (i < 0) return undefined;
    const f = this.faults[i];
    f.remaining--;
    if (f.remaining <= 0) this.faults.splice(i, 1);
    return { ...f };
  }
}
