// The architecture's import rules (docs/architecture.md draws the layers they enforce).
// `npm run lint` runs `depcruise src` with this file after ESLint; a broken rule fails CI.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'Modules form a directed graph: a cycle means two modules are one in disguise. Type-only edges do not count ' +
        '(they are erased at compile time): an ORM relation names its entity both ways, and that is not a load-order cycle.',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'stripe-sdk-only-in-stripe',
      severity: 'error',
      comment:
        'Only src/stripe/ uses the stripe SDK at run time; elsewhere a type-only import (erased at compile time) is allowed.',
      from: { path: '^src/', pathNot: '^src/stripe/' },
      to: { path: '^node_modules/stripe/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'emulator-is-standalone',
      severity: 'error',
      comment: 'The Stripe emulator is a separate program: it imports nothing of the app.',
      from: { path: '^src/emulator/' },
      to: { path: '^src/', pathNot: '^src/emulator/' },
    },
    {
      name: 'emulator-only-from-start-up',
      severity: 'error',
      comment: 'The app reaches the emulator only through start-up wiring (server.ts, main.ts).',
      from: { path: '^src/', pathNot: ['^src/emulator/', '^src/(server|main)\\.ts$'] },
      to: { path: '^src/emulator/' },
    },
    {
      name: 'common-imports-nothing-of-the-app',
      severity: 'error',
      comment: 'src/common/ holds leaf utilities every layer may use, so it depends on none of them.',
      from: { path: '^src/common/' },
      to: { path: '^src/', pathNot: '^src/common/' },
    },
    {
      name: 'config-imports-only-common',
      severity: 'error',
      comment: 'Configuration is read first and depends on nothing but the shared utilities.',
      from: { path: '^src/config/' },
      to: { path: '^src/', pathNot: ['^src/config/', '^src/common/'] },
    },
    {
      name: 'db-below-the-request-layers',
      severity: 'error',
      comment: 'The database layer serves the features; it never reaches up into the request path, auth or webhooks.',
      from: { path: '^src/db/' },
      // entities.ts lists every entity for MikroORM, the webhook ledger's included.
      to: { pathNot: '\\.entity\\.ts$', path: '^src/(graphql|security|auth|webhooks|cli|setup|app\\.ts|server\\.ts|main\\.ts)' },
    },
    {
      name: 'billing-graphql-only-in-resolvers',
      severity: 'error',
      comment:
        'Within billing/, only the GraphQL edge (resolvers, their types and inputs) knows about graphql/; services take plain values.',
      from: {
        path: '^src/billing/',
        // usage-fast-path.ts parses GraphQL ahead of Apollo; it is on its way out and the only exception.
        pathNot: ['\\.(resolver|type|input)\\.ts$', '^src/billing/usage/usage-fast-path\\.ts$'],
      },
      to: { path: '^src/graphql/' },
    },
    {
      name: 'not-to-test',
      severity: 'error',
      comment: 'Application code never imports test code.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
