import type { StripeGateway } from '../../stripe/stripe.gateway';
import type { CatalogDefinition } from './catalog-file';
import type { CatalogStripeIds } from './catalog-seeder';
import { CatalogSyncService, OWNER_METADATA } from './catalog-sync.service';

export { OWNER_METADATA };

/**
 * Makes Stripe match the catalog (the Stripe half of `npm run catalog:sync`) and returns the ids
 * of its meters, products and prices, for the local-mode start to seed the database with.
 * Entries that collide with Stripe objects Tollgate does not own are left out.
 */
export async function ensureCatalogInStripe(gateway: StripeGateway, catalog: CatalogDefinition): Promise<Required<CatalogStripeIds>> {
  const { stripe } = await new CatalogSyncService(gateway, null).syncStripe(catalog);
  const present = (ids: Record<string, string | null>) =>
    Object.fromEntries(Object.entries(ids).filter((entry): entry is [string, string] => entry[1] !== null));
  return { meters: present(stripe.meters), products: present(stripe.products), prices: present(stripe.prices) };
}
