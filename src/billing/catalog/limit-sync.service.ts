import type { EntityManager } from '@mikro-orm/postgresql';
import { PlanLimit } from '../usage/plan-limit.entity';
import type { CatalogDefinition } from './catalog-file';
import type { CatalogChange, CatalogSyncOptions } from './catalog-sync.service';
import { Product } from './product.entity';

/**
 * The limits half of the catalog sync: makes `plan_limits` of the catalog's plans match the
 * file. Limits live in the database only (Stripe has no such notion); usage reads them from the
 * subscription's current plan on every event, so a change applies at once.
 */
export class LimitSyncService {
  constructor(private readonly em: EntityManager) {}

  async sync(catalog: CatalogDefinition, options: CatalogSyncOptions = {}): Promise<CatalogChange[]> {
    const dryRun = !!options.dryRun;
    const work = async (tx: EntityManager): Promise<CatalogChange[]> => {
      const changes: CatalogChange[] = [];
      const products = await tx.find(Product, { code: { $in: catalog.products.map((p) => p.code) } });
      const rows = await tx.find(PlanLimit, { product: { $in: products.map((p) => p.id) } });
      for (const def of catalog.products) {
        const product = products.find((p) => p.code === def.code);
        const mine = product ? rows.filter((r) => r.product.id === product.id) : [];
        for (const l of def.limits) {
          const key = `${def.code}/${l.meter}`;
          const values = { limit: l.limit, kind: l.kind, period: l.period };
          const row = mine.find((r) => r.meter === l.meter);
          if (!row) {
            changes.push({ where: 'database', action: 'create', object: 'plan limit', key, detail: `${l.kind} ${l.limit} per ${l.period}` });
            if (!dryRun && product) tx.create(PlanLimit, { product, meter: l.meter, ...values });
            continue;
          }
          const diffs = (Object.keys(values) as (keyof typeof values)[]).filter((k) => row[k] !== values[k]);
          if (diffs.length) {
            changes.push({ where: 'database', action: 'update', object: 'plan limit', key, detail: diffs.map((k) => `${k} → ${values[k]}`).join(', ') });
            if (!dryRun) tx.assign(row, values);
          }
        }
        const listed = new Set(def.limits.map((l) => l.meter));
        for (const row of mine) {
          if (listed.has(row.meter)) continue;
          changes.push({ where: 'database', action: 'detach', object: 'plan limit', key: `${def.code}/${row.meter}`, detail: 'no longer in the plan' });
          if (!dryRun) tx.remove(row);
        }
      }
      if (!dryRun) await tx.flush();
      return changes;
    };
    return dryRun ? work(this.em.fork()) : this.em.transactional(work);
  }
}
