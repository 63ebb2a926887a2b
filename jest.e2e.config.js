/**
 * Browser tests (headless Chromium through playwright-core): `npm run test:e2e`.
 * Kept apart from jest.config.js so `npm test` never needs a browser.
 */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/e2e'],
  testMatch: ['**/*.e2e.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  // One browser and one local-mode server at a time; the steps of a file run in order.
  maxWorkers: 1,
  testTimeout: 60000,
};
