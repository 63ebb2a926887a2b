import type { EntityManager } from '@mikro-orm/postgresql';
import { rawQuery } from '../../db/raw-query';
import type { KnownCustomer } from './definitions-cache';

const CATALOG_LOCK = 'entitlements:catalog';

export interface EntitlementChange {
  customerId: string;
  feature: string;
  change: 'granted' | 'revoked';
}

export interface StripeEntitlement {
  feature: string;
  stripeFeatureId: string;
  stripeEntitlementId: string;
}

export interface EntitlementMismatch {
  feature: string;
  /** `stripe`: only Stripe grants it; `catalog`: only the catalog does. */
  grantedBy: 'stripe' | 'catalog';
}

export interface FeatureState {
  feature: string;
  active: boolean;
}

/**
 * The SQL of entitlements. Writes run on the caller's EntityManager (inside its transaction);
 * reads for the API go straight to the pool, since they are on every gated request.
 */
export class EntitlementRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * Serialises writers of one customer's entitlements until the caller's transaction ends, and
   * holds off a change of the plans' features meanwhile (`lockCatalog`): a recompute that read
   * the features before such a change committed would otherwise write its stale result over the
   * change's own recompute.
   */
  async lockCustomer(customerId: string): Promise<void> {
    await this.em.execute('select pg_advisory_xact_lock(hashtext(?)), pg_advisory_xact_lock_shared(hashtext(?))', [`entitlements:${customerId}`, CATALOG_LOCK]);
  }

  /** Taken before the plans' features change: waits for every customer's writer, and holds new ones off until the transaction ends. */
  async lockCatalog(): Promise<void> {
    await this.em.execute('select pg_advisory_xact_lock(hashtext(?))', [CATALOG_LOCK]);
  }

  /**
   * Makes `catalog_active` match the catalog's plan features for the customers' `active` and
   * `trialing` subscriptions (the statuses Stripe grants active entitlements for): one customer, or every customer when `customerId` is null (after
   * the catalog changed). Only rows that change are written; returns those changes.
   */
  async recomputeFromCatalog(customerId: string | null): Promise<EntitlementChange[]> {
    const rows: { customer_id: string; feature: string; change: 'granted' | 'revoked' }[] = await this.em.execute(
      `with desired as (
         select distinct s.customer_id, pf.lookup_key as feature, pf.stripe_feature_id
         from subscriptions s
         join prices p on p.id = s.price_id
         join plan_features pf on pf.product_id = p.product_id
         where s.status in ('active', 'trialing') and (?::uuid is null or s.customer_id = ?::uuid)
       ),
       granted as (
         insert into entitlements as e (id, customer_id, feature, active, source, stripe_active, catalog_active, stripe_feature_id, created_at, updated_at)
         select gen_random_uuid(), d.customer_id, d.feature, true, 'catalog', false, true, d.stripe_feature_id, now(), now() from desired d
         on conflict (customer_id, feature) do update
           set catalog_active = true, active = true,
               source = case when e.stripe_active then 'stripe+catalog' else 'catalog' end,
               stripe_feature_id = coalesce(e.stripe_feature_id, excluded.stripe_feature_id),
               updated_at = now()
           where not e.catalog_active
         returning e.customer_id, e.feature
       ),
       revoked as (
         update entitlements e
           set catalog_active = false, active = e.stripe_active,
               source = case when e.stripe_active then 'stripe' end, updated_at = now()
         where e.catalog_active and (?::uuid is null or e.customer_id = ?::uuid)
           and not exists (select 1 from desired d where d.customer_id = e.customer_id and d.feature = e.feature)
         returning e.customer_id, e.feature
       )
       select customer_id, feature, 'granted' as change from granted
       union all
       select customer_id, feature, 'revoked' as change from revoked`,
      [customerId, customerId, customerId, customerId],
    );
    return rows.map((r) => ({ customerId: r.customer_id, feature: r.feature, change: r.change }));
  }

  /** When Stripe's entitlements of this customer were last applied (null: never). */
  async lastStripeSync(customerId: string): Promise<Date | null> {
    const [row] = await this.em.execute<{ at: Date | null }[]>('select max(synced_at) as at from entitlements where customer_id = ?', [customerId]);
    return row?.at ? new Date(row.at) : null;
  }

  /**
   * Makes `stripe_active` match Stripe's complete list of the customer's active entitlements,
   * fetched at `fetchedAt`.
   */
  async applyFromStripe(customerId: string, entitlements: StripeEntitlement[], fetchedAt: Date): Promise<void> {
    await this.em.execute(
      `with reported as (
         select * from jsonb_to_recordset(?::jsonb) as r(feature text, "stripeFeatureId" text, "stripeEntitlementId" text)
       ),
       granted as (
         insert into entitlements as e (id, customer_id, feature, active, source, stripe_active, catalog_active, stripe_feature_id, stripe_entitlement_id, synced_at, created_at, updated_at)
         select gen_random_uuid(), ?::uuid, r.feature, true, 'stripe', true, false, r."stripeFeatureId", r."stripeEntitlementId", ?, now(), now() from reported r
         on conflict (customer_id, feature) do update
           set stripe_active = true, active = true,
               source = case when e.catalog_active then 'stripe+catalog' else 'stripe' end,
               stripe_feature_id = excluded.stripe_feature_id, stripe_entitlement_id = excluded.stripe_entitlement_id,
               synced_at = excluded.synced_at, updated_at = now()
         returning e.id
       )
       update entitlements e
         set stripe_active = false, active = e.catalog_active, source = case when e.catalog_active then 'catalog' end,
             stripe_entitlement_id = null, synced_at = ?, updated_at = now()
       where e.customer_id = ?::uuid and e.stripe_active and not exists (select 1 from reported r where r.feature = e.feature)`,
      [JSON.stringify(entitlements), customerId, fetchedAt, fetchedAt, customerId],
    );
  }

  /** The features the customer has now. */
  async activeFeatures(customerId: string): Promise<string[]> {
    const rows: { feature: string }[] = await this.em.execute('select feature from entitlements where customer_id = ? and active order by feature', [customerId]);
    return rows.map((r) => r.feature);
  }

  /** Features one source grants and the other does not, for the customer. */
  async mismatches(customerId: string): Promise<EntitlementMismatch[]> {
    const rows: { feature: string; stripe_active: boolean }[] = await this.em.execute(
      'select feature, stripe_active from entitlements where customer_id = ? and stripe_active <> catalog_active order by feature',
      [customerId],
    );
    return rows.map((r) => ({ feature: r.feature, grantedBy: r.stripe_active ? 'stripe' : 'catalog' }));
  }

  /** User `userId`'s customer, if it has one. */
  async customerOfUser(userId: string): Promise<KnownCustomer | null> {
    const rows = await rawQuery<KnownCustomer>(this.em, 'select id, email from customers where user_id = $1', [userId]);
    return rows[0] ?? null;
  }

  /**
   * Every feature the catalog knows plus any other the customer was ever entitled to, each with
   * whether the customer has it now, by lookup key.
   */
  async listForCustomer(customerId: string): Promise<FeatureState[]> {
    return rawQuery<FeatureState>(
      this.em,
      `select feature, bool_or(active) as active from (
         select lookup_key as feature, false as active from plan_features
         union all
         select feature, active from entitlements where customer_id = $1
       ) f group by feature order by feature`,
      [customerId],
    );
  }
}
