/** The job runtime on real Redis and PostgreSQL: parents with children, final failures, optional steps, idempotency leases. */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@clipline/shared';
import { z } from 'zod';
import {
  createLogger,
  defineQueue,
  IdempotencyRepository,
  JobQueues,
  PermanentJobError,
  RateLimitedError,
  runOptionalStep,
  standardRetention,
  startWorker,
  VideosRepository,
  type FinalFailure,
  type RunningWorker,
} from '@clipline/shared';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

const parentQueue = defineQueue({
  name: 'test-parent',
  resourceClass: 'io',
  jobs: { parent: z.strictObject({ key: z.string() }) },
  defaultJobOptions: { attempts: 3, backoff: { type: 'fixed', delay: 100 }, ...standardRetention },
});
const childQueue = defineQueue({
  name: 'test-child',
  resourceClass: 'io',
  jobs: { child: z.strictObject({ fail: z.boolean() }) },
  defaultJobOptions: { attempts: 2, backoff: { type: 'fixed', delay: 100 }, ...standardRetention },
});

let env: TestEnvironment;
let redis: RedisClient;
let jobs: JobQueues;
const workers: RunningWorker[] = [];
const logger = createLogger({ name: 'test', level: 'silent' });
const finalFailures: FinalFailure[] = [];
const parentRuns = new Map<string, number>();

beforeAll(async () => {
  env = await createTestEnvironment();
  redis = connectRedis(env.config.redisUrl);
  jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
  const policy = { onFinalFailure: async (failure: FinalFailure) => void finalFailures.push(failure) };
  const common = { connection: redis, prefix: env.config.queuePrefix, logger, concurrency: 4, policy };
  workers.push(
    startWorker(
      parentQueue,
      {
        parent: async (job) => {
          if (job.data.key.startsWith('alone-')) {
            // A parent with one child that fails for good, and nothing else: the final-failure test's own job.
            await job.addChildren([
              { step: { declaration: childQueue, jobName: 'child', data: { fail: true }, jobId: `${job.data.key}-bad` }, optional: true },
            ]);
            await job.waitForChildren();
            return { alone: true };
          }
          const runs = (parentRuns.get(job.data.key) ?? 0) + 1;
          parentRuns.set(job.data.key, runs);
          await job.addChildren([
            { step: { declaration: childQueue, jobName: 'child', data: { fail: true }, jobId: `${job.data.key}-bad` }, optional: true },
            { step: { declaration: childQueue, jobName: 'child', data: { fail: false }, jobId: `${job.data.key}-ok` }, optional: true },
          ]);
          // The first run dies after adding its children: the retry adds them again.
          if (runs === 1) {
            await new Promise((resolve) => setTimeout(resolve, 600));
            throw new Error('crashed after adding children');
          }
          await job.waitForChildren();
          return { runs };
        },
      },
      common,
    ),
    startWorker(
      childQueue,
      {
        child: async (job) => {
          if (job.data.fail) throw new PermanentJobError('this child always fails');
          return 'ok';
        },
      },
      common,
    ),
  );
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.close()));
  await jobs.close();
  redis.disconnect();
  await env.cleanup();
});

describe('parents and children', () => {
  it('a retried parent does not re-link a child that failed meanwhile, and completes', async () => {
    const key = `p${randomUUID().slice(0, 8)}`;
    const { id } = await jobs.add(parentQueue, 'parent', { key });
    const done = await waitFor(
      async () => {
        const view = await jobs.get(parentQueue, id);
        return view?.state === 'completed' ? view : undefined;
      },
      15_000,
      'the parent to complete',
    );
    expect(done.returnValue).toMatchObject({ runs: expect.any(Number) });
    expect(parentRuns.get(key)).toBeGreaterThanOrEqual(2);
    expect((await jobs.get(childQueue, `${key}-bad`))?.state).toBe('failed');
  });

  it('reports a job that failed for good to onFinalFailure, once', async () => {
    // Its own parent, whose one child fails for good on its first attempt (a permanent error).
    const key = `alone-${randomUUID().slice(0, 8)}`;
    const { id } = await jobs.add(parentQueue, 'parent', { key });
    await waitFor(async () => ((await jobs.get(parentQueue, id))?.state === 'completed' ? true : undefined), 15_000, 'the parent to complete');
    const reports = () => finalFailures.filter((failure) => failure.jobId === `${key}-bad`);
    await waitFor(async () => (reports().length > 0 ? true : undefined), 5000, 'the final failure');
    // The failed event is handled at once; a second report (a retry, the stall check) would have come by now.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(reports()).toEqual([{ queue: childQueue.name, jobId: `${key}-bad`, name: 'child', data: { fail: true }, reason: 'this child always fails' }]);
    expect(finalFailures.filter((failure) => failure.name === 'parent')).toEqual([]);
  });
});

describe('runOptionalStep', () => {
  async function videoWithStep(): Promise<string> {
    const id = randomUUID();
    await new VideosRepository(env.db).create({ id, source: '/a.mp4', title: null, steps: ['captions'] });
    return id;
  }

  it('records a skipped step with its reason, and a failure on the last attempt, whatever the error carries', async () => {
    const videos = new VideosRepository(env.db);
    const skippedId = await videoWithStep();
    await runOptionalStep('captions', { data: { videoId: skippedId }, attemptsMade: 0, maxAttempts: 3 }, videos, async () => ({ skipped: 'no key' }));
    expect((await videos.find(skippedId))!.steps[0]).toMatchObject({ status: 'skipped', reason: 'no key' });

    const failedId = await videoWithStep();
    const breakerOpen = Object.assign(new Error('breaker is open'), { name: 'ProviderBreakerOpenError', retryAfterMs: 30_000 });
    await expect(
      runOptionalStep('captions', { data: { videoId: failedId }, attemptsMade: 2, maxAttempts: 3 }, videos, async () => {
        throw breakerOpen;
      }),
    ).rejects.toThrow('breaker is open');
    expect((await videos.find(failedId))!.steps[0]).toMatchObject({ status: 'failed', reason: 'captions: breaker is open' });
    // The video itself is untouched: an optional step never fails it.
    expect((await videos.find(failedId))!.status).toBe('queued');

    const pausedId = await videoWithStep();
    const rateLimited = new RateLimitedError('429', 2000);
    await expect(
      runOptionalStep('captions', { data: { videoId: pausedId }, attemptsMade: 2, maxAttempts: 3 }, videos, async () => {
        throw rateLimited;
      }),
    ).rejects.toBe(rateLimited);
    expect((await videos.find(pausedId))!.steps[0]!.status).toBe('active');
  });
});

describe('idempotency leases', () => {
  it('takes over a key whose first request died, after the lease', async () => {
    const repository = new IdempotencyRepository(env.db, 3600, 60);
    expect(await repository.claim('p', 'k1', 'h')).toEqual({ outcome: 'claimed' });
    expect(await repository.claim('p', 'k1', 'h')).toEqual({ outcome: 'in-progress' });
    await env.db
      .updateTable('idempotency_keys')
      .set({ created_at: new Date(Date.now() - 120_000) })
      .where('key', '=', 'k1')
      .execute();
    expect(await repository.claim('p', 'k1', 'h')).toEqual({ outcome: 'claimed' });
    expect(await repository.claim('p', 'k1', 'other')).toEqual({ outcome: 'mismatch' });
  });
});
