import type { Logger } from 'pino';
import type { MeterEventInput, MeterEventOutcome, StripeGateway } from '../../stripe/stripe.gateway';
import type { ClaimedUsageRow } from './usage-forward.repository';

/** Stripe's v2 stream takes at most 100 events a request. */
export const STRIPE_METER_BATCH = 100;

/**
 * Sends claimed usage rows to Stripe as Billing Meter events, each with its row id as Stripe's
 * `identifier` (Stripe drops a second event with the same one), in requests of up to 100 events,
 * `concurrency` requests at a time. Returns every row's outcome: a row whose customer has no
 * Stripe customer is refused here; a request that throws (a bug or a validation refusal, since
 * the gateway reports Stripe's failures as outcomes) leaves its rows to retry.
 */
export async function sendMeterEvents(
  deps: { gateway: StripeGateway; log: Logger; concurrency: number },
  rows: readonly ClaimedUsageRow[],
): Promise<Map<string, MeterEventOutcome>> {
  const outcomes = new Map<string, MeterEventOutcome>();
  const events: MeterEventInput[] = [];
  for (const row of rows) {
    if (!row.stripe_customer_id) {
      outcomes.set(row.id, {
        identifier: row.id,
        status: 'failed',
        retryable: false,
        error: { code: 'NO_STRIPE_CUSTOMER', message: 'The customer has no Stripe customer' },
      });
      continue;
    }
    events.push({
      eventName: row.meter,
      stripeCustomerId: row.stripe_customer_id,
      value: Number(row.quantity),
      identifier: row.id,
      timestamp: new Date(row.occurred_at),
    });
  }
  const chunks: MeterEventInput[][] = [];
  for (let i = 0; i < events.length; i += STRIPE_METER_BATCH) chunks.push(events.slice(i, i + STRIPE_METER_BATCH));
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const batch = chunks[next++];
      try {
        const sent = await deps.gateway.sendMeterEvents(batch);
        for (const o of sent.outcomes) outcomes.set(o.identifier, o);
      } catch (error) {
        deps.log.error({ err: error, count: batch.length }, 'sending meter events threw');
        const message = error instanceof Error ? error.message : String(error);
        for (const e of batch) outcomes.set(e.identifier, { identifier: e.identifier, status: 'failed', retryable: true, error: { code: 'SEND_ERROR', message } });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(deps.concurrency, chunks.length) }, worker));
  return outcomes;
}
