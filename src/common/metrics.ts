import type { RequestHandler } from 'express';
import { collectDefaultMetrics, register } from 'prom-client';

let collecting = false;

/**
 * `GET /metrics` in Prometheus' text format: the process metrics (memory, CPU, event loop lag)
 * plus everything the app registers in prom-client's default registry (usage forwarding).
 */
export function metricsHandler(): RequestHandler {
  if (!collecting) {
    collecting = true;
    collectDefaultMetrics({ prefix: 'tollgate_' });
  }
  return async (_req, res) => {
    res.setHeader('content-type', register.contentType);
    res.send(await register.metrics());
  };
}
