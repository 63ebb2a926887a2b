import { FlushMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';

/** Metadata that marks Stripe objects created from the catalog file; nothing without it is ever changed. */
export const OWNER_METADATA = { tollgate_managed: 'true' } as const;

export type ChangeAction = 'create' | 'update' | 'replace' | 'reactivate' | 'archive' | 'import' | 'conflict' | 'detach';

/** One line of the plan: what changes where. */
export interface CatalogChange {
  where: 'stripe' | 'database';
  action: ChangeAction;
  object: 'meter' | 'product' | 'price' | 'feature' | 'product feature' | 'plan limit';
  /** Meter event name, product code, price or feature lookup key, or `plan/feature` for a product feature, `plan/meter` for a plan limit. */
  key: string;
  detail: string;
}

/** Stripe ids of the catalog after the Stripe step of a sync; null for what a dry run would create. */
export interface CatalogStripeState {
  meters: Record<string, string | null>;
  products: Record<string, string | null>;
  prices: Record<string, string | null>;
  /** Owned Stripe products and prices that are (or, in a dry run, would be) archived. */
  archivedProductIds: Set<string>;
  archivedPriceIds: Set<string>;
}

export interface CatalogSyncOptions {
  /** Compute and return the plan; write nothing to Stripe or the database. */
  dryRun?: boolean;
}

export function isOwned(object: { metadata: Record<string, string> }): boolean {
  return object.metadata.tollgate_managed === OWNER_METADATA.tollgate_managed;
}

/**
 * Runs `work` in one transaction, or for a dry run on a fork that never flushes, so the changes
 * it makes to entities stay in memory and are dropped.
 */
export async function inTransactionOrDryRun<T>(em: EntityManager, dryRun: boolean, work: (tx: EntityManager) => Promise<T>): Promise<T> {
  if (!dryRun) return em.transactional(work);
  const fork = em.fork({ flushMode: FlushMode.COMMIT });
  try {
    return await work(fork);
  } finally {
    fork.clear();
  }
}
