import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { BillingError, ErrorCode } from '../../common/errors';
import type { StripeEventSnapshot, StripeGateway } from '../../stripe/stripe.gateway';

/** What applying an event did: `processed` changed (or confirmed) local state, `ignored` left it alone. */
export type HandlerOutcome = 'processed' | 'ignored';

export interface RefetchContext {
  gateway: StripeGateway;
  /** Reads only, outside any transaction (to skip a Stripe read for objects that are not ours). */
  em: EntityManager;
}

export interface HandlerContext {
  /** The short transaction the snapshot is applied in (a forked EntityManager). */
  em: EntityManager;
  gateway: StripeGateway;
  log: Logger;
}

/**
 * Stripe's copy of the event's object and the time it stands for. A refetched object is dated by
 * when the read started, so a write of it never goes back behind anything applied later; the
 * event's own copy (used when Stripe no longer has the object) is dated by the event.
 */
export interface Fetched<S> {
  snapshot: S;
  syncedAt: Date;
  /** False when the object could not be refetched and is the event's own copy. */
  current: boolean;
}

/**
 * The handler of one family of event types (`customer.subscription.*`, `invoice.*`, ...), in two
 * steps so that no transaction is ever open across a Stripe call: `refetch` reads Stripe's
 * current state of the object outside any transaction, then `apply` writes it in one short
 * transaction that only moves rows forward. The job engine calls them once for all the pending
 * events of one object, so a burst of events costs one read.
 */
export interface EventHandler<S = unknown> {
  /** The event types this handler applies. */
  readonly types: readonly string[];
  /** Null: nothing to read (the event is not about an object of ours); `apply` gets null. */
  refetch(event: StripeEventSnapshot, ctx: RefetchContext): Promise<Fetched<S> | null>;
  apply(event: StripeEventSnapshot, fetched: Fetched<S> | null, ctx: HandlerContext): Promise<HandlerOutcome>;
}

/**
 * Reads the object from Stripe; when Stripe no longer has it, the event's own copy stands in,
 * dated by the event so it never overwrites a newer version. Other failures (429, 5xx) throw: the
 * job is retried with backoff.
 */
export async function refetchOrEventCopy<S>(event: StripeEventSnapshot, fromEvent: S, read: () => Promise<S>): Promise<Fetched<S>> {
  const startedAt = new Date();
  try {
    return { snapshot: await read(), syncedAt: startedAt, current: true };
  } catch (error) {
    if (!(error instanceof BillingError && error.code === ErrorCode.NOT_FOUND)) throw error;
    return { snapshot: fromEvent, syncedAt: event.createdAt, current: false };
  }
}
