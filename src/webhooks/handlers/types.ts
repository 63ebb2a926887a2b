import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { StripeEventSnapshot, StripeGateway } from '../../stripe/stripe.gateway';

/** What applying an event did: `processed` changed (or confirmed) local state, `ignored` left it alone. */
export type HandlerOutcome = 'processed' | 'ignored';

export interface HandlerContext {
  /** The transaction the event is applied in (a forked EntityManager). */
  em: EntityManager;
  gateway: StripeGateway;
  log: Logger;
}

export type EventHandler = (event: StripeEventSnapshot, ctx: HandlerContext) => Promise<HandlerOutcome>;
