import type { ApolloServerPlugin } from '@apollo/server';
import { InMemoryLRUCache, type KeyValueCache } from '@apollo/utils.keyvaluecache';
import { Kind, type DocumentNode } from 'graphql';
import type { GraphQLContext } from '../graphql/context';
import { CATALOG_ROOT_FIELDS } from '../graphql/response-cache';

/** Estimated bytes of parsed documents Apollo keeps, so a repeated text skips parsing and validation. */
export const DOCUMENT_STORE_MAX_BYTES = 8 * 2 ** 20;
/** Bytes of persisted query texts (APQ) kept by hash. */
export const PERSISTED_QUERIES_MAX_BYTES = 4 * 2 ** 20;

/**
 * What a parsed document costs the heap, estimated without walking it twice: its JSON (the AST
 * without locations) counted twice over for the objects behind it, plus the query text its
 * locations keep alive. Checked against the live heap by `bench/memory-attack.ts` (npm run bench:memory).
 */
export function documentBytes(document: DocumentNode): number {
  return 2 * JSON.stringify(document).length + 2 * (document.loc?.source.body.length ?? 0);
}

/**
 * Whether anyone may run every operation of `document` without a token: queries of the public
 * catalog only.
 */
export function isPublicDocument(document: DocumentNode): boolean {
  return document.definitions.every(
    (definition) =>
      definition.kind === Kind.OPERATION_DEFINITION &&
      definition.operation === 'query' &&
      definition.selectionSet.selections.every((s) => s.kind === Kind.FIELD && CATALOG_ROOT_FIELDS.has(s.name.value)),
  );
}

/**
 * Apollo's store of validated documents, bounded in bytes, and the plugin that admits documents
 * to it. Apollo's default is bounded too, but at 30 MB of JSON, which is several times that in
 * heap. Only documents that passed validation (the depth, alias and complexity limits included)
 * reach it, and an anonymous request stores only a document anyone may run (the public catalog):
 * a text that needs a token is parsed again until someone with a token sends it, so no one
 * without a token fills the store.
 *
 * Apollo hands the store a document right after its validation ends, with no word of the
 * request; the plugin, which sees the request's context, marks the documents validated for a
 * caller with a token, and the store keeps those (the mark is on the document object itself, so
 * concurrent requests never see each other's).
 */
export function boundedDocumentStore(maxBytes = DOCUMENT_STORE_MAX_BYTES): { store: KeyValueCache<DocumentNode>; plugin: ApolloServerPlugin<GraphQLContext> } {
  const store = new InMemoryLRUCache<DocumentNode>({ maxSize: maxBytes, sizeCalculation: documentBytes });
  const authenticated = new WeakSet<DocumentNode>();
  return {
    store: {
      get: (key) => store.get(key),
      delete: (key) => store.delete(key),
      set: async (key, document, options) => {
        if (!authenticated.has(document) && !isPublicDocument(document)) return;
        await store.set(key, document, options);
      },
    },
    plugin: {
      async requestDidStart({ contextValue }) {
        if (!contextValue.user) return;
        return {
          async validationDidStart(requestContext) {
            return async (errors) => {
              if (!errors?.length && requestContext.document) authenticated.add(requestContext.document);
            };
          },
        };
      },
    },
  };
}

/** The persisted-query cache (query texts by their hash), bounded in bytes (two per UTF-16 unit). */
export function boundedPersistedQueries(maxBytes = PERSISTED_QUERIES_MAX_BYTES): InMemoryLRUCache<string> {
  return new InMemoryLRUCache<string>({ maxSize: maxBytes, sizeCalculation: (text) => 2 * text.length + 64 });
}
