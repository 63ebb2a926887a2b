import { HeaderMap, type ApolloServerPlugin } from '@apollo/server';
import { Kind, type FormattedExecutionResult, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';
import type { CatalogCache, CatalogSnapshot } from '../billing/catalog/catalog-cache';
import type { GraphQLContext } from './context';

/**
 * Root query fields whose answer is the same for every caller and depends only on the catalog:
 * their whole response can be kept as long as the catalog snapshot it was computed from.
 */
export const CATALOG_ROOT_FIELDS: ReadonlySet<string> = new Set(['products', 'product', '__typename']);

/** Distinct (query, variables) answers kept per catalog snapshot; further ones are computed each time. */
export const MAX_CACHED_RESPONSES = 200;

/**
 * Whole-response cache for catalog queries (`products`, `product`): the catalog is public and
 * small, and it is read far more often than it changes, so the executed answer for a query text
 * and its variables is kept alongside the catalog snapshot it was read from and served again
 * without executing anything.
 *
 * The entries belong to one snapshot of `CatalogCache`. Whatever makes the catalog cache load a
 * new snapshot (a product, price or meter written through the ORM in this process: webhooks,
 * catalog sync; or the snapshot's time-to-live, which bounds how long another instance's write
 * goes unseen) makes every cached answer unreachable at once. Only answers without errors are
 * kept. Everything before execution still runs for each request: the token check, parsing and
 * validation (Apollo caches those by query text), and the complexity limit.
 */
export function catalogResponseCachePlugin(catalog: () => CatalogCache): ApolloServerPlugin<GraphQLContext> {
  const bySnapshot = new WeakMap<CatalogSnapshot, Map<string, FormattedExecutionResult>>();
  // Parsed documents are shared by Apollo for the same query text, so whether an operation is
  // cacheable is worked out once per document and operation.
  const cacheable = new WeakMap<OperationDefinitionNode, boolean>();
  const isCacheable = (operation: OperationDefinitionNode) => {
    let known = cacheable.get(operation);
    if (known === undefined) {
      known = operation.operation === 'query' && onlyCatalogFields(operation.selectionSet);
      cacheable.set(operation, known);
    }
    return known;
  };

  return {
    async requestDidStart() {
      let entries: Map<string, FormattedExecutionResult> | undefined;
      let key: string | undefined;
      return {
        async responseForOperation({ operation, queryHash, request }) {
          if (!isCacheable(operation)) return null;
          let snapshot: CatalogSnapshot;
          try {
            snapshot = await catalog().get();
          } catch {
            // The catalog could not be read: execution runs as usual and reports it on the field.
            return null;
          }
          entries = bySnapshot.get(snapshot);
          if (!entries) {
            entries = new Map();
            bySnapshot.set(snapshot, entries);
          }
          key = `${queryHash}\u0000${request.operationName ?? ''}\u0000${request.variables ? JSON.stringify(request.variables) : ''}`;
          const hit = entries.get(key);
          if (!hit) return null;
          key = undefined;
          return { http: { status: undefined, headers: new HeaderMap() }, body: { kind: 'single', singleResult: hit } };
        },
        async willSendResponse({ response }) {
          if (!entries || key === undefined || response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          if (result.errors?.length || result.data == null) return;
          if (response.http.status !== undefined && response.http.status !== 200) return;
          if (entries.size < MAX_CACHED_RESPONSES) entries.set(key, result);
        },
      };
    },
  };
}

/**
 * True when every root field of the selection is a catalog field, without fragments (kept simple:
 * a root fragment could hide a user-specific field, so it is not looked into).
 */
function onlyCatalogFields(selectionSet: SelectionSetNode): boolean {
  return selectionSet.selections.every(
    (s) => s.kind === Kind.FIELD && CATALOG_ROOT_FIELDS.has(s.name.value) && !(s.directives?.length ?? 0),
  );
}
