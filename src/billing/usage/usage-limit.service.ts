import type { EntityManager } from '@mikro-orm/postgresql';
import type { LimitDefinition } from '../entitlements/definitions-cache';
import { definitionsCacheFor } from '../entitlements/definitions-invalidation';
import { UsageLimitRepository, type SubscriptionLimit } from './usage-limit.repository';
import { BILLING_STATUSES, limitPeriod } from './usage.rules';

/** A limit of one of the caller's subscriptions and where its usage stands this billing period. */
export interface UsageLimitStatus extends SubscriptionLimit {
  used: number;
  remaining: number;
  /** The end of the billing period, when usage starts again from zero. */
  resetsAt: Date;
  overLimit: boolean;
}

/**
 * Reads a customer's usage limits. Which limits apply (the plans of its billing subscriptions
 * and their periods) is kept in the definitions cache until a subscription or the catalog
 * changes; the period's usage is read every time. Recording under a hard limit reads the plan's
 * limit from the database for each group of events (UsageService); the cache only routes it.
 */
export class UsageLimitService {
  private readonly repository: UsageLimitRepository;

  constructor(
    private readonly em: EntityManager,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.repository = new UsageLimitRepository(em);
  }

  /** Which limits apply to the customer's billing subscriptions (from the definitions cache). */
  definitions(customerId: string): Promise<LimitDefinition[]> {
    return definitionsCacheFor(this.em).limits(customerId, () => this.repository.definitionsOf(customerId, BILLING_STATUSES));
  }

  /** The limits of user `userId`'s customer if the cache holds them now (see DefinitionsCache.peekLimitsOfUser). */
  heldLimitsOfUser(userId: string): LimitDefinition[] | undefined {
    return definitionsCacheFor(this.em).peekLimitsOfUser(userId);
  }

  /** One answer per limit of each billing subscription's current plan, with the period's usage. */
  async limits(customerId: string): Promise<UsageLimitStatus[]> {
    const definitions = await this.definitions(customerId);
    const now = this.now();
    return Promise.all(
      definitions.map(async (d) => {
        const period = limitPeriod({ currentPeriodStart: d.periodStart, currentPeriodEnd: d.periodEnd }, now);
        const used = await this.repository.used(d.subscriptionId, d.meter, period.start);
        return {
          subscriptionId: d.subscriptionId,
          meter: d.meter,
          limit: d.limit,
          kind: d.kind,
          used,
          remaining: Math.max(0, d.limit - used),
          resetsAt: period.end,
          overLimit: used > d.limit,
        };
      }),
    );
  }
}
