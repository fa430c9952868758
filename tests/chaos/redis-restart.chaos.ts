/**
 * Chaos: the Redis holding the queues is SIGKILLed while videos are being analysed and comes
 * back 2 s later on the same port, replaying its append-only file. Every video must still
 * complete with each effect exactly once; while Redis is away the API must refuse submissions
 * with 503 (quickly, not hang) and still serve reads; it must accept submissions again after;
 * no process may exit.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import { createUpstreamSimulator, type UpstreamSimulator } from '../../infra/upstream-sim/src/index.js';
import { createTestEnvironment, type TestEnvironment } from '../helpers/services.js';
import { ClipLineProcesses } from './support/clipline-processes.js';
import { FlowInspector } from './support/flow-state.js';
import { runOutageDrill } from './support/outage-drill.js';
import { PrivateRedis } from './support/redis-server.js';
import { createTeardown } from './support/teardown.js';
import { summarise, unanswered } from './support/video-batch.js';

jest.setTimeout(240_000);

const teardown = createTeardown('chaos-redis-restart');
let redis: PrivateRedis;
let env: TestEnvironment;
let simulator: UpstreamSimulator;
let processes: ClipLineProcesses;
let flows: FlowInspector;

beforeAll(async () => {
  redis = await PrivateRedis.start();
  teardown.register('redis-server', () => redis.destroy());
  env = await createTestEnvironment({ REDIS_URL: redis.url, LOG_LEVEL: 'info' });
  teardown.register('test environment', () => env.cleanup());
  simulator = await createUpstreamSimulator({ seed: 11 });
  teardown.register('upstream simulator', () => simulator.close());
  flows = new FlowInspector(redis.url, env.config.queuePrefix);
  teardown.register('flow inspector', () => flows.close());
  processes = await ClipLineProcesses.create({ ...env.env, CPU_POOL_THREADS: '2', UPSTREAM_SIM_URL: simulator.url });
  teardown.register('clipline processes', () => processes.killAll());
  // Runs first: the clean-up deletes the test's keys from this Redis, so it must be up again.
  teardown.register('redis-server up for the clean-up', async () => {
    if (!redis.running) await redis.launch();
  });
  await Promise.all((['producer', 'worker-io', 'worker-cpu'] as const).map((app) => processes.start(app)));
});

afterAll(async () => {
  expect(await teardown.shutdown('tests finished')).toBe(0);
});

it('completes every video exactly once across a Redis crash and AOF restart, and answers 503 while Redis is down', async () => {
  await runOutageDrill({
    processes,
    flows,
    db: env.db,
    storageDir: env.config.storageDir,
    aiSteps: 'completed',
    crash: () => redis.kill(),
    recover: () => redis.launch(),
    probe: async ({ submission, inFlightId }) => {
      // Give the producer's connection a moment to notice, as a client retrying after a blip would.
      await sleep(300);
      return {
        refused: await processes.api('POST', '/v1/videos', submission, 10_000).catch(unanswered),
        readiness: await processes.api('GET', '/readyz'),
        read: await processes.api('GET', `/v1/videos/${inFlightId}`),
      };
    },
    judge: ({ refused, readiness, read }, answersUntilAccepted) => {
      // While Redis was down: a fast, retryable refusal; reads still served from PostgreSQL.
      expect({ status: refused.status, detail: refused.body.detail, retryAfter: refused.retryAfter }).toEqual({
        status: 503,
        detail: 'the job queue (Redis) is unreachable; retry shortly',
        retryAfter: '5',
      });
      expect(refused.ms).toBeGreaterThanOrEqual(0);
      expect(refused.ms).toBeLessThan(3000);
      expect({ status: readiness.status, checks: readiness.body.checks }).toEqual({ status: 503, checks: { redis: false, database: true } });
      expect({ status: read.status, video: read.body.status }).toEqual({ status: 200, video: 'processing' });
      // After it came back: every answer until acceptance was a 503.
      expect(summarise(answersUntilAccepted.slice(0, -1)).filter((answer) => answer.status !== 503)).toEqual([]);
    },
  });
});
