import type { EventArgs, EventSubscriber, FlushEventArgs, TransactionEventArgs } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Customer } from '../customers/customer.entity';
import { Subscription } from '../subscriptions/subscription.entity';
import { PlanLimit } from '../usage/plan-limit.entity';
import { DefinitionsCache } from './definitions-cache';
import { PlanFeature } from './plan-feature.entity';

/**
 * The PostgreSQL channel on which every write that changes a customer's features or limits says
 * so: the payload is the customer's id, or `*` when the catalog changed. NOTIFY is
 * transactional: listeners hear it when (and only if) the write commits, so no instance drops an
 * entry before the change is visible and then reloads the old rows.
 */
export const DEFINITIONS_CHANNEL = 'tollgate_definitions';
export const ALL_CUSTOMERS = '*';

/**
 * Says that a customer's (null: every customer's) features or limits changed: drops this
 * process's entry now, and notifies every instance (this one included) through `em`, inside
 * its transaction if it has one, so they drop theirs when the change commits.
 */
export async function publishDefinitionsChange(em: EntityManager, customerId: string | null): Promise<void> {
  definitionsCacheFor(em).invalidate(customerId);
  await em.execute('select pg_notify(?, ?)', [DEFINITIONS_CHANNEL, customerId ?? ALL_CUSTOMERS]);
}

/** Applies a payload heard on DEFINITIONS_CHANNEL to `cache`. */
export function applyNotification(cache: DefinitionsCache, payload: string | undefined): void {
  cache.invalidate(!payload || payload === ALL_CUSTOMERS ? null : payload);
}

/**
 * Publishes the changes the ORM writes: a customer row (its email), a subscription row (its
 * customer's limits and, through the recompute that follows, features) and the catalog's plan features and plan limits (every
 * customer). The notification goes out with the flush (inside the transaction, if any); this
 * process's entries are dropped at the flush and again at commit, so a read in between that
 * loaded the old rows is not kept.
 */
class DefinitionsWriteSubscriber implements EventSubscriber {
  /** Customers (null: all) changed by each EntityManager's flush under way. */
  private readonly flushing = new WeakMap<object, Set<string | null>>();
  /** Customers changed inside each EntityManager's open transaction. */
  private readonly uncommitted = new WeakMap<object, Set<string | null>>();

  constructor(private readonly cache: DefinitionsCache) {}

  getSubscribedEntities() {
    return [Customer, Subscription, PlanFeature, PlanLimit];
  }

  private changed(args: EventArgs<unknown>): void {
    const entity = args.entity;
    const customerId = entity instanceof Subscription ? entity.customer.id : entity instanceof Customer ? entity.id : null;
    const set = this.flushing.get(args.em) ?? new Set<string | null>();
    set.add(customerId);
    this.flushing.set(args.em, set);
  }

  afterCreate = (args: EventArgs<unknown>) => this.changed(args);
  afterUpdate = (args: EventArgs<unknown>) => this.changed(args);
  afterUpsert = (args: EventArgs<unknown>) => this.changed(args);
  afterDelete = (args: EventArgs<unknown>) => this.changed(args);

  async afterFlush(args: FlushEventArgs): Promise<void> {
    const changed = this.flushing.get(args.em);
    if (!changed) return;
    this.flushing.delete(args.em);
    const targets = changed.has(null) ? [null] : [...changed];
    const em = args.em as EntityManager;
    for (const customerId of targets) await publishDefinitionsChange(em, customerId);
    if (em.isInTransaction()) {
      const pending = this.uncommitted.get(em) ?? new Set<string | null>();
      for (const customerId of targets) pending.add(customerId);
      this.uncommitted.set(em, pending);
    }
  }

  afterTransactionCommit(args: TransactionEventArgs): void {
    const pending = this.uncommitted.get(args.em);
    if (!pending) return;
    this.uncommitted.delete(args.em);
    if (pending.has(null)) this.cache.invalidate(null);
    else for (const customerId of pending) this.cache.invalidate(customerId);
  }

  afterTransactionRollback(args: TransactionEventArgs): void {
    this.uncommitted.delete(args.em);
    this.flushing.delete(args.em);
  }
}

// One cache per ORM instance: every fork of an ORM shares its Configuration and EventManager.
const caches = new WeakMap<object, DefinitionsCache>();

/** The definitions cache of the ORM `em` belongs to, created (and hooked to the ORM's writes) on first use. */
export function definitionsCacheFor(em: EntityManager): DefinitionsCache {
  let cache = caches.get(em.config);
  if (!cache) {
    const created = new DefinitionsCache();
    em.getEventManager().registerSubscriber(new DefinitionsWriteSubscriber(created));
    caches.set(em.config, created);
    cache = created;
  }
  return cache;
}
