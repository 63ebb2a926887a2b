/**
 * The test tiers, one jest project each:
 * - unit: no database, no network (test/unit mirrors src/);
 * - integration: real PostgreSQL, real HTTP, the Stripe emulator (test/integration, test/emulator, test/stripe);
 * - slow (jest.slow.config.js): the fault matrix, process-kill tests and property tests.
 * `npm test` runs unit and integration; `npm run test:slow` the slow tier; `.ci/run` runs both.
 * Browser tests have their own config (jest.e2e.config.js).
 */
const { SLOW_TESTS, shared } = require('./jest.shared');

/** @type {import('jest').Config} */
module.exports = {
  ...shared.global,
  projects: [
    { ...shared.project, displayName: 'unit', roots: ['<rootDir>/test/unit'], testMatch: ['**/*.test.ts'] },
    {
      ...shared.project,
      displayName: 'integration',
      roots: ['<rootDir>/test/integration', '<rootDir>/test/emulator', '<rootDir>/test/stripe'],
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', ...SLOW_TESTS],
    },
  ],
};
