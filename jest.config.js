/**
 * Tests run as native ESM (node --experimental-vm-modules) with TypeScript compiled by swc.
 * `unit` tests touch nothing outside the process; `integration` tests use the real Redis,
 * PostgreSQL and ffmpeg of the machine (see README, "Tests").
 */
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022', keepClassNames: true },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];

const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: {
    '^@clipline/shared$': '<rootDir>/packages/shared/src/index.ts',
    '^@clipline/shared/crypto$': '<rootDir>/packages/shared/src/crypto/index.ts',
    '^@clipline/shared/clips$': '<rootDir>/packages/shared/src/clips/index.ts',
    '^@clipline/shared/mp4$': '<rootDir>/packages/shared/src/mp4.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testEnvironment: 'node',
  modulePathIgnorePatterns: ['<rootDir>/.*/dist/'],
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/**/test/**/*.unit.test.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/**/test/**/*.int.test.ts', '<rootDir>/tests/**/*.test.ts'] },
  ],
  testTimeout: 60_000,
  maxWorkers: 2,
};
