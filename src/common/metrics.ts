import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, register } from 'prom-client';

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

/**
 * Features that Stripe's active entitlements and the catalog (applied to the customer's
 * subscriptions) disagree on when Stripe's list is applied, by the side that grants them.
 */
export function entitlementMismatchCounter(): Counter<'granted_by'> {
  return (
    (register.getSingleMetric('tollgate_entitlement_mismatches_total') as Counter<'granted_by'> | undefined) ??
    new Counter({
      name: 'tollgate_entitlement_mismatches_total',
      help: "Features granted by only one of Stripe's active entitlements and the catalog when Stripe's list was applied, by granting side (stripe, catalog).",
      labelNames: ['granted_by'],
    })
  );
}
