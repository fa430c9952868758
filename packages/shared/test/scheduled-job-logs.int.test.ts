/** What the runtime logs when a job completes: at info for work that was asked for, at debug for a scheduled sweep. */
import { PassThrough } from 'node:stream';
import { z } from 'zod';
import { createLogger, defineQueue, JobQueues, type RedisClient, type RunningWorker, standardRetention, startWorker } from '@clipline/shared';
import { connectRedis, createTestEnvironment, type TestEnvironment, waitFor } from '../../../tests/helpers/services.js';

const sweepQueue = defineQueue({
  name: 'test-sweeps',
  resourceClass: 'io',
  jobs: { sweep: z.strictObject({}), asked: z.strictObject({ n: z.number() }) },
  defaultJobOptions: { attempts: 1, ...standardRetention },
});

let env: TestEnvironment;
let redis: RedisClient;

beforeAll(async () => {
  env = await createTestEnvironment();
  redis = connectRedis(env.config.redisUrl);
});

afterAll(async () => {
  redis.disconnect();
  await env.cleanup();
});

/** Runs the sweep every 150 ms and one asked-for job, at `level`, until three sweeps are done; returns the lines logged. */
async function linesAt(level: 'info' | 'debug', prefix: string): Promise<Array<{ level: number; msg: string; job: string }>> {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk) => (text += chunk));
  const logger = createLogger({ name: 'sweeps', level, destination: stream });
  const done = { sweep: 0, asked: 0 };
  const queues = new JobQueues({ connection: redis, prefix });
  let worker: RunningWorker | undefined;
  try {
    worker = startWorker(
      sweepQueue,
      {
        sweep: async () => void (done.sweep += 1),
        asked: async () => void (done.asked += 1),
      },
      { connection: redis, prefix, logger, concurrency: 2 },
    );
    await queues.schedule(sweepQueue, 'sweep', {}, { every: 150 });
    await queues.add(sweepQueue, 'asked', { n: 1 });
    await waitFor(async () => (done.sweep >= 3 && done.asked === 1 ? true : undefined), 15_000, 'three sweeps and the asked-for job');
  } finally {
    await worker?.close();
    await queues.close();
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

describe('completed jobs in the log', () => {
  it('at info: the asked-for job completed, not the scheduled sweeps', async () => {
    const lines = await linesAt('info', `${env.config.queuePrefix}:info`);
    const completed = lines.filter((line) => line.msg === 'job completed');
    expect(completed.map((line) => line.job)).toEqual(['asked']);
    expect(completed[0]?.level).toBe(30);
  });

  it('at debug: the sweeps completed too', async () => {
    const lines = await linesAt('debug', `${env.config.queuePrefix}:debug`);
    const completed = lines.filter((line) => line.msg === 'job completed');
    expect(completed.filter((line) => line.job === 'sweep').length).toBeGreaterThanOrEqual(3);
    expect(completed.filter((line) => line.job === 'sweep').every((line) => line.level === 20)).toBe(true);
    expect(completed.filter((line) => line.job === 'asked').map((line) => line.level)).toEqual([30]);
  });
});
