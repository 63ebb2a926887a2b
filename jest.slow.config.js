/**
 * The slow tier (`npm run test:slow`): the fault matrix, process-kill tests and property tests
 * (the files SLOW_TESTS names, which `npm test` leaves out). Same database set-up as `npm test`.
 */
const { shared } = require('./jest.shared');

/** @type {import('jest').Config} */
module.exports = {
  ...shared.global,
  projects: [
    {
      ...shared.project,
      displayName: 'slow',
      roots: ['<rootDir>/test/integration', '<rootDir>/test/property'],
      testMatch: ['**/integration/fault-matrix*.test.ts', '**/property/**/*.test.ts'],
    },
  ],
};
