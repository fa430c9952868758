import { Queue, QueueEvents } from 'bullmq';
import type { RedisClient } from '@clipline/shared';
import { z } from 'zod';
import { createLogger, defineQueue, Registry, standardRetention, startWorker } from '@clipline/shared';
import { createUpstreamSimulator, type UpstreamSimulator } from '../../../infra/upstream-sim/src/index.js';
import { createProviderClients, loadProviderSettings, toJobError, type ProviderClients } from '../src/providers/index.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

const JOBS = 120;
let env: TestEnvironment;
let sim: UpstreamSimulator;
let redis: RedisClient;
let providers: ProviderClients;

beforeAll(async () => {
  env = await createTestEnvironment();
  sim = await createUpstreamSimulator({
    apiKey: 'sim-key',
    seed: 2024,
    config: { endpoints: { 'openai.chat.completions': { errorRate: 0.3, errorStatus: 503, latency: { kind: 'uniform', minMs: 5, maxMs: 25 } } } },
  });
  redis = connectRedis(env.config.redisUrl);
  const settings = loadProviderSettings({
    UPSTREAM_SIM_URL: sim.url,
    // A breaker that trips at 30% would turn this test into a breaker test; it has its own file.
    PROVIDER_BREAKER_ERROR_PERCENT: '90',
    PROVIDER_BREAKER_VOLUME_THRESHOLD: '20',
    OPENAI_RATE_LIMIT_PER_SECOND: '1000',
  });
  providers = createProviderClients({ settings, redis, keyPrefix: env.config.queuePrefix, registry: new Registry() });
});

afterAll(async () => {
  providers.close();
  await sim.close();
  redis.disconnect();
  await env.cleanup();
});

describe('transient upstream faults within the job attempts', () => {
  it('lose no job and fail none: 30% 503s are absorbed by BullMQ retries with backoff', async () => {
    const connection = connectRedis(env.config.redisUrl);
    const eventsConnection = connectRedis(env.config.redisUrl);
    const queue = new Queue('ai-transient', { connection, prefix: env.config.queuePrefix });
    const events = new QueueEvents('ai-transient', { connection: eventsConnection, prefix: env.config.queuePrefix });
    const failed: string[] = [];
    events.on('failed', ({ jobId, failedReason }) => failed.push(`${jobId}: ${failedReason}`));
    await events.waitUntilReady();
    await queue.addBulk(
      Array.from({ length: JOBS }, (_, index) => ({
        name: 'write-captions',
        data: { clip: index },
        opts: { jobId: `clip-${index}`, attempts: 12, backoff: { type: 'exponential', delay: 20 } },
      })),
    );
    // The runtime the AI steps run on in production, with their error mapping.
    const declaration = defineQueue({
      name: 'ai-transient',
      resourceClass: 'io',
      jobs: { 'write-captions': z.strictObject({ clip: z.number() }) },
      defaultJobOptions: { attempts: 12, backoff: { type: 'exponential', delay: 20 }, ...standardRetention },
    });
    const worker = startWorker(
      declaration,
      {
        'write-captions': async (job) => {
          try {
            const reply = await providers.openai.chatCompletion({ messages: [{ role: 'user', content: `caption for clip ${String(job.data.clip)}` }] });
            return { clip: job.data.clip, caption: reply.content };
          } catch (error) {
            throw toJobError(error);
          }
        },
      },
      { connection: redis, prefix: env.config.queuePrefix, concurrency: 20, logger: createLogger({ name: 'ai-transient', level: 'silent' }) },
    );
    try {
      await waitFor(
        async () => ((await queue.getCompletedCount()) + (await queue.getFailedCount()) === JOBS ? true : undefined),
        40_000,
        'every job to finish',
      );
      const completed = await queue.getJobs(['completed'], 0, JOBS);
      expect(await queue.getFailedCount()).toBe(0);
      expect(failed).toEqual([]);
      expect(new Set(completed.map((job) => job.id)).size).toBe(JOBS);
      expect(completed.every((job) => typeof job.returnvalue?.caption === 'string')).toBe(true);

      // Every failed attempt is one 503 at the simulator, and every job got exactly one 200.
      const stats = sim.stats().endpoints['openai.chat.completions'];
      const serverErrors = stats.statuses['503'] ?? 0;
      expect(serverErrors).toBeGreaterThan(JOBS * 0.15);
      expect(stats.statuses['200']).toBe(JOBS);
      expect(stats.requests).toBe(JOBS + serverErrors);
      const retriedAttempts = completed.reduce((sum, job) => sum + job.attemptsMade - 1, 0);
      expect(retriedAttempts).toBe(serverErrors);
      expect(providers.breakerStates().openai).toBe('closed');
    } finally {
      await worker.close();
      await events.close();
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
      eventsConnection.disconnect();
    }
  });
});
