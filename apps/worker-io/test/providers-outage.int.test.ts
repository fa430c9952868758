/**
 * A provider judged down defers the job instead of failing it: on the production runtime and
 * error mapping, against the upstream simulator and real Redis. The job is delayed until the
 * breaker lets a trial through, spends no attempt, keeps the time of its first wait in its own
 * data (so another process that takes it next counts from the same start), and gives up only
 * past PROVIDER_OUTAGE_MAX_SECONDS; so does a job whose provider keeps answering 429 and lets no
 * call through.
 */
import { type Job, Queue } from 'bullmq';
import { z } from 'zod';
import {
  createLogger,
  defineQueue,
  RateLimitedError,
  Registry,
  retryFailedJobs,
  startWorker,
  UPSTREAM_WAITS_KEY,
  type RunningWorker,
  type UpstreamWait,
} from '@clipline/shared';
import { createProviderClients, loadProviderSettings, toJobError, type ProviderClients } from '../src/providers/index.js';
import { waitFor } from '../../../tests/helpers/services.js';
import { startUpstreamFixture, type UpstreamFixture } from './upstream-fixture.js';

const RESET_MS = 1500;
const QUEUE = 'ai-outage';
const declaration = defineQueue({
  name: QUEUE,
  resourceClass: 'io',
  jobs: { 'write-captions': z.strictObject({ clip: z.number() }) },
  defaultJobOptions: { attempts: 3, backoff: { type: 'fixed', delay: 50 } },
});

let fixture: UpstreamFixture;
let queue: Queue;
const opened: { providers: ProviderClients; worker: RunningWorker; registry: Registry }[] = [];

beforeAll(async () => {
  fixture = await startUpstreamFixture();
  queue = new Queue(QUEUE, { connection: fixture.redis, prefix: fixture.env.config.queuePrefix });
});

afterEach(async () => {
  for (const { providers, worker } of opened.splice(0)) {
    await worker.close();
    providers.close();
  }
  await queue.obliterate({ force: true });
  fixture.sim.reset();
});

afterAll(async () => {
  await queue.close();
  await fixture.close();
});

/** One worker process's worth: its own provider clients (so its own breakers) and a worker on the test queue. */
function startProcess(variables: Record<string, string> = {}) {
  const registry = new Registry();
  const settings = loadProviderSettings({
    UPSTREAM_SIM_URL: fixture.sim.url,
    PROVIDER_BREAKER_VOLUME_THRESHOLD: '2',
    PROVIDER_BREAKER_RESET_MS: String(RESET_MS),
    OPENAI_RATE_LIMIT_PER_SECOND: '0',
    ...variables,
  });
  const providers = createProviderClients({ settings, redis: fixture.redis, keyPrefix: fixture.env.config.queuePrefix, registry });
  const worker = startWorker(
    declaration,
    {
      'write-captions': async (job) => {
        try {
          const reply = await providers.openai.chatCompletion({ messages: [{ role: 'user', content: `caption for clip ${job.data.clip}` }] });
          return { caption: reply.content };
        } catch (error) {
          throw toJobError(error);
        }
      },
    },
    { connection: fixture.redis, prefix: fixture.env.config.queuePrefix, concurrency: 5, logger: createLogger({ name: 'ai-outage', level: 'silent' }) },
  );
  const process = { providers, worker, registry };
  opened.push(process);
  return process;
}

const ask = (providers: ProviderClients) => providers.openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }).catch(() => undefined);
const chatRequests = () => fixture.sim.stats().endpoints['openai.chat.completions'].requests;
const waitsOf = (job: Job | undefined) => (job?.data as Record<string, unknown> | undefined)?.[UPSTREAM_WAITS_KEY] as Record<string, UpstreamWait> | undefined;

/**
 * The job once it has been deferred at least `count` times, read while it is delayed: its state
 * first, then its fields (the runtime records the wait before it moves the job, so a delayed job
 * read after its state has both).
 */
async function deferredAtLeast(jobId: string, count: number): Promise<Job> {
  return waitFor(
    async () => {
      if ((await queue.getJobState(jobId)) !== 'delayed') return undefined;
      const job = await queue.getJob(jobId);
      return job && (waitsOf(job)?.openai?.deferrals ?? 0) >= count ? job : undefined;
    },
    RESET_MS * (count + 4),
    `job ${jobId} deferred ${count} times`,
  );
}

/** The job once it is in `state`: its state read first, then its fields, so a finished job has its return value or reason. */
async function reached(jobId: string, state: 'completed' | 'failed', timeoutMs: number): Promise<Job> {
  return waitFor(async () => ((await queue.getJobState(jobId)) === state ? queue.getJob(jobId) : undefined), timeoutMs, `job ${jobId} ${state}`);
}

async function deferrals(registry: Registry, cause: string): Promise<number> {
  const metric = await registry.getSingleMetric('clipline_provider_outage_deferrals_total')?.get();
  return metric?.values.find((value) => value.labels.provider === 'openai' && value.labels.cause === cause)?.value ?? 0;
}

describe('a job that meets an open breaker', () => {
  it('is delayed until the breaker half-opens, spends no attempt, and completes once the provider heals', async () => {
    fixture.sim.configure({ endpoints: { 'openai.chat.completions': { errorRate: 1, errorStatus: 503 } } });
    const { providers, registry } = startProcess();
    // Two failures open the breaker before the job comes.
    await ask(providers);
    await ask(providers);
    expect(providers.breakerStates().openai).toBe('open');
    expect(chatRequests()).toBe(2);

    await queue.add('write-captions', { clip: 1 }, { ...declaration.defaultJobOptions, jobId: 'clip-1' });
    const first = await deferredAtLeast('clip-1', 1);
    // Short-circuited: no request reached the provider, and no attempt was counted.
    expect(first.attemptsMade).toBe(0);
    expect(first.delay).toBeGreaterThan(0);
    // The breaker's remaining open time plus at most a fifth (at least 100 ms) of jitter.
    expect(first.delay).toBeLessThanOrEqual(RESET_MS * 1.2 + 100);
    const since = waitsOf(first)!.openai!.since;

    // Each half-open trial fails again and sends the job back: attempts started grow, attempts made do not.
    const third = await deferredAtLeast('clip-1', 3);
    expect(third.attemptsMade).toBe(0);
    expect(third.attemptsStarted).toBeGreaterThanOrEqual(3);
    expect(waitsOf(third)!.openai!.since).toBe(since);
    expect(await queue.getFailedCount()).toBe(0);
    // One trial call per half-open, never more: the jobs waiting did not hammer the provider.
    expect(chatRequests()).toBeLessThanOrEqual(2 + waitsOf(third)!.openai!.deferrals);
    expect(await deferrals(registry, 'breaker-open')).toBeGreaterThanOrEqual(1);
    expect(await deferrals(registry, 'failed-during-outage')).toBeGreaterThanOrEqual(1);

    fixture.sim.configure({ endpoints: { 'openai.chat.completions': { errorRate: 0 } } });
    const done = await reached('clip-1', 'completed', RESET_MS * 6);
    expect(done.returnvalue).toMatchObject({ caption: expect.any(String) });
    // Finishing counts as the one attempt it took; every deferral before it was free.
    expect(done.attemptsMade).toBe(1);
    expect(done.attemptsStarted).toBeGreaterThan(done.attemptsMade);
    expect(providers.breakerStates().openai).toBe('closed');
  });

  it('spends its attempts on failures of a provider its breaker holds healthy, then waits instead of failing on the last', async () => {
    fixture.sim.configure({ endpoints: { 'openai.chat.completions': { errorRate: 1, errorStatus: 503 } } });
    // A breaker that never judges an outage: every failure is an ordinary transient one.
    const { providers } = startProcess({ PROVIDER_BREAKER_VOLUME_THRESHOLD: '1000' });
    await queue.add('write-captions', { clip: 3 }, { ...declaration.defaultJobOptions, jobId: 'clip-3' });
    const waiting = await deferredAtLeast('clip-3', 1);
    // Attempts 1 and 2 were spent with backoff; the third and last one met the failure too and waits.
    expect(waiting.attemptsMade).toBe(2);
    expect(chatRequests()).toBe(3);
    expect(providers.breakerStates().openai).toBe('closed');
    expect(await queue.getFailedCount()).toBe(0);
    // Waiting for a provider its breaker holds healthy: one reset timeout, plus jitter.
    expect(waiting.delay).toBeGreaterThanOrEqual(RESET_MS);
    expect(waiting.delay).toBeLessThanOrEqual(RESET_MS * 1.2);

    fixture.sim.configure({ endpoints: { 'openai.chat.completions': { errorRate: 0 } } });
    const done = await reached('clip-3', 'completed', RESET_MS * 6);
    expect(done.attemptsMade).toBe(3);
  });

  it('gives up past PROVIDER_OUTAGE_MAX_SECONDS, counted from its first wait even in another process', async () => {
    fixture.sim.configure({ endpoints: { 'openai.chat.completions': { errorRate: 1, errorStatus: 503 } } });
    const horizon = { PROVIDER_OUTAGE_MAX_SECONDS: '4' };
    const first = startProcess(horizon);
    await ask(first.providers);
    await ask(first.providers);
    await queue.add('write-captions', { clip: 2 }, { ...declaration.defaultJobOptions, jobId: 'clip-2' });
    const deferred = await deferredAtLeast('clip-2', 1);
    const since = waitsOf(deferred)!.openai!.since;

    // This process goes away; another one, whose breakers have seen nothing yet, takes the job on.
    await first.worker.close();
    // 3 s of the 4 s horizon gone: counting from its own first sight, the next process would take
    // 4 s more; counting from the first wait, it gives up within the 1 s left plus its start-up.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const secondStarted = Date.now();
    startProcess({ ...horizon, PROVIDER_BREAKER_VOLUME_THRESHOLD: '1' });
    const failed = await reached('clip-2', 'failed', 20_000);
    const failedAt = failed.finishedOn!;
    expect(failed.failedReason).toMatch(/^gave up waiting for openai: unavailable for [\d.]+ s, the limit is 4 s \(PROVIDER_OUTAGE_MAX_SECONDS\)/);
    // Counted from the first wait in the first process, not from the second process's first sight of the outage.
    expect(waitsOf(failed)!.openai!.since).toBe(since);
    expect(failedAt - since).toBeGreaterThanOrEqual(4000);
    expect(failedAt - secondStarted).toBeLessThan(4000);
    // Given up at once, not retried: a failure for good, on the one attempt it counts.
    expect(failed.attemptsMade).toBe(1);

    // Retried by an operator hours later, it gets an outage window of its own, not the spent one.
    expect(await retryFailedJobs(queue, null)).toBe(1);
    expect(waitsOf(await queue.getJob('clip-2'))).toBeUndefined();
    const retried = await deferredAtLeast('clip-2', 1);
    expect(waitsOf(retried)!.openai!.since).toBeGreaterThan(failedAt);
  });
});

describe('a job whose provider keeps answering 429', () => {
  it('gives up past PROVIDER_OUTAGE_MAX_SECONDS when the provider is a wall, having spent no attempt before', async () => {
    fixture.sim.configure({ endpoints: { 'openai.chat.completions': { rateLimitRate: 1, retryAfterSeconds: 1 } } });
    startProcess({ PROVIDER_OUTAGE_MAX_SECONDS: '3' });
    await queue.add('write-captions', { clip: 4 }, { ...declaration.defaultJobOptions, jobId: 'clip-4' });
    const failed = await reached('clip-4', 'failed', 20_000);
    expect(failed.failedReason).toMatch(
      /^gave up waiting for openai: unavailable for [\d.]+ s, the limit is 3 s \(PROVIDER_OUTAGE_MAX_SECONDS\); last error: openai is rate-limited \((upstream|paused)\)/,
    );
    const wait = waitsOf(failed)!.openai!;
    expect(failed.finishedOn! - wait.since).toBeGreaterThanOrEqual(3000);
    expect(wait.deferrals).toBeGreaterThanOrEqual(2);
    expect(failed.attemptsMade).toBe(1);
  });

  it('gives up by the horizon when the Retry-After of the wall is longer: the queue is not paused past it', async () => {
    fixture.sim.configure({ endpoints: { 'openai.chat.completions': { rateLimitRate: 1, retryAfterSeconds: 30 } } });
    const { providers } = startProcess({ PROVIDER_OUTAGE_MAX_SECONDS: '2' });
    await fixture.redis.del(providers.gate.pauseKey('openai'));
    await queue.add('write-captions', { clip: 5 }, { ...declaration.defaultJobOptions, jobId: 'clip-5' });
    // Paused for the 30 s the provider asks, the job would give up only then.
    const failed = await reached('clip-5', 'failed', 15_000);
    expect(failed.failedReason).toMatch(/^gave up waiting for openai: unavailable for [\d.]+ s, the limit is 2 s/);
    const wait = waitsOf(failed)!.openai!;
    expect(failed.finishedOn! - wait.since).toBeGreaterThanOrEqual(2000);
    expect(failed.finishedOn! - wait.since).toBeLessThan(10_000);
    expect(failed.attemptsMade).toBe(1);
    await fixture.redis.del(providers.gate.pauseKey('openai'));
  });

  it('bounds the wait only when no call of this process has got through for the horizon: a busy provider is waited for', async () => {
    const { providers, registry } = startProcess({ PROVIDER_OUTAGE_MAX_SECONDS: '60' });
    // No pause left by the test before.
    await fixture.redis.del(providers.gate.pauseKey('openai'));
    const refusal = async () => {
      fixture.sim.configure({ endpoints: { 'openai.chat.completions': { rateLimitNext: 1 } } });
      const error = await providers.openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      // The pause the 429 left is lifted, so the next call reaches the provider.
      await fixture.redis.del(providers.gate.pauseKey('openai'));
      return toJobError(error) as RateLimitedError;
    };
    // Nothing got through yet: the 429 may be a wall, and the job's wait is bounded.
    const first = await refusal();
    expect(first).toBeInstanceOf(RateLimitedError);
    expect(first.upstream).toMatchObject({ upstream: 'openai', horizonMs: 60_000 });
    expect(await deferrals(registry, 'rate-limit-wall')).toBe(1);
    // A call got through since: the provider is busy, not a wall; the job waits as long as it takes.
    await providers.openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] });
    const second = await refusal();
    expect(second).toBeInstanceOf(RateLimitedError);
    expect(second.upstream).toBeUndefined();
    expect(await deferrals(registry, 'rate-limit-wall')).toBe(1);
  });

  it('waits for a 429 without limit when PROVIDER_OUTAGE_MAX_SECONDS is 0 (never wait for an outage)', async () => {
    const { providers } = startProcess({ PROVIDER_OUTAGE_MAX_SECONDS: '0' });
    await fixture.redis.del(providers.gate.pauseKey('openai'));
    fixture.sim.configure({ endpoints: { 'openai.chat.completions': { rateLimitNext: 1 } } });
    const error = await providers.openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    await fixture.redis.del(providers.gate.pauseKey('openai'));
    const mapped = toJobError(error) as RateLimitedError;
    expect(mapped).toBeInstanceOf(RateLimitedError);
    expect(mapped.upstream).toBeUndefined();
  });
});
