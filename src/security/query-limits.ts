import type {
  GraphQLError} from 'graphql';
import {
  Kind,
  isInterfaceType,
  isObjectType,
  validate,
  visit,
  type ASTNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import { createComplexityRule, fieldExtensionsEstimator, simpleEstimator } from 'graphql-query-complexity';
import { LimitCode, limitError } from './security-errors';

/**
 * Static limits on the shape of a document. Fragments are measured once and memoised: a fragment's
 * depth and alias count do not depend on where it is spread, and re-walking it at every spread
 * would let a small document with nested spreads cost exponential time here, the very thing
 * these rules exist to prevent. A fragment cycle counts as zero: graphql's own NoFragmentCycles
 * rule already refuses it in the same validation pass.
 */
function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}

type Measure = (selectionSet: SelectionSetNode) => number;

/** Builds a measure over selection sets with memoised, cycle-safe fragment spreads. */
function measurer(
  fragments: Map<string, FragmentDefinitionNode>,
  combine: (selectionSet: SelectionSetNode, measureSet: Measure, measureFragment: (name: string) => number) => number,
): Measure {
  const memo = new Map<string, number>();
  const active = new Set<string>();
  const measureFragment = (name: string): number => {
    const known = memo.get(name);
    if (known !== undefined) return known;
    const fragment = fragments.get(name);
    if (!fragment || active.has(name)) return 0;
    active.add(name);
    const value = measureSet(fragment.selectionSet);
    active.delete(name);
    memo.set(name, value);
    return value;
  };
  const measureSet: Measure = (selectionSet) => combine(selectionSet, measureSet, measureFragment);
  return measureSet;
}

/**
 * The standard introspection query (graphql-js `getIntrospectionQuery`, which GraphiQL sends)
 * nests 15 levels through `ofType`, so introspection fields get this allowance when the limit is
 * lower: the playground keeps working, and introspection is off in production unless enabled.
 * The fan-out of cyclic introspection (`fields { type { fields ... } }`) is capped separately by
 * graphql-js's own MaxIntrospectionDepthRule, part of the specified rules Apollo runs.
 */
export const INTROSPECTION_DEPTH = 15;

function depthMeasure(fragments: Map<string, FragmentDefinitionNode>): Measure {
  return measurer(fragments, (selectionSet, measureSet, measureFragment) => {
    let max = 0;
    for (const selection of selectionSet.selections) {
      const d =
        selection.kind === Kind.FIELD
          ? 1 + (selection.selectionSet ? measureSet(selection.selectionSet) : 0)
          : selection.kind === Kind.INLINE_FRAGMENT
            ? measureSet(selection.selectionSet)
            : measureFragment(selection.name.value);
      if (d > max) max = d;
    }
    return max;
  });
}

/** Field nesting depth: `{ a { b } }` is 2. Fragments add no level of their own. */
export function operationDepth(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>): number {
  return depthMeasure(fragments)(operation.selectionSet);
}

/** The root fields an operation selects, through any fragments at the root. */
function rootFields(selectionSet: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, seen = new Set<string>()): FieldNode[] {
  const fields: FieldNode[] = [];
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) fields.push(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT) fields.push(...rootFields(selection.selectionSet, fragments, seen));
    else {
      const fragment = fragments.get(selection.name.value);
      if (!fragment || seen.has(fragment.name.value)) continue;
      seen.add(fragment.name.value);
      fields.push(...rootFields(fragment.selectionSet, fragments, seen));
    }
  }
  return fields;
}

/** Aliased fields an operation executes, counting a fragment once for every place it is spread. */
export function operationAliases(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>): number {
  const aliases = measurer(fragments, (selectionSet, measureSet, measureFragment) => {
    let sum = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        sum += (selection.alias ? 1 : 0) + (selection.selectionSet ? measureSet(selection.selectionSet) : 0);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        sum += measureSet(selection.selectionSet);
      } else {
        sum += measureFragment(selection.name.value);
      }
    }
    return sum;
  });
  return aliases(operation.selectionSet);
}

/** Mutation (or query) root fields an operation runs, those `include` accepts; each one is a separate unit of work. */
export function rootFieldCount(operation: OperationDefinitionNode, document: DocumentNode, include: (fieldName: string) => boolean = () => true): number {
  const count = measurer(fragmentsOf(document), (selectionSet, measureSet, measureFragment) => {
    let sum = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) sum += selection.name.value !== '__typename' && include(selection.name.value) ? 1 : 0;
      else if (selection.kind === Kind.INLINE_FRAGMENT) sum += measureSet(selection.selectionSet);
      else sum += measureFragment(selection.name.value);
    }
    return sum;
  });
  return count(operation.selectionSet);
}

function perOperationRule(
  measure: (operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>) => number,
  max: number,
  refuse: (actual: number, operation: OperationDefinitionNode) => GraphQLError,
): ValidationRule {
  return (context) => {
    const fragments = fragmentsOf(context.getDocument());
    return {
      OperationDefinition(operation) {
        const actual = measure(operation, fragments);
        if (actual > max) context.reportError(refuse(actual, operation));
      },
    };
  };
}

/**
 * Refuses operations nested deeper than `maxDepth` fields, with QUERY_TOO_DEEP; introspection
 * root fields (`__schema`, `__type`) may go to INTROSPECTION_DEPTH.
 */
export function depthLimitRule(maxDepth: number): ValidationRule {
  const introspectionMax = Math.max(maxDepth, INTROSPECTION_DEPTH);
  return (context) => {
    const fragments = fragmentsOf(context.getDocument());
    const depth = depthMeasure(fragments);
    return {
      OperationDefinition(operation) {
        for (const field of rootFields(operation.selectionSet, fragments)) {
          const max = field.name.value.startsWith('__') ? introspectionMax : maxDepth;
          const actual = 1 + (field.selectionSet ? depth(field.selectionSet) : 0);
          if (actual > max) {
            context.reportError(
              limitError(LimitCode.QUERY_TOO_DEEP, `The operation is nested ${actual} levels deep; the maximum is ${max}`, max, actual, field),
            );
            return;
          }
        }
      },
    };
  };
}

/** Refuses operations with more than `maxAliases` aliased fields, with TOO_MANY_ALIASES. */
export function aliasLimitRule(maxAliases: number): ValidationRule {
  return perOperationRule(operationAliases, maxAliases, (actual, operation) =>
    limitError(LimitCode.TOO_MANY_ALIASES, `The operation uses ${actual} aliases; the maximum is ${maxAliases}`, maxAliases, actual, operation),
  );
}

/**
 * Fields cost 1 unless they declare their own cost: type-graphql's `@Field({ complexity })` (or a
 * function of the arguments) lands in the field's extensions, which fieldExtensionsEstimator reads.
 */
export const complexityEstimators = [fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })];

/** Above this many selections the estimate itself would be the expensive part. */
const MAX_QUERY_NODES = 5000;

/**
 * Runs graphql-query-complexity's rule for one operation with the request's variables, so costs
 * that depend on arguments (`first: $n`) see the values the caller sent; that is why it runs per
 * request rather than among Apollo's static validation rules. Returns the error to answer with,
 * or null. Variables that do not coerce are left for execution to report as BAD_USER_INPUT.
 */
export function complexityError(options: {
  schema: GraphQLSchema;
  document: DocumentNode;
  operationName?: string | null;
  variables?: Record<string, unknown>;
  maxComplexity: number;
}): GraphQLError | null {
  const { maxComplexity } = options;
  let errors: readonly GraphQLError[];
  try {
    errors = validate(options.schema, options.document, [
      createComplexityRule({
        maximumComplexity: maxComplexity,
        variables: options.variables ?? {},
        operationName: options.operationName ?? undefined,
        estimators: complexityEstimators,
        maxQueryNodes: MAX_QUERY_NODES,
        createError: (max, actual) =>
          limitError(LimitCode.QUERY_TOO_COMPLEX, `The operation costs ${actual}; the maximum is ${max}`, max, actual),
      }),
    ]);
  } catch {
    // The rule throws (rather than reports) when the document has more selections than it will count.
    return limitError(
      LimitCode.QUERY_TOO_COMPLEX,
      `The operation has more than ${MAX_QUERY_NODES} selections; the maximum cost is ${maxComplexity}`,
      maxComplexity,
      MAX_QUERY_NODES,
    );
  }
  return errors.find((e) => e.extensions?.code === LimitCode.QUERY_TOO_COMPLEX) ?? null;
}

/** Names of the schema's fields whose cost is a function of their arguments. */
const argumentCostFields = new WeakMap<GraphQLSchema, Set<string>>();

function fieldsWithArgumentCost(schema: GraphQLSchema): Set<string> {
  let names = argumentCostFields.get(schema);
  if (!names) {
    names = new Set();
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) && !isInterfaceType(type)) continue;
      for (const field of Object.values(type.getFields())) {
        if (typeof field.extensions?.complexity === 'function') names.add(field.name);
      }
    }
    argumentCostFields.set(schema, names);
  }
  return names;
}

/**
 * The variables of `document` whose values can change its complexity estimate: those used in
 * directives (`@include(if: $x)` and `@skip` decide which fields count) and in the arguments of
 * fields whose cost is a function of their arguments (matched by field name, on any type, so the
 * set is never too small). Other variables (a mutation's input, say) cannot change the cost, so
 * an operation checked once with some values needs no new estimate for other values of them.
 */
export function costVariables(schema: GraphQLSchema, document: DocumentNode): string[] {
  const argumentCost = fieldsWithArgumentCost(schema);
  const names = new Set<string>();
  const collect = (node: ASTNode) =>
    visit(node, {
      Variable(variable) {
        names.add(variable.name.value);
      },
    });
  visit(document, {
    Directive(directive) {
      collect(directive);
      return false;
    },
    Field(field) {
      if (argumentCost.has(field.name.value)) for (const argument of field.arguments ?? []) collect(argument);
    },
  });
  return [...names].sort();
}
