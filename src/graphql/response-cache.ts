import { HeaderMap, type ApolloServerPlugin } from '@apollo/server';
import { Kind, type FormattedExecutionResult, type OperationDefinitionNode } from 'graphql';
import type { CatalogCache, CatalogSnapshot } from '../billing/catalog/catalog-cache';
import type { GraphQLContext } from './context';

/**
 * Root query fields whose answer is the same for every caller and depends only on the catalog.
 */
export const CATALOG_ROOT_FIELDS: ReadonlySet<string> = new Set(['products', 'product', '__typename']);

/**
 * Root query fields whose answer depends only on the caller's customer row, that customer's
 * subscription rows and the catalog (subscription fields are columns of the row; `price` and
 * `product` come from the catalog).
 */
export const CUSTOMER_ROOT_FIELDS: ReadonlySet<string> = new Set(['subscriptions', 'subscription', 'viewer']);

/** Distinct answers kept per catalog snapshot; the oldest goes first beyond that. */
export const MAX_CACHED_RESPONSES = 1000;

type Scope = 'catalog' | 'customer' | null;

export interface ResponseCacheOptions {
  catalog: () => CatalogCache;
  /**
   * Everything a customer-scoped answer is computed from, for the customer of `userId`, as one
   * string read from the database (the customer row and all its subscription rows); null when
   * the user has no customer yet.
   */
  customerData: (userId: string) => Promise<string | null>;
  maxEntries?: number;
}

/**
 * Whole-response cache for the read queries a frontend repeats most: the catalog (`products`,
 * `product`) and the caller's own subscriptions (`subscriptions`, `subscription`, `viewer`).
 *
 * An answer is kept together with the data it was computed from and served again only while that
 * data is unchanged, so it can never be stale:
 * - Entries belong to one snapshot of `CatalogCache`. Whatever makes the catalog cache load a new
 *   snapshot (a product, price or meter written through the ORM in this process: webhooks,
 *   catalog sync; or the snapshot's time-to-live, which bounds how long another instance's write
 *   goes unseen) makes every entry unreachable at once.
 * - A customer-scoped answer is also keyed by the caller and by the customer's rows as the
 *   database holds them now: each request reads them (one small query instead of executing the
 *   operation), so a change from any instance, webhook or raw SQL is seen at once. An answer is
 *   only kept when those rows did not change while it was computed.
 *
 * Not cached: mutations, anything with another root field, an admin's `customerId`, a root
 * fragment or directive, answers with errors. Everything before execution still runs for every
 * request: the token check, parsing and validation (Apollo caches those by query text), and the
 * complexity limit.
 */
export function responseCachePlugin(options: ResponseCacheOptions): ApolloServerPlugin<GraphQLContext> {
  const maxEntries = options.maxEntries ?? MAX_CACHED_RESPONSES;
  const bySnapshot = new WeakMap<CatalogSnapshot, Map<string, FormattedExecutionResult>>();
  // Apollo hands out the same parsed document for the same query text, so an operation's scope
  // is worked out once.
  const scopes = new WeakMap<OperationDefinitionNode, Scope>();
  const scopeOf = (operation: OperationDefinitionNode): Scope => {
    let scope = scopes.get(operation);
    if (scope === undefined) {
      scope = classify(operation);
      scopes.set(operation, scope);
    }
    return scope;
  };

  return {
    async requestDidStart() {
      let entries: Map<string, FormattedExecutionResult> | undefined;
      let key: string | undefined;
      let customer: { userId: string; data: string } | undefined;
      return {
        async responseForOperation({ operation, queryHash, request, contextValue }) {
          const scope = scopeOf(operation);
          if (scope === null) return null;
          let snapshot: CatalogSnapshot;
          let data = '';
          try {
            snapshot = await options.catalog().get();
            if (scope === 'customer') {
              const userId = contextValue.user?.userId;
              if (!userId) return null;
              const current = await options.customerData(userId);
              // No customer yet: `viewer` would create it; nothing to key on.
              if (current === null) return null;
              customer = { userId, data: current };
              data = `${userId}\u0000${current}`;
            }
          } catch {
            // The data could not be read: execution runs as usual and reports it where it belongs.
            return null;
          }
          entries = bySnapshot.get(snapshot);
          if (!entries) {
            entries = new Map();
            bySnapshot.set(snapshot, entries);
          }
          key = `${queryHash}\u0000${request.operationName ?? ''}\u0000${request.variables ? JSON.stringify(request.variables) : ''}\u0000${data}`;
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
          if (customer) {
            // Kept only if nothing changed while the answer was computed: otherwise it might
            // mix rows from before and after, under a key that names the rows from before.
            const after = await options.customerData(customer.userId).catch(() => null);
            if (after !== customer.data) return;
          }
          if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
          entries.set(key, result);
        },
      };
    },
  };
}

/**
 * Which data an operation's answer depends on, from its root fields; null when it may depend on
 * anything else. Root fragments and directives are not looked into.
 */
function classify(operation: OperationDefinitionNode): Scope {
  if (operation.operation !== 'query') return null;
  let scope: Scope = 'catalog';
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind !== Kind.FIELD || selection.directives?.length) return null;
    const name = selection.name.value;
    if (CATALOG_ROOT_FIELDS.has(name)) continue;
    if (!CUSTOMER_ROOT_FIELDS.has(name)) return null;
    // An admin acting for another customer: keyed on the caller's rows it would be wrong.
    if (selection.arguments?.some((a) => a.name.value === 'customerId')) return null;
    scope = 'customer';
  }
  return scope;
}

/**
 * The SQL for `customerData`: the customer row of a user and all its subscription rows, every
 * column, as one text.
 */
export const CUSTOMER_DATA_SQL = `select row_to_json(c)::text || coalesce((select json_agg(s order by s.id)::text from subscriptions s where s.customer_id = c.id), '[]') as data
  from customers c where c.user_id = $1`;
