import { createHash } from 'node:crypto';
import { HeaderMap, type ApolloServerPlugin, type GraphQLRequestContextWillSendResponse } from '@apollo/server';
import { LRUCache } from 'lru-cache';
import { Kind, type FormattedExecutionResult, type OperationDefinitionNode } from 'graphql';
import type { CatalogCache, CatalogSnapshot } from '../billing/catalog/catalog-cache';
import type { GraphQLContext } from './context';

/** Root query fields whose answer is the same for every caller and depends only on the catalog. */
export const CATALOG_ROOT_FIELDS: ReadonlySet<string> = new Set(['products', 'product', '__typename']);

/** Bytes of answers kept (their JSON text); the least recently used go first beyond that. */
export const CATALOG_ANSWERS_MAX_BYTES = 4 * 2 ** 20;

/**
 * How long a browser or CDN may reuse a catalog answer fetched with GET before asking again
 * (with If-None-Match, answered 304 while the catalog is unchanged). Matches how long another
 * instance's catalog change may go unseen here (CATALOG_CACHE_TTL_MS).
 */
export const CATALOG_MAX_AGE_SECONDS = 5;

interface Entry {
  /** Which catalog snapshot the answer was computed from. */
  snapshot: number;
  result: FormattedExecutionResult;
  etag: string;
  bytes: number;
}

/** What one request found out about itself, for willSendResponse. */
interface Scoped {
  key: string;
  snapshot: number;
  hit: Entry | undefined;
}

/**
 * Answers of catalog queries (`products`, `product`), kept inside Apollo's pipeline: a request
 * is parsed, validated, limited and rate-checked like any other, and only then answered from
 * here instead of running resolvers. An answer is tied to the catalog snapshot it was computed
 * from and is never served once the catalog cache holds another (a product, price or meter
 * written through the ORM in this process drops it at once; another instance's change shows
 * within the catalog cache's time-to-live). Nothing that names a caller is kept: an operation
 * with any other root field, a directive or a fragment on the root is executed every time.
 *
 * Every catalog answer carries an ETag (a hash of its JSON); over GET (plain or persisted
 * query) it also carries Cache-Control, and a GET whose If-None-Match names the current ETag is
 * answered 304 with no body. Memory is bounded in bytes, and keys are hashes, so query texts
 * are never held here.
 */
export class CatalogResponseCache {
  private readonly answers: LRUCache<string, Entry>;
  private readonly snapshotIds = new WeakMap<CatalogSnapshot, number>();
  private nextSnapshotId = 1;
  /** Apollo hands out the same parsed document for the same text, so an operation is classified once. */
  private readonly catalogOnly = new WeakMap<OperationDefinitionNode, boolean>();

  constructor(
    private readonly catalog: () => CatalogCache,
    maxBytes = CATALOG_ANSWERS_MAX_BYTES,
  ) {
    this.answers = new LRUCache<string, Entry>({ maxSize: maxBytes, sizeCalculation: (entry) => entry.bytes });
  }

  /** Bytes of answers held now. */
  get size(): number {
    return this.answers.calculatedSize;
  }

  plugin(): ApolloServerPlugin<GraphQLContext> {
    return {
      requestDidStart: async () => {
        let scoped: Scoped | null = null;
        return {
          responseForOperation: async ({ operation, request, queryHash }) => {
            // No operation of that name: Apollo answers OPERATION_RESOLUTION_FAILURE.
            if (!operation || !this.isCatalogOperation(operation)) return null;
            let snapshot: CatalogSnapshot;
            try {
              snapshot = await this.catalog().get();
            } catch {
              // The catalog could not be read: the resolvers run and report it where it belongs.
              return null;
            }
            const key = createHash('sha256')
              .update(`${queryHash}\u0000${request.operationName ?? ''}\u0000${request.variables ? JSON.stringify(request.variables) : ''}`)
              .digest('base64url');
            const id = this.snapshotId(snapshot);
            const entry = this.answers.get(key);
            const hit = entry && entry.snapshot === id ? entry : undefined;
            scoped = { key, snapshot: id, hit };
            if (!hit) return null;
            return { http: { status: undefined, headers: new HeaderMap() }, body: { kind: 'single', singleResult: hit.result } };
          },
          willSendResponse: async (requestContext) => {
            if (scoped) this.finish(scoped, requestContext);
          },
        };
      },
    };
  }

  private finish(scoped: Scoped, { response, request }: GraphQLRequestContextWillSendResponse<GraphQLContext>): void {
    if (response.body.kind !== 'single') return;
    if (response.http.status !== undefined && response.http.status !== 200) return;
    let entry = scoped.hit;
    if (!entry) {
      const result = response.body.singleResult;
      if (result.errors?.length || result.data == null) return;
      const json = JSON.stringify(result);
      entry = {
        snapshot: scoped.snapshot,
        result,
        etag: `W/"${createHash('sha256').update(json).digest('base64url').slice(0, 27)}"`,
        bytes: Buffer.byteLength(json) + scoped.key.length,
      };
      this.answers.set(scoped.key, entry);
    }
    response.http.headers.set('etag', entry.etag);
    if (request.http?.method !== 'GET') return;
    response.http.headers.set('cache-control', `public, max-age=${CATALOG_MAX_AGE_SECONDS}`);
    if (ifNoneMatch(request.http.headers.get('if-none-match'), entry.etag)) response.http.status = 304;
  }

  private snapshotId(snapshot: CatalogSnapshot): number {
    let id = this.snapshotIds.get(snapshot);
    if (id === undefined) {
      id = this.nextSnapshotId++;
      this.snapshotIds.set(snapshot, id);
    }
    return id;
  }

  private isCatalogOperation(operation: OperationDefinitionNode): boolean {
    let known = this.catalogOnly.get(operation);
    if (known === undefined) {
      known =
        operation.operation === 'query' &&
        !operation.directives?.length &&
        operation.selectionSet.selections.every(
          (s) => s.kind === Kind.FIELD && !s.directives?.length && CATALOG_ROOT_FIELDS.has(s.name.value),
        );
      this.catalogOnly.set(operation, known);
    }
    return known;
  }
}

/** Whether an If-None-Match header names `etag` (weak comparison, as for GET). */
function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => opaque(tag) === opaque(etag));
}
