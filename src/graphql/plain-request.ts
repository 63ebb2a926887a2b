import type { Request } from 'express';

/** An operation as the HTTP fast paths ahead of Apollo take it. */
export interface PlainGraphQLRequest {
  query: string;
  operationName: string | null | undefined;
  variables: Record<string, unknown> | undefined;
}

/**
 * The operation of a JSON POST (after the JSON body parser) that Apollo would answer as
 * `application/json; charset=utf-8`: an `Accept` of none, anything or JSON alone (others go
 * through Apollo's negotiation), no `extensions` (persisted queries and the like), and an
 * operation name and variables of the right types. Null for anything else: the fast paths
 * leave it to Apollo, which answers or refuses it as always.
 */
export function plainGraphQLRequest(req: Request): PlainGraphQLRequest | null {
  if (req.method !== 'POST') return null;
  const body = req.body as Record<string, unknown> | undefined;
  const query = body?.query;
  if (typeof query !== 'string' || body!.extensions !== undefined) return null;
  const accept = req.headers.accept;
  if (!(accept === undefined || accept === '*/*' || accept === 'application/json')) return null;
  const { operationName, variables } = body!;
  if (!(operationName === undefined || operationName === null || typeof operationName === 'string')) return null;
  if (!(variables === undefined || variables === null || (typeof variables === 'object' && !Array.isArray(variables)))) return null;
  return { query, operationName, variables: (variables ?? undefined) as Record<string, unknown> | undefined };
}

/** What a query text is remembered under: the text and the operation name it was sent with. */
export function operationKey(query: string, operationName: string | null | undefined): string {
  return `${operationName ?? ''}\u0000${query}`;
}
