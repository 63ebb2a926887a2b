import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { AuthUser } from '../auth/auth-user';
import type { AppConfig } from '../config/env';
import type { StripeGateway } from '../stripe/stripe.gateway';
import type { UsageHandoff } from '../billing/usage/usage-fast-path';
import type { Loaders } from './loaders';

export type { AuthUser };

export interface GraphQLContext {
  /** A fork of the EntityManager for this request only. */
  em: EntityManager;
  /**
   * The ORM's root EntityManager, shared by all requests: for its connection pool only (raw
   * statements); anything that loads or changes entities uses `em`.
   */
  rootEm: EntityManager;
  user: AuthUser | null;
  loaders: Loaders;
  config: AppConfig;
  /** Null when billing is disabled. */
  gateway: StripeGateway | null;
  log: Logger;
  /** What the recordUsage fast path did before it handed this request on (see usage-fast-path.ts). */
  usageHandoff?: UsageHandoff;
}
