/**
 * The database-crash scenario, whatever the engine: a throwaway server of the test's own is
 * crashed while videos are being analysed and is back 2 s later. Every video must still complete
 * with each effect exactly once; while the database is away the API must answer 503, not 500,
 * and not hang; it must accept submissions again after; no process may exit.
 */
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { createTestEnvironment, type TestEnvironment } from '../../helpers/services.js';
import { ClipLineProcesses } from './clipline-processes.js';
import { FlowInspector } from './flow-state.js';
import { runOutageDrill } from './outage-drill.js';
import { createTeardown } from './teardown.js';
import { summarise, unanswered } from './video-batch.js';

/** A database server the test may crash. */
export interface CrashableDatabase {
  readonly url: string;
  /** Ends the server the way a crash does: every connection drops. */
  crash(): Promise<void>;
  /** Starts it (again), recovering from the crash; resolves once it answers. */
  start(): Promise<void>;
  isRunning(): boolean | Promise<boolean>;
  /** Stops it if it runs and removes its files. */
  destroy(): Promise<void>;
}

export function databaseOutageScenario(engine: string, createServer: () => Promise<CrashableDatabase>): void {
  jest.setTimeout(240_000);
  const teardown = createTeardown(`chaos-${engine.toLowerCase()}-restart`);
  let server: CrashableDatabase;
  let env: TestEnvironment;
  let processes: ClipLineProcesses;
  let flows: FlowInspector;

  beforeAll(async () => {
    server = await createServer();
    teardown.register(`${engine} server`, () => server.destroy());
    env = await createTestEnvironment({ DATABASE_URL: server.url, LOG_LEVEL: 'info' });
    teardown.register('test environment', () => env.cleanup());
    flows = new FlowInspector(env.config.redisUrl, env.config.queuePrefix);
    teardown.register('flow inspector', () => flows.close());
    processes = await ClipLineProcesses.create({ ...env.env, CPU_POOL_THREADS: '2' });
    teardown.register('clipline processes', () => processes.killAll());
    // Runs first: the clean-up drops the test's schema in the server, so it must be up again.
    teardown.register(`${engine} up for the clean-up`, async () => {
      if (!(await server.isRunning())) await server.start();
    });
    await Promise.all((['producer', 'worker-io', 'worker-cpu'] as const).map((app) => processes.start(app)));
  });

  afterAll(async () => {
    expect(await teardown.shutdown('tests finished')).toBe(0);
  });

  it(`completes every video exactly once across a ${engine} crash and restart, and answers 503 while it is down`, async () => {
    await runOutageDrill({
      processes,
      flows,
      db: env.db,
      storageDir: env.config.storageDir,
      aiSteps: 'skipped',
      crash: () => server.crash(),
      recover: () => server.start(),
      probe: async ({ submission, inFlightId }) => ({
        refused: await processes.api('POST', '/v1/videos', submission, 10_000).catch(unanswered),
        read: await processes.api('GET', `/v1/videos/${inFlightId}`, undefined, 10_000).catch(unanswered),
        user: await processes.api('GET', '/v1/users/0b5e1a3c-6d0f-4f7e-8a51-1c2d3e4f5a6b', undefined, 10_000).catch(unanswered),
        readiness: await processes.api('GET', '/readyz', undefined, 10_000).catch(unanswered),
      }),
      judge: ({ refused, read, user, readiness }, answersUntilAccepted) => {
        // While the database was down: retryable refusals (not 500), quickly.
        // A submission meets the database first now (the tenant's unfinished videos are counted).
        expect(summarise([refused, read, user])).toEqual([
          { status: 503, detail: 'the database is unreachable; retry shortly' },
          { status: 503, detail: 'the database is unreachable; retry shortly' },
          { status: 503, detail: 'the database is unreachable; retry shortly' },
        ]);
        expect([refused.retryAfter, read.retryAfter]).toEqual(['5', '5']);
        expect(Math.max(refused.ms, read.ms)).toBeLessThan(6000);
        expect({ status: readiness.status, checks: readiness.body.checks }).toEqual({ status: 503, checks: { redis: true, database: false } });
        expect(summarise(answersUntilAccepted.slice(0, -1)).filter((answer) => answer.status !== 503)).toEqual([]);
      },
    });
  });
}
