import { InMemoryLRUCache, type KeyValueCache } from '@apollo/utils.keyvaluecache';
import { Kind, type DocumentNode } from 'graphql';
import { CATALOG_ROOT_FIELDS } from '../graphql/response-cache';
import { currentRequestScope } from '../graphql/request-scope';

/** Estimated bytes of parsed documents Apollo keeps, so a repeated text skips parsing and validation. */
export const DOCUMENT_STORE_MAX_BYTES = 8 * 2 ** 20;
/** Bytes of persisted query texts (APQ) kept by hash. */
export const PERSISTED_QUERIES_MAX_BYTES = 4 * 2 ** 20;

/**
 * What a parsed document costs the heap, estimated without walking it twice: its JSON (the AST
 * without locations) counted twice over for the objects behind it, plus the query text its
 * locations keep alive. Checked against the live heap in test/integration/memory-bound.test.ts.
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
 * Apollo's store of validated documents, bounded in bytes. Apollo's default is bounded too, but
 * at 30 MB of JSON, which is several times that in heap. Only documents that passed validation
 * (the depth, alias and complexity limits included) reach it, and an anonymous request stores
 * only a document anyone may run (the public catalog): a text that needs a token is parsed again
 * until someone with a token sends it, so no one without a token fills the store.
 */
export function boundedDocumentStore(maxBytes = DOCUMENT_STORE_MAX_BYTES): KeyValueCache<DocumentNode> {
  const store = new InMemoryLRUCache<DocumentNode>({ maxSize: maxBytes, sizeCalculation: documentBytes });
  return {
    get: (key) => store.get(key),
    delete: (key) => store.delete(key),
    set: async (key, document, options) => {
      if (!currentRequestScope()?.authenticated && !isPublicDocument(document)) return;
      await store.set(key, document, options);
    },
  };
}

/** The persisted-query cache (query texts by their hash), bounded in bytes (two per UTF-16 unit). */
export function boundedPersistedQueries(maxBytes = PERSISTED_QUERIES_MAX_BYTES): InMemoryLRUCache<string> {
  return new InMemoryLRUCache<string>({ maxSize: maxBytes, sizeCalculation: (text) => 2 * text.length + 64 });
}
