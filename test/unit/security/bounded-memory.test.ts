import type express from 'express';
import { parse } from 'graphql';
import { boundedDocumentStore, documentBytes, isPublicDocument } from '../../../src/security/bounded-memory';
import { currentRequestScope, requestScope } from '../../../src/graphql/request-scope';

/** Runs `fn` inside a request scope, as the /graphql route does, optionally authenticated. */
function inScope<T>(authenticated: boolean, fn: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const handler = requestScope();
    handler({ headers: {} } as express.Request, {} as express.Response, () => {
      currentRequestScope()!.authenticated = authenticated;
      fn().then(resolve, reject);
    });
  });
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
    const store = boundedDocumentStore();
    await inScope(false, async () => {
      await store.set('catalog', catalog);
      await store.set('mutation', mutation);
      await store.set('viewer', viewer);
    });
    expect(await store.get('catalog')).toBe(catalog);
    expect(await store.get('mutation')).toBeUndefined();
    expect(await store.get('viewer')).toBeUndefined();
    await inScope(true, () => store.set('mutation', mutation));
    expect(await store.get('mutation')).toBe(mutation);
  });

  it('stays within its budget of bytes, the least recently used going first', async () => {
    const padded = (i: number) => parse(`# ${'x'.repeat(10_000)} ${i}\n{ products { code } }`);
    const size = documentBytes(padded(0));
    expect(size).toBeGreaterThan(20_000);
    const store = boundedDocumentStore(size * 3);
    for (let i = 0; i < 10; i++) await store.set(`d${i}`, padded(i));
    const kept = [];
    for (let i = 0; i < 10; i++) if (await store.get(`d${i}`)) kept.push(i);
    expect(kept).toEqual([7, 8, 9]);
  });
});
