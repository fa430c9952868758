/**
 * The job runtime on real Redis and PostgreSQL: parents with children, final failures, optional
 * steps (and their stop when the video fails), idempotency leases.
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@clipline/shared';
import { z } from 'zod';
import {
  createLogger,
  defineQueue,
  failVideoOnFinalFailure,
  IdempotencyRepository,
  isOptionalStepJob,
  JobLockLostError,
  JobQueues,
  openaiQueue,
  PermanentJobError,
  RateLimitedError,
  runOptionalStep,
  standardRetention,
  startWorker,
  VideoSignals,
  videoJobPolicy,
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

describe('a job whose lock is lost', () => {
  const lockQueue = defineQueue({
    name: 'test-lock',
    resourceClass: 'io',
    jobs: { hold: z.strictObject({}) },
    defaultJobOptions: { attempts: 2, ...standardRetention },
  });

  it('is stopped with the reason, and its run leaves the job to the queue: not failed, no attempt spent', async () => {
    let started: () => void = () => {};
    const running = new Promise<void>((resolve) => (started = resolve));
    let stoppedWith: unknown;
    const worker = startWorker(
      lockQueue,
      {
        hold: async (job) => {
          started();
          await new Promise((_resolve, reject) => job.signal.addEventListener('abort', () => reject((stoppedWith = job.signal.reason))));
        },
      },
      {
        connection: redis,
        prefix: env.config.queuePrefix,
        logger,
        concurrency: 1,
        lockDuration: 1000,
        policy: { onFinalFailure: async (failure) => void finalFailures.push(failure) },
      },
    );
    workers.push(worker);
    const { id } = await jobs.add(lockQueue, 'hold', {});
    await running;
    // What Redis holds after its lock expired while it was away: no lock, or another worker's.
    expect(await redis.del(`${env.config.queuePrefix}:${lockQueue.name}:${id}:lock`)).toBe(1);
    await waitFor(async () => stoppedWith, 5000, 'the job to be stopped');
    expect(stoppedWith).toBeInstanceOf(JobLockLostError);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const job = await jobs.get(lockQueue, id);
    expect(job).toMatchObject({ state: 'active', attemptsMade: 0 });
    expect(finalFailures.filter((failure) => failure.jobId === id)).toEqual([]);
  });
});

describe('a worker closing with a job still running', () => {
  const graceQueue = defineQueue({
    name: 'test-grace',
    resourceClass: 'io',
    jobs: { hold: z.strictObject({ key: z.string() }) },
    defaultJobOptions: { attempts: 2, ...standardRetention },
  });

  it('still stops that job when its work is cancelled during the grace period', async () => {
    const cancelListeners = new Set<(key: string) => void>();
    const cancellations = {
      onCancel: (listener: (key: string) => void) => {
        cancelListeners.add(listener);
        return () => cancelListeners.delete(listener);
      },
    };
    let started: () => void = () => {};
    const running = new Promise<void>((resolve) => (started = resolve));
    let stoppedWith: unknown;
    const worker = startWorker(
      graceQueue,
      {
        hold: async (job) => {
          started();
          await new Promise((_resolve, reject) => job.signal.addEventListener('abort', () => reject((stoppedWith = job.signal.reason))));
        },
      },
      {
        connection: redis,
        prefix: env.config.queuePrefix,
        logger,
        concurrency: 1,
        policy: { cancellations, cancellationKey: (data) => (data as { key: string }).key },
      },
    );
    const key = randomUUID();
    await jobs.add(graceQueue, 'hold', { key });
    await running;
    const closed = worker.close(30_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // A rolling deploy closes workers for up to their grace period: a cancel meanwhile is not lost.
    for (const listener of cancelListeners) listener(key);
    await waitFor(async () => stoppedWith, 5000, 'the cancelled job to be stopped');
    expect((stoppedWith as Error).name).toBe('JobCancelledError');
    await closed;
    expect(cancelListeners.size).toBe(0);
  });
});

describe('runOptionalStep', () => {
  async function videoWithStep(): Promise<string> {
    const id = randomUUID();
    await new VideosRepository(env.db).create({ id, source: '/a.mp4', title: null, steps: ['captions'] });
    return id;
  }

  it('fails an optional step whose job the stall check failed without running it; a settled one stays', async () => {
    const videos = new VideosRepository(env.db);
    const id = randomUUID();
    await videos.create({ id, source: '/a.mp4', title: null, steps: ['transcribe', 'captions'] });
    await videos.setStep(id, 'transcribe', 'active');
    await videos.setStep(id, 'captions', 'skipped', { reason: 'no key' });
    const settle = failVideoOnFinalFailure(videos);
    const reason = 'job stalled more than allowable limit';
    await settle({ queue: openaiQueue.name, name: 'transcribe', jobId: `${id}-transcribe`, data: { videoId: id }, reason });
    await settle({ queue: openaiQueue.name, name: 'write-captions', jobId: `${id}-captions`, data: { videoId: id }, reason });
    const video = (await videos.find(id))!;
    expect(Object.fromEntries(video.steps.map((step) => [step.name, [step.status, step.reason]]))).toEqual({
      transcribe: ['failed', `transcribe: ${reason}`],
      captions: ['skipped', 'no key'],
    });
    // An optional step does not fail its video.
    expect(video.status).toBe('queued');
  });

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

describe('a video that fails stops its running optional steps', () => {
  it("its transcript job ends as a skip and its step as cancelled; another video's runs on", async () => {
    const signals = new VideoSignals(redis, env.config.redisUrl, env.config.queuePrefix);
    const videos = new VideosRepository(env.db, { onFailed: (id) => signals.failed(id) });
    const releases = new Map<string, () => void>();
    const stopped = new Map<string, unknown>();
    const worker = startWorker(
      openaiQueue,
      {
        // Runs until released by the test or stopped through its signal.
        transcribe: (job) =>
          runOptionalStep('transcribe', job, videos, async () => {
            await new Promise<void>((resolve, reject) => {
              releases.set(job.data.videoId, resolve);
              job.signal.addEventListener('abort', () => {
                stopped.set(job.data.videoId, job.signal.reason);
                reject(new Error('the upstream call was aborted'));
              });
            });
            return { done: { words: 3 } };
          }),
        'write-captions': async () => ({ skipped: 'not used here' }),
      },
      { connection: redis, prefix: env.config.queuePrefix, logger, concurrency: 4, policy: videoJobPolicy(videos, signals) },
    );
    try {
      await signals.ready();
      const [failing, other] = [randomUUID(), randomUUID()];
      for (const id of [failing, other]) {
        await videos.create({ id, source: '/a.mp4', title: null, steps: ['analyze', 'transcribe'] });
        await videos.setStep(id, 'analyze', 'active');
        await jobs.add(openaiQueue, 'transcribe', { videoId: id }, { jobId: `${id}-transcribe` });
      }
      await waitFor(async () => (releases.size === 2 ? true : undefined), 10_000, 'both transcripts to start');

      // What runVideoStep does when analysis fails for good.
      await videos.failVideo(failing, 'analyze', 'analyze: not a readable video');
      const done = await waitFor(
        async () => {
          const view = await jobs.get(openaiQueue, `${failing}-transcribe`);
          return view?.state === 'completed' || view?.state === 'failed' ? view : undefined;
        },
        10_000,
        "the failed video's transcript job to end",
      );
      expect(done.state).toBe('completed');
      expect(done.returnValue).toEqual({ skipped: 'stopped: the video failed' });
      expect((stopped.get(failing) as Error).name).toBe('JobAbandonedError');
      const failed = (await videos.find(failing))!;
      expect(failed.status).toBe('failed');
      expect(failed.steps.map((step) => [step.name, step.status, step.reason])).toEqual([
        ['analyze', 'failed', 'analyze: not a readable video'],
        ['transcribe', 'cancelled', 'stopped: analyze failed'],
      ]);

      // The other video's transcript was not touched, and finishes when its work does.
      expect(stopped.has(other)).toBe(false);
      expect((await jobs.get(openaiQueue, `${other}-transcribe`))?.state).toBe('active');
      releases.get(other)!();
      await waitFor(
        async () => ((await jobs.get(openaiQueue, `${other}-transcribe`))?.state === 'completed' ? true : undefined),
        10_000,
        'the other transcript',
      );
      expect((await videos.find(other))!.steps.map((step) => step.status)).toEqual(['active', 'completed']);
    } finally {
      await worker.close();
      await signals.close();
    }
  });

  it('only optional steps are stopped: the essential ones fail the video themselves', () => {
    expect(isOptionalStepJob('ai-openai', 'transcribe')).toBe(true);
    expect(isOptionalStepJob('ai-elevenlabs', 'voiceover')).toBe(true);
    expect(isOptionalStepJob('analyze', 'analyze-video')).toBe(false);
    expect(isOptionalStepJob('render', 'render-clip')).toBe(false);
  });
});

describe('reasons clients read', () => {
  it("name stored files relative to the storage folder, in the video's error and its steps", async () => {
    const storageDir = '/srv/clipline/storage';
    const videos = new VideosRepository(env.db, { storageDir });
    const id = randomUUID();
    await videos.create({ id, source: '/a.mp4', title: null, steps: ['analyze', 'transcribe'] });
    const file = `${storageDir}/videos/${id}/source.mp4`;
    await videos.setStep(id, 'transcribe', 'active', { reason: `attempt 1 failed: ${file}: No such file or directory` });
    expect((await videos.find(id))!.steps[1]!.reason).toBe(`attempt 1 failed: videos/${id}/source.mp4: No such file or directory`);

    await videos.failVideo(id, 'analyze', `analyze: not a readable video (ffprobe: ${file}: Invalid data found when processing input)`);
    const video = (await videos.find(id))!;
    expect(video.error).toBe(`analyze: not a readable video (ffprobe: videos/${id}/source.mp4: Invalid data found when processing input)`);
    expect(video.steps[0]!.reason).toBe(video.error);
    expect(JSON.stringify(video)).not.toContain(storageDir);
    // Given with a trailing slash, the folder is the same folder.
    await new VideosRepository(env.db, { storageDir: `${storageDir}/` }).setStep(id, 'analyze', 'failed', { reason: `${file} gone` });
    expect((await videos.find(id))!.steps[0]!.reason).toBe(`videos/${id}/source.mp4 gone`);
  });
});

describe('idempotency leases', () => {
  const claimed = { outcome: 'claimed', token: expect.stringMatching(/^[0-9a-f-]{36}$/) };

  it('takes over a key whose first request died, after the lease', async () => {
    const repository = new IdempotencyRepository(env.db, 3600, 60);
    expect(await repository.claim('p', 'k1', 'h')).toEqual(claimed);
    expect(await repository.claim('p', 'k1', 'h')).toEqual({ outcome: 'in-progress' });
    await env.db
      .updateTable('idempotency_keys')
      .set({ created_at: new Date(Date.now() - 120_000) })
      .where('key', '=', 'k1')
      .execute();
    expect(await repository.claim('p', 'k1', 'h')).toEqual(claimed);
    expect(await repository.claim('p', 'k1', 'other')).toEqual({ outcome: 'mismatch' });
  });

  it('lets only the claim that holds a key complete or release it', async () => {
    const repository = new IdempotencyRepository(env.db, 3600, 60);
    const first = await repository.claim('p', 'k2', 'h');
    await env.db
      .updateTable('idempotency_keys')
      .set({ created_at: new Date(Date.now() - 120_000) })
      .where('key', '=', 'k2')
      .execute();
    const second = await repository.claim('p', 'k2', 'h');
    if (first.outcome !== 'claimed' || second.outcome !== 'claimed') throw new Error('both should have claimed the key');
    expect(second.token).not.toBe(first.token);
    // The first request, still running past its lease, fails: the retry keeps its claim.
    await repository.release('p', 'k2', first.token);
    expect(await repository.claim('p', 'k2', 'h')).toEqual({ outcome: 'in-progress' });
    // Nor does the first's answer take the place of the retry's.
    expect(await repository.complete('p', 'k2', first.token, 202, { id: 'first' })).toBe(false);
    expect(await repository.complete('p', 'k2', second.token, 202, { id: 'second' })).toBe(true);
    expect(await repository.claim('p', 'k2', 'h')).toEqual({ outcome: 'replay', status: 202, body: { id: 'second' }, location: null });
    // A completed key is not released by a late failure either.
    await repository.release('p', 'k2', second.token);
    expect(await repository.claim('p', 'k2', 'h')).toMatchObject({ outcome: 'replay' });
  });
});
