/**
 * Fault-injection suite (`npm run test:chaos`), kept out of `npm test`: it kills Redis,
 * PostgreSQL and workers on purpose and waits for recovery, so it takes minutes. Same ESM +
 * swc setup and module mapping as jest.config.js, whose settings it reuses.
 */
import base from './jest.config.js';

const { displayName: _unit, testMatch: _tests, ...common } = base.projects[0];

export default {
  ...common,
  displayName: 'chaos',
  testMatch: ['<rootDir>/tests/chaos/**/*.chaos.ts'],
  testTimeout: 300_000,
  maxWorkers: 2,
};
