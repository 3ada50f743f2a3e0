/** Type checking runs once through `tsc --noEmit`; ts-jest only transpiles (isolatedModules in tsconfig). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
  },
  globalSetup: '<rootDir>/__tests__/global-setup.ts',
  testTimeout: 120000,
  maxWorkers: 2,
};
