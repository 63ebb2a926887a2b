import type { MikroORM } from '@mikro-orm/postgresql';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { WebhookSignatureError } from '../stripe/stripe-errors';
import type { StripeEventSnapshot, StripeGateway } from '../stripe/stripe.gateway';
import { WebhookService } from './webhook.service';

export interface WebhookHandlerDeps {
  orm: MikroORM;
  gateway: StripeGateway;
  log: Logger;
}

/**
 * `POST /webhooks/stripe`, mounted behind `express.raw`: `req.body` is the Buffer Stripe signed.
 * Verify the signature, check livemode, record the event once, apply it in one transaction.
 * Answers: 400 for anything unverified (nothing stored), 200 for applied, ignored and duplicate
 * events, 500 when applying failed so that Stripe delivers it again.
 */
export function createWebhookHandler({ orm, gateway, log }: WebhookHandlerDeps): RequestHandler {
  const service = new WebhookService(orm, gateway, log);
  const expectLive = gateway.mode === 'live';

  return async (req, res) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let event: StripeEventSnapshot;
    try {
      event = gateway.constructWebhookEvent(raw, req.get('stripe-signature'));
    } catch (error) {
      if (error instanceof WebhookSignatureError) {
        log.warn({ reason: error.reason }, 'stripe webhook rejected');
        res.status(400).json({ error: error.message });
        return;
      }
      log.error({ err: error }, 'stripe webhook could not be verified');
      res.status(500).json({ error: 'Webhook could not be verified.' });
      return;
    }

    if (event.livemode !== expectLive) {
      log.warn({ eventId: event.id, livemode: event.livemode }, 'stripe webhook livemode does not match the key');
      res.status(400).json({ error: `Event livemode ${event.livemode} does not match this ${gateway.mode} key.` });
      return;
    }

    try {
      const result = await service.receive(event);
      if (result.outcome === 'failed') {
        res.status(500).json({ error: 'Event could not be applied; it will be retried.' });
        return;
      }
      if (result.outcome === 'duplicate') {
        res.status(200).json({ received: true, duplicate: true });
        return;
      }
      res.status(200).json({ received: true, status: result.outcome });
    } catch (error) {
      // Recording failed (database down): nothing applied, Stripe retries.
      log.error({ err: error, eventId: event.id }, 'stripe webhook could not be recorded');
      res.status(500).json({ error: 'Event could not be recorded; it will be retried.' });
    }
  };
}
