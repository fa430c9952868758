/** Schedules kept in Redis: registered again when Redis lost them, left alone while in place. */
import { z } from 'zod';
import { createLogger, defineQueue, JobQueues, keepScheduled, type RedisClient, standardRetention, startWorker } from '@clipline/shared';
import { connectRedis, createTestEnvironment, keysMatching, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

const sweepQueue = defineQueue({
  name: 'test-sweeps',
  resourceClass: 'io',
  jobs: { sweep: z.strictObject({}) },
  defaultJobOptions: { attempts: 1, ...standardRetention },
});

let env: TestEnvironment;
let redis: RedisClient;
let jobs: JobQueues;

beforeAll(async () => {
  env = await createTestEnvironment();
  redis = connectRedis(env.config.redisUrl);
  jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
});

afterAll(async () => {
  await jobs.close();
  redis.disconnect();
  await env.cleanup();
});

it('registers a schedule Redis lost (emptied, failed over, obliterated) again, and leaves one in place alone', async () => {
  const logger = createLogger({ name: 'test', level: 'silent' });
  const stop = await keepScheduled(jobs, [{ declaration: sweepQueue, name: 'sweep', payload: {}, everyMs: 3_600_000 }], { checkEveryMs: 200, logger });
  try {
    expect(await jobs.scheduledEvery(sweepQueue, 'sweep')).toBe(3_600_000);
    // The scheduler's next run, as BullMQ keeps it (a sorted set of schedulers by their next time).
    const nextRun = async () => (await redis.zrange(`${env.config.queuePrefix}:test-sweeps:repeat`, 0, -1, 'WITHSCORES')).join();
    const before = await nextRun();
    expect(before).toMatch(/^test-sweeps-sweep,\d+$/);
    await new Promise((resolve) => setTimeout(resolve, 600));
    // In place: untouched, its next run where it was.
    expect(await nextRun()).toBe(before);
    const keys = await keysMatching(redis, `${env.config.queuePrefix}:test-sweeps:*`);
    await redis.del(...keys);
    expect(await jobs.scheduledEvery(sweepQueue, 'sweep')).toBeUndefined();
    await waitFor(async () => ((await jobs.scheduledEvery(sweepQueue, 'sweep')) === 3_600_000 ? true : undefined), 5000, 'the schedule to be back');
  } finally {
    stop();
  }
});

describe('scheduled runs', () => {
  const slowQueue = defineQueue({
    name: 'test-slow-sweeps',
    resourceClass: 'io',
    jobs: { walk: z.strictObject({}), touch: z.strictObject({}) },
    defaultJobOptions: { attempts: 1, ...standardRetention },
  });

  it('never overlap: a run that outlasts its interval has the next ones skip, not start beside it', async () => {
    let running = 0;
    let most = 0;
    let runs = 0;
    const worker = startWorker(
      slowQueue,
      {
        walk: async () => {
          running += 1;
          runs += 1;
          most = Math.max(most, running);
          await new Promise((resolve) => setTimeout(resolve, 900));
          running -= 1;
          return {};
        },
        touch: async () => ({}),
      },
      { connection: redis, prefix: env.config.queuePrefix, logger: createLogger({ name: 'test', level: 'silent' }), concurrency: 4 },
    );
    try {
      await jobs.schedule(slowQueue, 'walk', {}, { every: 200 });
      await waitFor(async () => (runs >= 2 ? true : undefined), 15_000, 'two runs of the schedule');
      // And a few more intervals, when runs would overlap if they could.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(most).toBe(1);
    } finally {
      await jobs.unschedule(slowQueue, 'walk');
      await worker.close();
    }
  });

  it('fail on a database outage rather than wait for it: held runs would all start together once it is back', async () => {
    let attempts = 0;
    const worker = startWorker(
      slowQueue,
      {
        walk: async () => ({}),
        touch: async () => {
          attempts += 1;
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', syscall: 'connect' });
        },
      },
      {
        connection: redis,
        prefix: env.config.queuePrefix,
        logger: createLogger({ name: 'test', level: 'silent' }),
        concurrency: 1,
        policy: { outageRetryMs: 100 },
      },
    );
    try {
      await jobs.schedule(slowQueue, 'touch', {}, { every: 60_000 });
      await waitFor(async () => (attempts >= 1 ? true : undefined), 5000, 'the run');
      await new Promise((resolve) => setTimeout(resolve, 500));
      // One run, failed, not put back every 100 ms.
      expect(attempts).toBe(1);
      const delayed = await redis.zcard(`${env.config.queuePrefix}:test-slow-sweeps:delayed`);
      expect(delayed).toBeLessThanOrEqual(1);
    } finally {
      await jobs.unschedule(slowQueue, 'touch');
      await worker.close();
    }
  });
});
