// What the jest configs of the test tiers share (jest.config.js, jest.slow.config.js).

/** Tests of the slow tier, as path patterns: the fault matrix (kill tests included) and property tests. */
const SLOW_TESTS = ['<rootDir>/test/integration/fault-matrix[^/]*\\.test\\.ts$', '<rootDir>/test/property/.*\\.test\\.ts$'];

const shared = {
  global: {
    globalSetup: '<rootDir>/test/global-setup.ts',
    globalTeardown: '<rootDir>/test/global-teardown.ts',
    testTimeout: 30000,
    maxWorkers: 2,
  },
  project: {
    testEnvironment: 'node',
    transform: { '^.+\\.ts$': ['@swc/jest'] },
  },
};

module.exports = { SLOW_TESTS, shared };
