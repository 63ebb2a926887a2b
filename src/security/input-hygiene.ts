import { GraphQLError, visit, type DocumentNode } from 'graphql';

/**
 * Deepest nesting of objects and arrays accepted in a request's variables. No input type of the
 * schema nests more than a few levels; anything deeper is refused before it is walked by
 * anything recursive (coercion, hashing, logging), which would run out of stack.
 */
export const MAX_VARIABLE_DEPTH = 32;

/** ES2024's String.prototype.isWellFormed (Node 20 has it; the compiler's ES2022 library does not declare it). */
type WellFormedCheck = string & { isWellFormed(): boolean };

/**
 * Why a string cannot be accepted, or null. PostgreSQL `text` refuses NUL (the statement fails),
 * and an unpaired surrogate has no UTF-8 form, so it would be stored as U+FFFD: two different
 * keys would become the same one.
 */
export function unacceptableString(value: string): string | null {
  if (value.includes('\u0000')) return 'contains a NUL character';
  if (!(value as WellFormedCheck).isWellFormed()) return 'contains an unpaired UTF-16 surrogate';
  return null;
}

function badInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });
}

/** Literal strings of documents already checked (Apollo reuses one parsed document per text). */
const checkedDocuments = new WeakMap<DocumentNode, GraphQLError | null>();

/**
 * One place for the strings every field receives: a NUL or an unpaired surrogate in any string
 * of the variables or in any string literal of the document is BAD_USER_INPUT (HTTP 400) before
 * anything runs, whatever the argument (ids, plan codes, idempotency keys, meters...).
 * Variables nested deeper than MAX_VARIABLE_DEPTH are refused the same way, whether the
 * operation uses them or not. Throws the error to answer with.
 */
export function assertCleanInput(document: DocumentNode, variables: Record<string, unknown> | undefined): void {
  let documentError = checkedDocuments.get(document);
  if (documentError === undefined) {
    documentError = null;
    visit(document, {
      StringValue(node) {
        const problem = unacceptableString(node.value);
        if (problem && !documentError) documentError = badInput(`A string argument ${problem}`);
      },
    });
    checkedDocuments.set(document, documentError);
  }
  if (documentError) throw documentError;
  if (variables) checkVariables(variables);
}

/** Walks the variables without recursion, so no depth can overflow the stack. */
function checkVariables(variables: Record<string, unknown>): void {
  const stack: { value: unknown; depth: number; path: string }[] = [{ value: variables, depth: 0, path: '' }];
  while (stack.length) {
    const { value, depth, path } = stack.pop()!;
    if (typeof value === 'string') {
      const problem = unacceptableString(value);
      if (problem) throw badInput(`Variable ${path.slice(1)} ${problem}`);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_VARIABLE_DEPTH) throw badInput(`Variables are nested more than ${MAX_VARIABLE_DEPTH} levels deep`);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push({ value: value[i], depth: depth + 1, path: `${path}[${i}]` });
      continue;
    }
    for (const [key, item] of Object.entries(value)) {
      const problem = unacceptableString(key);
      if (problem) throw badInput(`A variable's field name ${problem}`);
      stack.push({ value: item, depth: depth + 1, path: path ? `${path}.${key}` : `.$${key}` });
    }
  }
}
