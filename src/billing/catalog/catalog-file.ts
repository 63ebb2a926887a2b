import { readFile } from 'node:fs/promises';
import { z } from 'zod';

/**
 * The catalog file (catalog/default.json by default) describes meters, products and prices.
 * Lookup keys are the stable names that tie a price in the file to the price in Stripe.
 */
const code = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lower case letters, digits, - or _');

const priceSchema = z
  .object({
    lookupKey: code,
    currency: z.string().regex(/^[a-z]{3}$/, 'must be a lower-case ISO 4217 code such as usd'),
    /** Integer minor units: 1900 is $19.00. */
    unitAmount: z.number().int().nonnegative(),
    interval: z.enum(['month', 'year']).optional(),
    intervalCount: z.number().int().min(1).max(12).optional(),
    usageType: z.enum(['licensed', 'metered']).optional(),
    meter: z.string().optional(),
  })
  .refine((p) => p.usageType !== 'metered' || (p.interval && p.meter), {
    message: 'a metered price needs an interval and a meter',
  });

/** A Stripe Entitlements feature the plan grants, by lookup key. */
const featureSchema = z.object({ lookupKey: code.max(80), name: z.string().min(1).max(80) });

/** A usage limit on one meter per billing period: `hard` refuses usage beyond it, `soft` only reports it. */
const limitSchema = z.object({
  meter: code,
  limit: z.number().nonnegative().finite(),
  period: z.literal('billing_period').default('billing_period'),
  kind: z.enum(['hard', 'soft']),
});

const productSchema = z.object({
  code,
  name: z.string().min(1),
  description: z.string().optional(),
  active: z.boolean().optional(),
  prices: z.array(priceSchema).min(1),
  features: z.array(featureSchema).default([]),
  limits: z.array(limitSchema).default([]),
});

const meterSchema = z.object({
  eventName: code,
  displayName: z.string().min(1),
  aggregation: z.enum(['sum', 'count', 'last']).optional(),
});

export const catalogSchema = z
  .object({ meters: z.array(meterSchema).default([]), products: z.array(productSchema) })
  .superRefine((catalog, ctx) => {
    const meters = new Set(catalog.meters.map((m) => m.eventName));
    const keys = new Set<string>();
    const codes = new Set<string>();
    for (const product of catalog.products) {
      if (codes.has(product.code)) ctx.addIssue({ code: 'custom', message: `product code "${product.code}" appears twice` });
      codes.add(product.code);
      for (const price of product.prices) {
        if (keys.has(price.lookupKey)) ctx.addIssue({ code: 'custom', message: `lookup key "${price.lookupKey}" appears twice` });
        keys.add(price.lookupKey);
        if (price.meter && !meters.has(price.meter)) {
          ctx.addIssue({ code: 'custom', message: `price "${price.lookupKey}" uses meter "${price.meter}", which is not in meters` });
        }
      }
    }
    for (const product of catalog.products) {
      const limited = new Set<string>();
      for (const limit of product.limits) {
        if (!meters.has(limit.meter)) ctx.addIssue({ code: 'custom', message: `plan "${product.code}" limits meter "${limit.meter}", which is not in meters` });
        if (limited.has(limit.meter)) ctx.addIssue({ code: 'custom', message: `plan "${product.code}" limits meter "${limit.meter}" twice` });
        limited.add(limit.meter);
      }
    }
    // One lookup key is one Stripe feature, so every plan that lists it must name it alike.
    const featureNames = new Map<string, string>();
    for (const product of catalog.products) {
      for (const feature of product.features) {
        const name = featureNames.get(feature.lookupKey) ?? feature.name;
        if (name !== feature.name) ctx.addIssue({ code: 'custom', message: `feature "${feature.lookupKey}" has two names: "${name}" and "${feature.name}"` });
        featureNames.set(feature.lookupKey, name);
      }
    }
  });

export type CatalogDefinition = z.infer<typeof catalogSchema>;
export type CatalogProductDefinition = CatalogDefinition['products'][number];
export type CatalogPriceDefinition = CatalogProductDefinition['prices'][number];

export async function loadCatalogFile(file: string): Promise<CatalogDefinition> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read the catalog file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = catalogSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(catalog)'}: ${i.message}`);
    throw new Error(`Invalid catalog file ${file}:\n${problems.join('\n')}`);
  }
  return parsed.data;
}
