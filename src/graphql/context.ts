import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { AuthUser } from '../auth/auth-user';
import type { AppConfig } from '../config/env';
import type { StripeGateway } from '../stripe/stripe.gateway';
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
  /** A DisabledStripeGateway (`enabled: false`) when billing is disabled. */
  gateway: StripeGateway;
  log: Logger;
}
