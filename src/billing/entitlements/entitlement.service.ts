import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { BillingError } from '../../common/errors';
import { entitlementMismatchCounter } from '../../common/metrics';
import type { ActiveEntitlementSnapshot, StripeGateway } from '../../stripe/stripe.gateway';
import { Customer } from '../customers/customer.entity';
import type { KnownCustomer } from './definitions-cache';
import { definitionsCacheFor, publishDefinitionsChange } from './definitions-invalidation';
import { EntitlementRepository, type FeatureState } from './entitlement.repository';

/** A Stripe lookup key: up to 80 characters; features made outside the catalog may use any printable ones. */
const FEATURE_KEY = /^[\x21-\x7e]{1,80}$/;

export type StripeRefreshOutcome = 'applied' | 'stale' | 'unknown-customer';

/**
 * What a customer may do, from two sources that each cover what the other misses (see
 * `Entitlement`): Stripe's active entitlements, refetched whole on the summary webhook, and the
 * catalog applied to the customer's subscriptions, recomputed whenever a subscription row or the
 * catalog changes. Questions are answered from PostgreSQL only, never from Stripe.
 */
export class EntitlementService {
  private readonly repository: EntitlementRepository;

  constructor(
    private readonly em: EntityManager,
    private readonly log?: Logger,
  ) {
    this.repository = new EntitlementRepository(em);
  }

  /**
   * Recomputes the catalog's side for one customer from its subscription rows as this
   * EntityManager sees them (in the caller's transaction, if any). Call after writing a
   * subscription row.
   */
  async recomputeForCustomer(customerId: string): Promise<void> {
    const changes = await this.em.transactional(async (tx) => {
      const repository = new EntitlementRepository(tx);
      await repository.lockCustomer(customerId);
      const changes = await repository.recomputeFromCatalog(customerId);
      // Also when nothing changed here: the subscription row written before this may have moved the customer's limits.
      await publishDefinitionsChange(tx, customerId);
      return changes;
    });
    if (changes.length) this.log?.info({ customerId, changes }, 'entitlements recomputed from the catalog');
  }

  /** Call first in a transaction that changes the plans' features (then `recomputeAll`). */
  lockCatalog(): Promise<void> {
    return this.repository.lockCatalog();
  }

  /** Recomputes the catalog's side for every customer (after the catalog's features changed). */
  async recomputeAll(): Promise<number> {
    const changes = await this.repository.recomputeFromCatalog(null);
    await publishDefinitionsChange(this.em, null);
    if (changes.length) this.log?.info({ changes: changes.length }, 'entitlements recomputed from the catalog for every customer');
    return changes.length;
  }

  /**
   * Stripe's side for one Stripe customer: every page of its active entitlements, fetched
   * before any lock is taken, then applied in one short transaction (nested in the caller's, if
   * any) unless a newer fetch was applied meanwhile. Features on which Stripe and the catalog
   * disagree are logged and counted.
   */
  async refreshFromStripe(gateway: StripeGateway, stripeCustomerId: string): Promise<StripeRefreshOutcome> {
    if (!(await this.em.count(Customer, { stripeCustomerId }))) return 'unknown-customer';
    const fetchedAt = new Date();
    const entitlements = await gateway.listActiveEntitlements(stripeCustomerId);
    return this.applyFromStripe(stripeCustomerId, entitlements, fetchedAt);
  }

  /**
   * Applies a complete list of the Stripe customer's active entitlements, read (outside any
   * transaction) starting at `fetchedAt`, unless a newer read was applied meanwhile.
   */
  async applyFromStripe(stripeCustomerId: string, entitlements: ActiveEntitlementSnapshot[], fetchedAt: Date): Promise<StripeRefreshOutcome> {
    const customer = await this.em.findOne(Customer, { stripeCustomerId });
    if (!customer) return 'unknown-customer';

    const applied = await this.em.transactional(async (tx) => {
      const repository = new EntitlementRepository(tx);
      await repository.lockCustomer(customer.id);
      const last = await repository.lastStripeSync(customer.id);
      if (last && last > fetchedAt) return null;
      await repository.recomputeFromCatalog(customer.id);
      const before = await repository.activeFeatures(customer.id);
      await repository.applyFromStripe(
        customer.id,
        entitlements.map((e) => ({ feature: e.lookupKey, stripeFeatureId: e.featureId, stripeEntitlementId: e.id })),
        fetchedAt,
      );
      await publishDefinitionsChange(tx, customer.id);
      const after = await repository.activeFeatures(customer.id);
      return { before, after, mismatches: await repository.mismatches(customer.id) };
    });
    if (!applied) return 'stale';

    const { before, after, mismatches } = applied;
    const granted = after.filter((f) => !before.includes(f));
    const revoked = before.filter((f) => !after.includes(f));
    if (granted.length || revoked.length) this.log?.info({ customerId: customer.id, granted, revoked }, 'entitlements applied from Stripe');
    if (mismatches.length) {
      const counter = entitlementMismatchCounter();
      for (const m of mismatches) counter.inc({ granted_by: m.grantedBy });
      this.log?.warn({ customerId: customer.id, mismatches }, "Stripe's active entitlements and the catalog disagree");
    }
    return 'applied';
  }

  /** Whether the customer (null: the caller has none yet) has the feature now. */
  async has(customerId: string | null, feature: string): Promise<boolean> {
    if (!FEATURE_KEY.test(feature)) throw BillingError.badInput('feature must be a lookup key such as "sso" (1 to 80 characters, no spaces)', 'feature');
    if (!customerId) return false;
    return (await this.list(customerId)).some((f) => f.feature === feature && f.active);
  }

  /**
   * Every feature the catalog knows (and any other the customer had), with whether the customer
   * has it. Kept in the definitions cache until a write changes them (see definitions-invalidation.ts).
   */
  async list(customerId: string | null): Promise<FeatureState[]> {
    if (!customerId) return [];
    return definitionsCacheFor(this.em).features(customerId, () => this.repository.listForCustomer(customerId));
  }

  /**
   * User `userId`'s customer (null: none yet), as kept in the definitions cache: the question
   * every gated request starts with, answered without a database round trip once known.
   */
  customerOfUser(userId: string): Promise<KnownCustomer | null> {
    return definitionsCacheFor(this.em).customerOfUser(userId, () => this.repository.customerOfUser(userId));
  }
}
