/** Job counters and timings every worker records, on real Redis: what Prometheus rates and the alert rules read. */
import type { RedisClient } from '@clipline/shared';
import { createLogger, defineQueue, JobQueues, PermanentJobError, Registry, standardRetention, startWorker, type RunningWorker } from '@clipline/shared';
import { z } from 'zod';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

const queue = defineQueue({
  name: 'test-metrics',
  resourceClass: 'io',
  jobs: { step: z.strictObject({ outcome: z.enum(['ok', 'retry-once', 'permanent', 'cancelled']), key: z.string() }) },
  defaultJobOptions: { attempts: 2, backoff: { type: 'fixed', delay: 50 }, ...standardRetention },
});

let env: TestEnvironment;
let redis: RedisClient;
let jobs: JobQueues;
let worker: RunningWorker;
const registry = new Registry();
const attempts = new Map<string, number>();
const cancelListeners = new Set<(key: string) => void>();

beforeAll(async () => {
  env = await createTestEnvironment();
  redis = connectRedis(env.config.redisUrl);
  jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
  const logger = createLogger({ name: 'test', level: 'silent' });
  worker = startWorker(
    queue,
    {
      step: async (job) => {
        const made = (attempts.get(job.data.key) ?? 0) + 1;
        attempts.set(job.data.key, made);
        if (job.data.outcome === 'cancelled') {
          setTimeout(() => {
            for (const listener of cancelListeners) listener(job.data.key);
          }, 50);
          await new Promise((_resolve, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason)));
        }
        await new Promise((resolve) => setTimeout(resolve, 120));
        if (job.data.outcome === 'permanent') throw new PermanentJobError('this input can never work');
        if (job.data.outcome === 'retry-once' && made === 1) throw new Error('flaky upstream');
        return { made };
      },
    },
    {
      connection: redis,
      prefix: env.config.queuePrefix,
      logger,
      concurrency: 4,
      metrics: registry,
      policy: {
        cancellations: {
          onCancel: (listener) => {
            cancelListeners.add(listener);
            return () => cancelListeners.delete(listener);
          },
        },
        cancellationKey: (data) => (data as { key: string }).key,
      },
    },
  );
});

afterAll(async () => {
  await worker?.close();
  await jobs?.close();
  redis?.disconnect();
  await env?.cleanup();
});

/** The value of the sample named `series` (a histogram's `_count`, `_sum`, `_bucket` included) with these labels (0 when absent). */
async function sample(series: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(series.replace(/_(count|sum|bucket)$/, ''))!;
  const { values } = await metric.get();
  const found = values.find(
    (value) =>
      ((value as { metricName?: string }).metricName ?? metric.name) === series &&
      Object.entries(labels).every(([name, wanted]) => String(value.labels[name]) === wanted),
  );
  return found?.value ?? 0;
}

it('counts completions and failed attempts (final or not) per queue and job name, and times the wait and the run', async () => {
  for (const [index, outcome] of (['ok', 'ok', 'retry-once', 'permanent'] as const).entries()) {
    await jobs.add(queue, 'step', { outcome, key: `job-${index}` });
  }
  const labels = { queue: 'test-metrics', name: 'step' };
  await waitFor(
    async () =>
      (await sample('clipline_jobs_completed_total', labels)) === 3 && (await sample('clipline_jobs_failed_total', { ...labels, final: 'true' })) === 1
        ? true
        : undefined,
    15_000,
    'three completions and one final failure',
  );
  expect(await sample('clipline_jobs_failed_total', { ...labels, final: 'false' })).toBe(1);
  expect(await sample('clipline_jobs_stalled_total', { queue: 'test-metrics' })).toBe(0);
  // Five attempts ran (each ok job once, the flaky job twice, the permanent one once): each is timed.
  expect(await sample('clipline_job_processing_seconds_count', labels)).toBe(5);
  expect(await sample('clipline_job_wait_seconds_count', labels)).toBe(5);
  // Each attempt took at least the processor's 120 ms: none falls in a bucket below 0.1 s.
  expect(await sample('clipline_job_processing_seconds_bucket', { ...labels, le: '0.1' })).toBe(0);
  expect(await sample('clipline_job_processing_seconds_sum', labels)).toBeGreaterThanOrEqual(0.6);
  // The text Prometheus scrapes carries the series by these names.
  const text = await registry.metrics();
  for (const name of [
    'clipline_jobs_completed_total',
    'clipline_jobs_failed_total',
    'clipline_job_wait_seconds_bucket',
    'clipline_job_processing_seconds_bucket',
  ]) {
    expect(text).toContain(`${name}{`);
  }
});

it('counts a job stopped because its work was cancelled as cancelled, not as a failure', async () => {
  const labels = { queue: 'test-metrics', name: 'step' };
  const finalBefore = await sample('clipline_jobs_failed_total', { ...labels, final: 'true' });
  await jobs.add(queue, 'step', { outcome: 'cancelled', key: 'cancel-me' });
  await waitFor(async () => ((await sample('clipline_jobs_cancelled_total', labels)) === 1 ? true : undefined), 10_000, 'the cancellation to be counted');
  expect(await sample('clipline_jobs_failed_total', { ...labels, final: 'true' })).toBe(finalBefore);
  expect(await registry.metrics()).toContain('clipline_jobs_cancelled_total{');
});
