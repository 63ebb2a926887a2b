import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, register } from 'prom-client';

let collecting = false;

/**
 * `GET /metrics` in Prometheus' text format: the process metrics (memory, CPU, event loop lag)
 * plus everything the app registers in prom-client's default registry (usage forwarding, the
 * webhook ledger and the job engine).
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

/** Deliveries answered by `POST /webhooks/stripe`, by event type and what became of them. */
export const webhookDeliveries = new Counter({
  name: 'tollgate_webhook_deliveries_total',
  help: 'Stripe webhook deliveries by event type and outcome (recorded, ignored, duplicate, rejected)',
  labelNames: ['type', 'outcome'] as const,
});

/** From the moment a job fell due to the moment a worker started it. */
export const jobWaitSeconds = new Histogram({
  name: 'tollgate_job_wait_seconds',
  help: 'Time jobs waited in the queue after falling due, by task',
  labelNames: ['task'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
});

export const jobRunSeconds = new Histogram({
  name: 'tollgate_job_run_seconds',
  help: 'Time jobs ran, by task and outcome',
  labelNames: ['task', 'outcome'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
});

/** Stripe events applied by the job engine, by type and outcome (processed, ignored, failed). */
export const stripeEventsApplied = new Counter({
  name: 'tollgate_stripe_events_applied_total',
  help: 'Stripe events applied by the job engine, by event type and outcome',
  labelNames: ['type', 'outcome'] as const,
});

export type QueueDepthSource = () => Promise<{ task: string; state: string; count: number }[]>;
let queueDepthSource: QueueDepthSource | null = null;

/**
 * Jobs in the queue by task and state, read from the database at each scrape: a stuck queue
 * shows here (and alerts from here), while `/readyz` stays about the database.
 */
new Gauge({
  name: 'tollgate_job_queue_depth',
  help: 'Jobs waiting, running, or failed for good, by task',
  labelNames: ['task', 'state'] as const,
  async collect() {
    this.reset();
    if (!queueDepthSource) return;
    try {
      for (const row of await queueDepthSource()) this.set({ task: row.task, state: row.state }, row.count);
    } catch {
      // A scrape must not fail because the queue could not be read; the gauge is then empty.
    }
  },
});

/** Where the queue depth gauge reads from (the server that owns the database connection). */
export function setQueueDepthSource(source: QueueDepthSource | null): void {
  queueDepthSource = source;
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
