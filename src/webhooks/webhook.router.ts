import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { webhookDeliveries } from '../common/metrics';
import { WebhookSignatureError } from '../stripe/stripe-errors';
import type { StripeEventSnapshot, StripeMode } from '../stripe/stripe.gateway';
import type { StripeWebhookVerifier } from '../stripe/webhook-verifier';
import type { WebhookIngestService } from './webhook.service';

export interface WebhookHandlerDeps {
  verifier: StripeWebhookVerifier;
  ingest: WebhookIngestService;
  /** The gateway's mode: only `live` expects events with `livemode: true`. */
  mode: StripeMode;
  log: Logger;
}

/**
 * `POST /webhooks/stripe`, mounted behind `express.raw`: `req.body` is the Buffer Stripe signed.
 * Verify the signature, check livemode, record the event and enqueue its job, answer. Stripe's
 * rule is to answer 2xx quickly, before any complex logic: applying happens on the job engine.
 * Answers: 400 for anything unverified (nothing stored), 200 for recorded, ignored and duplicate
 * events, 500 only when the database could not record it (Stripe delivers it again).
 */
export function createWebhookHandler({ verifier, ingest, mode, log }: WebhookHandlerDeps): RequestHandler {
  const expectLive = mode === 'live';

  return async (req, res) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let event: StripeEventSnapshot;
    try {
      event = verifier.verify(raw, req.get('stripe-signature'));
    } catch (error) {
      if (error instanceof WebhookSignatureError) {
        log.warn({ reason: error.reason }, 'stripe webhook rejected');
        webhookDeliveries.inc({ type: 'unverified', outcome: 'rejected' });
        res.status(400).json({ error: error.message });
        return;
      }
      log.error({ err: error }, 'stripe webhook could not be verified');
      res.status(500).json({ error: 'Webhook could not be verified.' });
      return;
    }

    if (event.livemode !== expectLive) {
      log.warn({ eventId: event.id, livemode: event.livemode }, 'stripe webhook livemode does not match the key');
      webhookDeliveries.inc({ type: 'unverified', outcome: 'rejected' });
      res.status(400).json({ error: `Event livemode ${event.livemode} does not match this ${mode} key.` });
      return;
    }

    try {
      const outcome = await ingest.receive(event, raw.toString('utf8'));
      webhookDeliveries.inc({ type: event.type, outcome });
      if (outcome === 'duplicate') {
        res.status(200).json({ received: true, duplicate: true });
        return;
      }
      res.status(200).json({ received: true, status: outcome === 'recorded' ? 'received' : 'ignored' });
    } catch (error) {
      // Recording failed (database down): nothing stored, Stripe retries.
      log.error({ err: error, eventId: event.id }, 'stripe webhook could not be recorded');
      res.status(500).json({ error: 'Event could not be recorded; it will be retried.' });
    }
  };
}
