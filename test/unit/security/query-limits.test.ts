import { buildSchema, getIntrospectionQuery, Kind, parse, validate, specifiedRules, type OperationDefinitionNode } from 'graphql';
import {
  aliasLimitRule,
  complexityError,
  costVariables,
  depthLimitRule,
  INTROSPECTION_DEPTH,
  operationAliases,
  operationDepth,
  rootFieldCount,
} from '../../../src/security/query-limits';

const schema = buildSchema(`
  type Query { node: Node nodes(first: Int): [Node!]! }
  type Node { id: ID! child: Node children: [Node!]! }
  type Mutation { touch(id: ID!): Node }
`);

function operationOf(source: string) {
  const document = parse(source);
  const operation = document.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION) as OperationDefinitionNode;
  const fragments = new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])),
  );
  return { document, operation, fragments };
}

const nested = (levels: number) => `{ node ${'{ child '.repeat(levels - 2)}{ id }${' }'.repeat(levels - 2)} }`;
const codesOf = (source: string, rules: ReturnType<typeof depthLimitRule>[]) =>
  validate(schema, parse(source), [...specifiedRules, ...rules]).map((e) => e.extensions?.code ?? 'SPEC');

describe('query limits', () => {
  describe('operationDepth', () => {
    it('counts nested fields, not fragments', () => {
      expect(operationDepth(operationOf('{ node { id } }').operation, new Map())).toBe(2);
      const { operation, fragments } = operationOf('{ node { ...F } } fragment F on Node { ... on Node { child { id } } }');
      expect(operationDepth(operation, fragments)).toBe(3);
    });

    it('survives a fragment cycle (left for graphql to refuse)', () => {
      const { operation, fragments } = operationOf('{ node { ...A } } fragment A on Node { child { ...B } } fragment B on Node { child { ...A } }');
      expect(operationDepth(operation, fragments)).toBeGreaterThan(0);
    });
  });

  describe('depthLimitRule', () => {
    it('accepts an operation at the limit and refuses one level more with QUERY_TOO_DEEP', () => {
      expect(codesOf(nested(5), [depthLimitRule(5)])).toEqual([]);
      const errors = validate(schema, parse(nested(6)), [depthLimitRule(5)]);
      expect(errors).toHaveLength(1);
      expect(errors[0].extensions).toMatchObject({ code: 'QUERY_TOO_DEEP', limit: 5, actual: 6 });
    });

    it('measures depth hidden in fragments', () => {
      const source = `{ node { ...F } } fragment F on Node { child { child { child { id } } } }`;
      expect(codesOf(source, [depthLimitRule(4)])).toEqual(['QUERY_TOO_DEEP']);
    });

    it('lets the standard introspection query through at a lower limit', () => {
      expect(codesOf(getIntrospectionQuery(), [depthLimitRule(5)])).toEqual([]);
      const tooDeep = `{ __type(name: "Node") { ${'ofType { '.repeat(15)} name ${'} '.repeat(15)} } }`;
      expect(codesOf(tooDeep, [depthLimitRule(5)])).toEqual(['QUERY_TOO_DEEP']);
      expect(INTROSPECTION_DEPTH).toBe(15);
    });
  });

  describe('aliasLimitRule', () => {
    it('counts a fragment once for every place it is spread', () => {
      const { operation, fragments } = operationOf('{ a: node { ...F } b: node { ...F } } fragment F on Node { x: id y: id }');
      expect(operationAliases(operation, fragments)).toBe(6);
    });

    it('refuses more aliases than allowed with TOO_MANY_ALIASES', () => {
      const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: node { id }`).join(' ')} }`;
      expect(codesOf(aliases(3), [aliasLimitRule(3)])).toEqual([]);
      expect(codesOf(aliases(4), [aliasLimitRule(3)])).toEqual(['TOO_MANY_ALIASES']);
    });

    it('stays fast on nested spreads that would expand exponentially', () => {
      const levels = 40;
      const fragments = Array.from({ length: levels }, (_, i) =>
        i === levels - 1 ? `fragment F${i} on Node { x: id }` : `fragment F${i} on Node { a: child { ...F${i + 1} } b: child { ...F${i + 1} } }`,
      ).join('\n');
      const { operation, fragments: map } = operationOf(`{ node { ...F0 } } ${fragments}`);
      expect(operationAliases(operation, map)).toBeGreaterThan(2 ** 39);
    });
  });

  describe('rootFieldCount', () => {
    it('counts every root field, aliased or spread, but not __typename', () => {
      const { document, operation } = operationOf(
        'mutation { a: touch(id: 1) { id } b: touch(id: 2) { id } __typename ...M } fragment M on Mutation { c: touch(id: 3) { id } }',
      );
      expect(rootFieldCount(operation, document)).toBe(3);
    });
  });

  describe('complexityError', () => {
    const check = (source: string, maxComplexity: number, variables?: Record<string, unknown>) =>
      complexityError({ schema, document: parse(source), variables, maxComplexity });

    it('answers null within the limit and QUERY_TOO_COMPLEX above it', () => {
      expect(check('{ node { id } }', 2)).toBeNull();
      const error = check('{ node { id child { id } } }', 2);
      expect(error?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', limit: 2, actual: 4 });
    });

    it('leaves variables that do not coerce to execution', () => {
      expect(check('query($n: Int!) { nodes(first: $n) { id } }', 100, { n: 'many' })).toBeNull();
    });

    it('refuses documents with more selections than it will count', () => {
      const wide = `{ node { ${Array.from({ length: 6000 }, () => 'id').join(' ')} } }`;
      expect(check(wide, 1_000_000)?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
    });
  });

  describe('costVariables', () => {
    // `nodes` costs per its `first` argument, the way type-graphql's `@Field({ complexity })` declares it.
    const costed = buildSchema(`
      type Query { node: Node nodes(first: Int): [Node!]! }
      type Node { id: ID! child: Node }
      type Mutation { touch(id: ID!, note: String): Node }
    `);
    (costed.getQueryType()!.getFields().nodes.extensions as any) = {
      complexity: ({ args, childComplexity }: { args: { first?: number }; childComplexity: number }) => (args.first ?? 10) * childComplexity,
    };

    it('names the variables of directives and of arguments that set a cost, and no others', () => {
      const document = parse(`query($n: Int, $skip: Boolean!, $id: ID!, $note: String) {
        nodes(first: $n) { id child @skip(if: $skip) { id } }
        node { id }
      }`);
      expect(costVariables(costed, document)).toEqual(['n', 'skip']);
      expect(costVariables(costed, parse('mutation($id: ID!, $note: String) { touch(id: $id, note: $note) { id } }'))).toEqual([]);
    });

    it('gives estimates that differ only through those variables', () => {
      const source = 'query($n: Int, $deep: Boolean!) { nodes(first: $n) { id child @include(if: $deep) { id } } }';
      const cost = (variables: Record<string, unknown>) =>
        complexityError({ schema: costed, document: parse(source), variables, maxComplexity: 1 })?.extensions?.actual;
      expect(cost({ n: 1, deep: false })).not.toEqual(cost({ n: 5, deep: false }));
      expect(cost({ n: 1, deep: false })).not.toEqual(cost({ n: 1, deep: true }));
    });
  });
});
