import { parse, type DocumentNode } from 'graphql';
import { boundedDocumentStore, documentBytes, isPublicDocument } from '../../../src/security/bounded-memory';

type Documents = ReturnType<typeof boundedDocumentStore>;

/** What Apollo does with a document that passed validation: the plugin's hooks for the request, then the store. */
async function validatedAndStored(documents: Documents, key: string, document: DocumentNode, signedIn: boolean): Promise<void> {
  const contextValue = { user: signedIn ? { userId: 'u1', roles: [], isAdmin: false } : null };
  const listener = await (documents.plugin.requestDidStart as any)({ contextValue });
  const end = await listener?.validationDidStart?.({ contextValue, document });
  await end?.();
  await documents.store.set(key, document);
}

describe(boundedDocumentStore.name, () => {
  const catalog = parse(`{ products { code } }`);
  const mutation = parse(`mutation { recordUsage(input: { quantity: 1 }) { id } }`);
  const viewer = parse(`{ viewer { id } }`);

  it('tells public documents (catalog queries only) from the rest', () => {
    expect(isPublicDocument(catalog)).toBe(true);
    expect(isPublicDocument(parse(`query A { product(code: "pro") { code } } query B { products { code } }`))).toBe(true);
    expect(isPublicDocument(mutation)).toBe(false);
    expect(isPublicDocument(viewer)).toBe(false);
    expect(isPublicDocument(parse(`{ products { code } viewer { id } }`))).toBe(false);
  });

  it('keeps nothing but public documents for a request that has not authenticated', async () => {
    const documents = boundedDocumentStore();
    const { store } = documents;
    await validatedAndStored(documents, 'catalog', catalog, false);
    await validatedAndStored(documents, 'mutation', mutation, false);
    await validatedAndStored(documents, 'viewer', viewer, false);
    expect(await store.get('catalog')).toBe(catalog);
    expect(await store.get('mutation')).toBeUndefined();
    expect(await store.get('viewer')).toBeUndefined();
    await validatedAndStored(documents, 'mutation', mutation, true);
    expect(await store.get('mutation')).toBe(mutation);
    // The mark is on the document a signed-in caller's request validated, not on its text.
    const again = parse(`{ viewer { id } }`);
    await validatedAndStored(documents, 'viewer', again, false);
    expect(await store.get('viewer')).toBeUndefined();
  });

  it('stays within its budget of bytes, the least recently used going first', async () => {
    const padded = (i: number) => parse(`# ${'x'.repeat(10_000)} ${i}\n{ products { code } }`);
    const size = documentBytes(padded(0));
    expect(size).toBeGreaterThan(20_000);
    const { store } = boundedDocumentStore(size * 3);
    for (let i = 0; i < 10; i++) await store.set(`d${i}`, padded(i));
    const kept = [];
    for (let i = 0; i < 10; i++) if (await store.get(`d${i}`)) kept.push(i);
    expect(kept).toEqual([7, 8, 9]);
  });
});
