import type { ApolloServerPlugin } from '@apollo/server';
import { getArgumentValues, Kind, type DocumentNode, type FragmentDefinitionNode, type GraphQLSchema, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';
import { LRUCache } from 'lru-cache';
import type { GraphQLContext } from '../graphql/context';
import type { MutationRateLimiter } from './mutation-rate-limiter';
import { CALLS_STRIPE } from './field-costs';
import { assertCleanInput } from './input-hygiene';
import { complexityError, costVariables, rootFieldCount } from './query-limits';
import { rateLimitedError } from './security-errors';

/**
 * Mutations a customer's backend calls once per metered event: they draw from their own, larger
 * budget, so recording usage at volume neither hits the limit meant for billing changes nor
 * spends it.
 */
export const HIGH_VOLUME_MUTATIONS = new Set(['recordUsage', 'recordUsageBatch']);

/**
 * Points a mutation takes from the usage budget: one per usage event, so a batch of a hundred
 * events costs what a hundred single calls do.
 */
function usagePoints(schema: GraphQLSchema, operation: OperationDefinitionNode, document: DocumentNode, variables: Record<string, unknown>): number {
  const mutationType = schema.getMutationType();
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const seen = new Set<string>();
  const count = (set: SelectionSetNode): number => {
    let sum = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.INLINE_FRAGMENT) sum += count(selection.selectionSet);
      else if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        if (fragment && !seen.has(fragment.name.value)) {
          seen.add(fragment.name.value);
          sum += count(fragment.selectionSet);
          seen.delete(fragment.name.value);
        }
      } else if (selection.name.value === 'recordUsage') sum += 1;
      else if (selection.name.value === 'recordUsageBatch') {
        const field = mutationType?.getFields().recordUsageBatch;
        let events = 1;
        try {
          const args = field ? getArgumentValues(field, selection, variables) : {};
          const list = (args.input as { events?: unknown } | undefined)?.events;
          if (Array.isArray(list)) events = Math.max(1, list.length);
        } catch {
          // Arguments that do not coerce fail the operation before it runs; one point for it.
        }
        sum += events;
      }
    }
    return sum;
  };
  return count(operation.selectionSet);
}

function callsStripe(schema: GraphQLSchema, fieldName: string): boolean {
  return schema.getQueryType()?.getFields()[fieldName]?.extensions?.[CALLS_STRIPE] === true;
}

/** Variable values remembered as within budget per document. */
const MAX_PASSED_PER_DOCUMENT = 100;
/** ... and their bytes (the values are the caller's, so their size is too). */
const MAX_PASSED_BYTES_PER_DOCUMENT = 64 * 1024;

/**
 * Checks that need the request, after the document is validated and before anything executes:
 * the input's strings and nesting (see input-hygiene.ts), the complexity estimate (it depends on
 * the variables) and the caller's budget.
 *
 * Every root field of a mutation costs one point, so aliasing one mutation fifty times in a
 * request costs fifty. High-volume mutations (recordUsage) count against `usageLimiter` instead.
 * Queries that call Stripe (fields declaring CALLS_STRIPE: checkoutSession) cost a
 * point per field from the same budget as mutations: each spends the account's Stripe rate
 * limit. Other queries are not rate limited: they only read our database, and their cost per
 * request is bounded by the depth, alias and complexity limits. Anonymous callers are not
 * counted: every such field needs a user and is refused before it does any work without one.
 */
export function securityPlugin(options: {
  maxComplexity: number;
  rateLimiter: MutationRateLimiter | null;
  usageLimiter: MutationRateLimiter | null;
}): ApolloServerPlugin<GraphQLContext> {
  // Operations that passed the complexity check, by the values of the variables that can change
  // their cost (none for most: a mutation's input does not). Estimating walks the whole document
  // again, about a tenth of a small request. Apollo hands out the same parsed document for the
  // same query text, so it is the key.
  // Points each operation costs from each budget, worked out once per parsed operation.
  const budgetPoints = new WeakMap<OperationDefinitionNode, { general: number; usage: number }>();
  const withinBudget = new WeakMap<DocumentNode, { costVariables: string[]; passed: LRUCache<string, true> }>();
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, operationName, request, contextValue }) {
          // No operation of that name: nothing will run, and Apollo answers OPERATION_RESOLUTION_FAILURE.
          if (!operation) return;
          assertCleanInput(document, request.variables);
          let known = withinBudget.get(document);
          if (!known) {
            known = {
              costVariables: costVariables(schema, document),
              passed: new LRUCache<string, true>({ max: MAX_PASSED_PER_DOCUMENT, maxSize: MAX_PASSED_BYTES_PER_DOCUMENT, sizeCalculation: (_v, key) => 2 * key.length + 1 }),
            };
            withinBudget.set(document, known);
          }
          const variables = request.variables ?? {};
          const key = `${operationName ?? ''}\u0000${known.costVariables.length ? JSON.stringify(known.costVariables.map((v) => (v in variables ? [variables[v]] : []))) : ''}`;
          if (!known.passed.has(key)) {
            const tooComplex = complexityError({
              schema,
              document,
              operationName,
              variables: request.variables,
              maxComplexity: options.maxComplexity,
            });
            if (tooComplex) throw tooComplex;
            // Bounded: a document whose cost varies with many different values keeps the latest.
            if (2 * key.length + 1 <= MAX_PASSED_BYTES_PER_DOCUMENT) known.passed.set(key, true);
          }

          const user = contextValue.user;
          if (!user) return;
          let points = budgetPoints.get(operation);
          if (!points) {
            points =
              operation.operation === 'mutation'
                ? {
                    general: rootFieldCount(operation, document, (f) => !HIGH_VOLUME_MUTATIONS.has(f)),
                    usage: rootFieldCount(operation, document, (f) => HIGH_VOLUME_MUTATIONS.has(f)),
                  }
                : operation.operation === 'query'
                  ? { general: rootFieldCount(operation, document, (f) => callsStripe(schema, f)), usage: 0 }
                  : { general: 0, usage: 0 };
            budgetPoints.set(operation, points);
          }
          const budgets = [
            { limiter: options.rateLimiter, points: points.general },
            // A batch's points depend on its variables (one per event), so they are counted per request.
            { limiter: options.usageLimiter, points: points.usage > 0 ? usagePoints(schema, operation, document, request.variables ?? {}) : 0 },
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
