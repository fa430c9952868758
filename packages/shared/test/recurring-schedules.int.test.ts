/** Schedules kept in Redis: registered again when Redis lost them, left alone while in place. */
import { z } from 'zod';
import { createLogger, defineQueue, JobQueues, keepScheduled, type RedisClient, standardRetention } from '@clipline/shared';
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
