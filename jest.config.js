/**
 * The test tiers, one jest project each:
 * - unit: no database, no network (test/unit mirrors src/);
 * - integration: real PostgreSQL, real HTTP, the Stripe emulator (test/integration, test/emulator, test/stripe);
 * - slow: the fault matrix, process-kill tests and property tests.
 * `npm test` runs unit and integration; `npm run test:slow` the slow tier; `.ci/run` runs both.
 * Browser tests have their own config (jest.e2e.config.js).
 */
const SLOW = ['<rootDir>/test/integration/fault-matrix[^/]*\\.test\\.ts$', '<rootDir>/test/property/'];

const shared = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest'] },
};

/** @type {import('jest').Config} */
module.exports = {
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 30000,
  maxWorkers: 2,
  projects: [
    { ...shared, displayName: 'unit', roots: ['<rootDir>/test/unit'], testMatch: ['**/*.test.ts'] },
    {
      ...shared,
      displayName: 'integration',
      roots: ['<rootDir>/test/integration', '<rootDir>/test/emulator', '<rootDir>/test/stripe'],
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', ...SLOW],
    },
    {
      ...shared,
      displayName: 'slow',
      roots: ['<rootDir>/test/integration', '<rootDir>/test/property'],
      testMatch: ['**/fault-matrix*.test.ts', '**/property/**/*.test.ts'],
    },
  ],
};
