/**
 * Chaos: MariaDB is SIGKILLed (every connection drops, InnoDB recovery on restart) while videos
 * are being analysed, and is back 2 s later. The server is a throwaway one of this test's own,
 * so the shared server is never touched. Every video must still complete with each
 * effect exactly once; while the database is away the API must answer 503, not 500, and not
 * hang; it must accept submissions again after; no process may exit.
 */
import { jest } from '@jest/globals';
import { createTestEnvironment, type TestEnvironment } from '../helpers/services.js';
import { ClipLineProcesses } from './support/clipline-processes.js';
import { FlowInspector } from './support/flow-state.js';
import { runOutageDrill } from './support/outage-drill.js';
import { PrivateMariadb } from './support/mariadb-server.js';
import { createTeardown } from './support/teardown.js';
import { summarise, unanswered } from './support/video-batch.js';

jest.setTimeout(240_000);

const teardown = createTeardown('chaos-mariadb-restart');
let mariadb: PrivateMariadb;
let env: TestEnvironment;
let processes: ClipLineProcesses;
let flows: FlowInspector;

beforeAll(async () => {
  mariadb = await PrivateMariadb.create();
  teardown.register('mariadb server', () => mariadb.destroy());
  env = await createTestEnvironment({ DATABASE_URL: mariadb.url, LOG_LEVEL: 'info' });
  teardown.register('test environment', () => env.cleanup());
  flows = new FlowInspector(env.config.redisUrl, env.config.queuePrefix);
  teardown.register('flow inspector', () => flows.close());
  processes = await ClipLineProcesses.create({ ...env.env, CPU_POOL_THREADS: '2' });
  teardown.register('clipline processes', () => processes.killAll());
  // Runs first: the clean-up drops the test's database in the server, so it must be up again.
  teardown.register('mariadb up for the clean-up', async () => {
    if (!mariadb.isRunning()) await mariadb.start();
  });
  await Promise.all((['producer', 'worker-io', 'worker-cpu'] as const).map((app) => processes.start(app)));
});

afterAll(async () => {
  expect(await teardown.shutdown('tests finished')).toBe(0);
});

it('completes every video exactly once across a MariaDB crash and restart, and answers 503 while it is down', async () => {
  await runOutageDrill({
    processes,
    flows,
    db: env.db,
    storageDir: env.config.storageDir,
    aiSteps: 'skipped',
    crash: () => mariadb.crash(),
    recover: () => mariadb.start(),
    probe: async ({ submission, inFlightId }) => ({
      refused: await processes.api('POST', '/v1/videos', submission, 10_000).catch(unanswered),
      read: await processes.api('GET', `/v1/videos/${inFlightId}`, undefined, 10_000).catch(unanswered),
      readiness: await processes.api('GET', '/readyz', undefined, 10_000).catch(unanswered),
    }),
    judge: ({ refused, read, readiness }, answersUntilAccepted) => {
      // While the database was down: retryable refusals (not 500), quickly.
      expect(summarise([refused, read])).toEqual([
        { status: 503, detail: 'the job queue or database is unreachable; retry shortly' },
        { status: 503, detail: 'the database is unreachable; retry shortly' },
      ]);
      expect([refused.retryAfter, read.retryAfter]).toEqual(['5', '5']);
      expect(Math.max(refused.ms, read.ms)).toBeLessThan(6000);
      expect({ status: readiness.status, checks: readiness.body.checks }).toEqual({ status: 503, checks: { redis: true, database: false } });
      expect(summarise(answersUntilAccepted.slice(0, -1)).filter((answer) => answer.status !== 503)).toEqual([]);
    },
  });
});
