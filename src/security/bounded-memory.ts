import { InMemoryLRUCache } from '@apollo/utils.keyvaluecache';
import type { DocumentNode } from 'graphql';

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
 * Apollo's store of validated documents, bounded in bytes. Apollo's default is bounded too, but
 * at 30 MB of JSON, which is several times that in heap; and only documents that passed
 * validation (the depth, alias and complexity limits included) are ever stored.
 */
export function boundedDocumentStore(maxBytes = DOCUMENT_STORE_MAX_BYTES): InMemoryLRUCache<DocumentNode> {
  return new InMemoryLRUCache<DocumentNode>({ maxSize: maxBytes, sizeCalculation: documentBytes });
}

/** The persisted-query cache (query texts by their hash), bounded in bytes (two per UTF-16 unit). */
export function boundedPersistedQueries(maxBytes = PERSISTED_QUERIES_MAX_BYTES): InMemoryLRUCache<string> {
  return new InMemoryLRUCache<string>({ maxSize: maxBytes, sizeCalculation: (text) => 2 * text.length + 64 });
}
