// Lint rules for the TypeScript sources, tests, benchmarks and scripts. Type-aware rules run on
// every file tsconfig.json covers; the plain JavaScript files (configs, scripts) get the base rules.
// The import-direction rules live in .dependency-cruiser.cjs; `npm run lint` runs both.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeGlobals = {
  require: 'readonly',
  module: 'writable',
  exports: 'writable',
  process: 'readonly',
  console: 'readonly',
  __dirname: 'readonly',
  __filename: 'readonly',
  Buffer: 'readonly',
  setTimeout: 'readonly',
  clearTimeout: 'readonly',
  URL: 'readonly',
};

// Only src/config reads the environment: everything else receives validated settings.
const noProcessEnv = {
  'no-restricted-properties': [
    'error',
    {
      object: 'process',
      property: 'env',
      message: 'Read settings through src/config (loadConfig / env.ts); only src/config reads process.env.',
    },
  ],
};

export default tseslint.config(
  {
    ignores: ['dist/**', 'coverage/**', 'node_modules/**', 'bench/results/**', '.data/**', 'migrations/.snapshot*'],
  },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    // `recommended` plus the type-aware rules this codebase needs. The `no-unsafe-*` family of
    // `recommendedTypeChecked` is not on: JSON bodies in tests and the emulator are `any` by nature.
    extends: [...tseslint.configs.recommended],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': [
        'error',
        // Decorated classes need their parameter types as values (emitDecoratorMetadata).
        { prefer: 'type-imports', fixStyle: 'separate-type-imports', disallowTypeAnnotations: false },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests, benchmarks and the emulator handle JSON from the wire (GraphQL answers, Stripe-shaped
    // objects) whose shape is the thing under test or emulation: `any` is the honest type there.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'src/emulator/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/config/**'],
    rules: noProcessEnv,
  },
  {
    // Authorization is declared on the resolver (@Authorized, @RequiresBilling, @ActingCustomer,
    // src/graphql/authorization.ts), never checked by hand in a resolver body or a service.
    files: ['src/**/*.ts'],
    ignores: ['src/graphql/authorization.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/graphql/guards', './guards'],
              message: 'Declare authorization instead: @Authorized(), @RequiresBilling(), @ActingCustomer() / @ActingUser() / @ActingScope() / @CurrentUser() from src/graphql/authorization.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: { globals: nodeGlobals, sourceType: 'commonjs' },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module' },
  },
);
