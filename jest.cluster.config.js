/**
 * `npm run test:cluster` (scripts/test-cluster.sh): the suites that use Redis, run against a
 * local Redis Cluster named by TEST_REDIS_URL, and the primary-failover drill. Same ESM + swc
 * setup and module mapping as jest.config.js, whose settings it reuses.
 *
 * `integration`: the apps' and packages' integration tests and the end-to-end tests (tests/e2e),
 * minus the suites that never open a Redis connection: database, media, ffmpeg, egress and
 * packaging tests (and tests/database, tests/infra, the simulator's own tests) gain nothing from a
 * cluster and would only lengthen the run.
 * `failover`: tests/cluster/*.cluster.ts, run by the script after the others, alone, since it
 * kills a primary of the cluster that every suite shares.
 */
import base from './jest.config.js';

const { displayName: _unit, testMatch: _tests, ...common } = base.projects[0];
const integration = base.projects.find((project) => project.displayName === 'integration');

const WITHOUT_REDIS = [
  '<rootDir>/packages/client/test/client-protocol.int.test.ts',
  '<rootDir>/packages/client/test/api-keys-repository.int.test.ts',
  '<rootDir>/packages/client/test/pack.int.test.ts',
  '<rootDir>/apps/worker-cpu/test/analyze-video.int.test.ts',
  '<rootDir>/apps/worker-cpu/test/burned-captions.int.test.ts',
  '<rootDir>/apps/worker-cpu/test/analysis-repository.int.test.ts',
  '<rootDir>/apps/worker-cpu/test/analysis-reuse.int.test.ts',
  '<rootDir>/apps/worker-cpu/test/cpu-pool.int.test.ts',
  '<rootDir>/apps/worker-cpu/test/fixtures.int.test.ts',
  '<rootDir>/apps/worker-cpu/test/frame-sampler.int.test.ts',
  '<rootDir>/apps/worker-io/test/egress.int.test.ts',
  '<rootDir>/apps/worker-io/test/fetch-source.int.test.ts',
  '<rootDir>/apps/worker-io/test/standard-webhooks.int.test.ts',
];

export default {
  projects: [
    {
      ...integration,
      testMatch: ['<rootDir>/{apps,packages}/*/test/**/*.int.test.ts', '<rootDir>/tests/e2e/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', ...WITHOUT_REDIS],
    },
    { ...common, displayName: 'failover', testMatch: ['<rootDir>/tests/cluster/**/*.cluster.ts'] },
  ],
  testTimeout: 60_000,
  maxWorkers: 2,
};
