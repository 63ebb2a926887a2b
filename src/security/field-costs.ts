import type { ComplexityEstimatorArgs } from 'graphql-query-complexity';

/**
 * What a field that calls Stripe adds to an operation's estimated cost. Every such call spends
 * the account's Stripe rate limit (shared by all customers), so with the default
 * GRAPHQL_MAX_COMPLEXITY of 2500 an operation with five of them is refused whatever it selects.
 */
export const STRIPE_CALL_COST = 500;

/** A list of `first` items: each item costs what its selection costs. */
export function listCost({ args, childComplexity }: ComplexityEstimatorArgs): number {
  const first = typeof args.first === 'number' && args.first > 0 ? args.first : 1;
  return 1 + first * childComplexity;
}

/**
 * The extension a query field declares (`@Extensions({ [CALLS_STRIPE]: true })`) when resolving
 * it may call Stripe: such queries are rate limited like mutations, one point per field.
 */
export const CALLS_STRIPE = 'callsStripe';
