import { Counter, Gauge, register } from 'prom-client';

export interface UsageMetrics {
  /** Age of the oldest pending usage row, in seconds. */
  lag: Gauge;
  forwarded: Counter<'outcome'>;
}

let metrics: UsageMetrics | undefined;

/**
 * The forwarder's metrics in prom-client's default registry (what `/metrics` serves). Created
 * once per process: several forwarders in one process (tests, benchmarks) share them, and
 * registering a name twice would throw.
 */
export function usageMetrics(): UsageMetrics {
  metrics ??= {
    lag:
      (register.getSingleMetric('tollgate_usage_forward_lag_seconds') as Gauge | undefined) ??
      new Gauge({ name: 'tollgate_usage_forward_lag_seconds', help: 'Age of the oldest usage event not yet forwarded to Stripe, in seconds.' }),
    forwarded:
      (register.getSingleMetric('tollgate_usage_events_forwarded_total') as Counter<'outcome'> | undefined) ??
      new Counter({
        name: 'tollgate_usage_events_forwarded_total',
        help: 'Usage events by forwarding outcome: sent, retrying (retryable failure), failed (refused for good).',
        labelNames: ['outcome'],
      }),
  };
  return metrics;
}
