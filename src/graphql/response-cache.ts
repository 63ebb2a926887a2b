import { HeaderMap, type ApolloServerPlugin } from '@apollo/server';
import type { Request, RequestHandler } from 'express';
import { Kind, type FormattedExecutionResult, type OperationDefinitionNode } from 'graphql';
import type { CatalogCache, CatalogSnapshot } from '../billing/catalog/catalog-cache';
import type { AuthUser, GraphQLContext } from './context';
import { operationKey, plainGraphQLRequest } from './plain-request';

/**
 * Root query fields whose answer is the same for every caller and depends only on the catalog.
 */
export const CATALOG_ROOT_FIELDS: ReadonlySet<string> = new Set(['products', 'product', '__typename']);

/**
 * Root query fields whose answer depends only on the caller's customer row, that customer's
 * subscription and entitlement rows and the catalog (subscription fields are columns of the row;
 * `price` and `product` come from the catalog; `hasEntitlement` is one entitlement row).
 */
export const CUSTOMER_ROOT_FIELDS: ReadonlySet<string> = new Set(['subscriptions', 'subscription', 'viewer', 'hasEntitlement']);

/** Distinct answers kept per catalog snapshot; the oldest goes first beyond that. */
export const MAX_CACHED_RESPONSES = 1000;
/** Distinct query texts whose scope is remembered for the HTTP fast path. */
const MAX_KNOWN_QUERIES = 1000;

type Scope = 'catalog' | 'customer';

interface Entry {
  result: FormattedExecutionResult;
  /**
   * The body as the fast path sends it, exactly as Apollo writes `result`, and its ETag
   * (Express's own, as for Apollo's answers); made on the entry's first fast-path answer.
   */
  sent?: { bytes: Buffer; etag: string | undefined };
}

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
 * fragment or directive, answers with errors.
 *
 * Two ways in. `plugin()` answers inside Apollo, after parsing, validation and the complexity
 * limit, and fills the cache. `middleware()` answers a repeat before Apollo: a JSON POST whose
 * query text, operation name and variables were answered before, whose token checks out (a bad
 * one goes on to Apollo, which refuses it) and whose data is unchanged gets the stored body as
 * Apollo wrote it. Everything else goes on to Apollo. Only a text that Apollo parsed, validated
 * and found within the complexity limit can be in the cache, and the limits do not change while
 * the process runs, so the fast path refuses nothing Apollo would accept and accepts nothing it
 * would refuse.
 */
export class ResponseCache {
  private readonly maxEntries: number;
  private readonly bySnapshot = new WeakMap<CatalogSnapshot, Map<string, Entry>>();
  /** Apollo hands out the same parsed document for the same text, so a scope is worked out once per operation. */
  private readonly scopes = new WeakMap<OperationDefinitionNode, Scope | null>();
  /** `query text + operation name` → scope, for texts that have been answered (what the fast path may look up). */
  private readonly knownQueries = new Map<string, Scope>();

  constructor(private readonly options: ResponseCacheOptions) {
    this.maxEntries = options.maxEntries ?? MAX_CACHED_RESPONSES;
  }

  plugin(): ApolloServerPlugin<GraphQLContext> {
    return {
      requestDidStart: async () => {
        let lookup: Lookup | null = null;
        return {
          responseForOperation: async ({ operation, request, contextValue }) => {
            // No operation of that name: Apollo answers OPERATION_RESOLUTION_FAILURE.
            if (!operation) return null;
            const scope = this.scopeOf(operation);
            if (scope === null || request.query === undefined) return null;
            lookup = await this.lookup(scope, request.query, request.operationName, request.variables, contextValue.user);
            if (!lookup?.hit) return null;
            const { hit } = lookup;
            lookup = null;
            return { http: { status: undefined, headers: new HeaderMap() }, body: { kind: 'single', singleResult: hit.result } };
          },
          willSendResponse: async ({ response }) => {
            if (!lookup || response.body.kind !== 'single') return;
            const result = response.body.singleResult;
            if (result.errors?.length || result.data == null) return;
            if (response.http.status !== undefined && response.http.status !== 200) return;
            if (lookup.userId !== null) {
              // Kept only if nothing changed while the answer was computed: otherwise it might
              // mix rows from before and after, under a key that names the rows from before.
              const after = await this.options.customerData(lookup.userId).catch(() => null);
              if (after !== lookup.data) return;
            }
            this.store(lookup, result);
          },
        };
      },
    };
  }

  /**
   * The fast path, mounted after the JSON body parser and before Apollo. `authenticate` is the
   * same check Apollo's context runs.
   */
  middleware(authenticate: ((req: Request) => Promise<AuthUser | null>) | undefined): RequestHandler {
    return (req, res, next) => {
      const request = plainGraphQLRequest(req);
      if (!request) return next();
      const { query, operationName, variables } = request;
      const scope = this.knownQueries.get(operationKey(query, operationName));
      if (!scope) return next();
      (async () => {
        let user: AuthUser | null = null;
        if (scope === 'customer' || req.headers.authorization !== undefined) user = authenticate ? await authenticate(req) : null;
        const lookup = await this.lookup(scope, query, operationName, variables, user);
        return lookup?.hit;
      })().then(
        (hit) => {
          if (!hit) return next();
          if (!hit.sent) {
            const { errors, data, extensions } = hit.result;
            // As Apollo writes a single result: errors, data, extensions, in that order, then a newline.
            const body = `${JSON.stringify({ errors, data, extensions })}\n`;
            const etagOf = req.app.get('etag fn') as ((body: string, encoding: string) => string) | undefined;
            hit.sent = { bytes: Buffer.from(body, 'utf8'), etag: etagOf?.(body, 'utf8') };
          }
          res.setHeader('content-type', 'application/json; charset=utf-8');
          // Express would hash the body again for its ETag on every answer; it skips that when set.
          if (hit.sent.etag) res.setHeader('etag', hit.sent.etag);
          res.send(hit.sent.bytes);
        },
        // A bad token, or data that could not be read: Apollo answers as it always does.
        () => next(),
      );
    };
  }

  private scopeOf(operation: OperationDefinitionNode): Scope | null {
    let scope = this.scopes.get(operation);
    if (scope === undefined) {
      scope = classify(operation);
      this.scopes.set(operation, scope);
    }
    return scope;
  }

  /** The key of a request and its entry if there is one; null when nothing can be cached for it. */
  private async lookup(
    scope: Scope,
    query: string,
    operationName: string | null | undefined,
    variables: Record<string, unknown> | undefined,
    user: AuthUser | null,
  ): Promise<Lookup | null> {
    let snapshot: CatalogSnapshot;
    let userId: string | null = null;
    let data = '';
    try {
      snapshot = await this.options.catalog().get();
      if (scope === 'customer') {
        if (!user) return null;
        const current = await this.options.customerData(user.userId);
        // No customer yet: `viewer` would create it; nothing to key on.
        if (current === null) return null;
        userId = user.userId;
        data = current;
      }
    } catch {
      // The data could not be read: execution runs as usual and reports it where it belongs.
      return null;
    }
    let entries = this.bySnapshot.get(snapshot);
    if (!entries) {
      entries = new Map();
      this.bySnapshot.set(snapshot, entries);
    }
    const key = `${operationKey(query, operationName)}\u0000${variables ? JSON.stringify(variables) : ''}\u0000${userId ?? ''}\u0000${data}`;
    return { scope, query, operationName, entries, key, userId, data, hit: entries.get(key) };
  }

  private store(lookup: Lookup, result: FormattedExecutionResult): void {
    const { entries, key } = lookup;
    if (entries.size >= this.maxEntries) entries.delete(entries.keys().next().value!);
    entries.set(key, { result });
    const known = operationKey(lookup.query, lookup.operationName);
    if (!this.knownQueries.has(known)) {
      if (this.knownQueries.size >= MAX_KNOWN_QUERIES) this.knownQueries.delete(this.knownQueries.keys().next().value!);
      this.knownQueries.set(known, lookup.scope);
    }
  }
}

interface Lookup {
  scope: Scope;
  query: string;
  operationName: string | null | undefined;
  entries: Map<string, Entry>;
  key: string;
  /** The caller, for a customer-scoped answer. */
  userId: string | null;
  data: string;
  hit: Entry | undefined;
}

/**
 * Which data an operation's answer depends on, from its root fields; null when it may depend on
 * anything else. Root fragments and directives are not looked into.
 */
function classify(operation: OperationDefinitionNode): Scope | null {
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
 * The SQL behind `customerData`, for several users at once: each user's customer row and all its
 * subscription and entitlement rows, every column, and the version of the plans' features, as one
 * text per user.
 */
export const CUSTOMER_DATA_SQL = `select c.user_id, row_to_json(c)::text || coalesce((select json_agg(s order by s.id)::text from subscriptions s where s.customer_id = c.id), '[]')
    || coalesce((select json_agg(e order by e.feature)::text from entitlements e where e.customer_id = c.id), '[]')
    || (select count(*)::text || coalesce(max(updated_at)::text, '') from plan_features) as data
  from customers c where c.user_id = any($1::text[])`;

/**
 * `customerData` over `query` (CUSTOMER_DATA_SQL's rows for some user ids), with concurrent
 * callers sharing statements: a call made while no statement runs starts one at once; calls
 * made while one runs wait for it to finish and then share the next. Every call is answered by a
 * statement that started after the call was made, so it sees every change committed before it
 * (a caller's own mutation, say), exactly as a statement of its own would.
 */
export function sharedCustomerData(
  query: (userIds: string[]) => Promise<{ user_id: string; data: string }[]>,
): (userId: string) => Promise<string | null> {
  let waiting: { userId: string; resolve: (data: string | null) => void; reject: (error: unknown) => void }[] = [];
  let running = false;
  const run = async () => {
    if (running || waiting.length === 0) return;
    running = true;
    const batch = waiting;
    waiting = [];
    try {
      const rows = await query([...new Set(batch.map((w) => w.userId))]);
      const byUser = new Map(rows.map((r) => [r.user_id, r.data]));
      for (const w of batch) w.resolve(byUser.get(w.userId) ?? null);
    } catch (error) {
      for (const w of batch) w.reject(error);
    } finally {
      running = false;
      void run();
    }
  };
  return (userId) =>
    new Promise((resolve, reject) => {
      waiting.push({ userId, resolve, reject });
      void run();
    });
}
