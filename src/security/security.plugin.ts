import type { ApolloServerPlugin } from '@apollo/server';
import type { DocumentNode } from 'graphql';
import type { GraphQLContext } from '../graphql/context';
import type { MutationRateLimiter } from './mutation-rate-limiter';
import { complexityError, rootFieldCount } from './query-limits';
import { rateLimitedError } from './security-errors';

/**
 * Mutations a customer's backend calls once per metered event: they draw from their own, larger
 * budget, so recording usage at volume neither hits the limit meant for billing changes nor
 * spends it.
 */
export const HIGH_VOLUME_MUTATIONS = new Set(['recordUsage']);

/**
 * Checks that need the request, after the document is validated and before anything executes:
 * the complexity estimate (it depends on the variables) and the caller's mutation budget.
 *
 * Every root field of a mutation costs one point, so aliasing one mutation fifty times in a
 * request costs fifty. High-volume mutations (recordUsage) count against `usageLimiter` instead. Queries are not rate limited: they change nothing, and their cost per
 * request is already bounded by the depth, alias and complexity limits. Anonymous callers are
 * not counted: every mutation needs a user and is refused before it does any work without one.
 */
export function securityPlugin(options: {
  maxComplexity: number;
  rateLimiter: MutationRateLimiter | null;
  usageLimiter: MutationRateLimiter | null;
}): ApolloServerPlugin<GraphQLContext> {
  // Operations without variables that passed the complexity check: their cost cannot change, and
  // estimating it walks the whole document again (about a tenth of a `products` request).
  // Apollo hands out the same parsed document for the same query text, so it is the key.
  const withinBudget = new WeakMap<DocumentNode, Set<string>>();
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, operationName, request, contextValue }) {
          const fixedCost = !operation?.variableDefinitions?.length;
          const key = operationName ?? '';
          if (!(fixedCost && withinBudget.get(document)?.has(key))) {
            const tooComplex = complexityError({
              schema,
              document,
              operationName,
              variables: request.variables,
              maxComplexity: options.maxComplexity,
            });
            if (tooComplex) throw tooComplex;
            if (fixedCost) {
              const passed = withinBudget.get(document) ?? new Set<string>();
              passed.add(key);
              withinBudget.set(document, passed);
            }
          }

          const user = contextValue.user;
          if (operation?.operation !== 'mutation' || !user) return;
          const budgets = [
            { limiter: options.rateLimiter, points: rootFieldCount(operation, document, (f) => !HIGH_VOLUME_MUTATIONS.has(f)) },
            { limiter: options.usageLimiter, points: rootFieldCount(operation, document, (f) => HIGH_VOLUME_MUTATIONS.has(f)) },
          ];
          for (const { limiter, points } of budgets) {
            if (!limiter || points === 0) continue;
            const decision = await limiter.consume(`user:${user.userId}`, points);
            if (!decision.allowed) throw rateLimitedError(decision.retryAfterSeconds);
          }
        },
      };
    },
  };
}
