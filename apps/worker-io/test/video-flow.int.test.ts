/**
 * The whole video flow derived from the pipeline table, on real Redis and PostgreSQL: the chain
 * the producer enqueues, the phases the real parent job runs, job ids, what each step consumes,
 * progress and the step list all follow VIDEO_FLOW. Every step's processor here is a stand-in
 * built from its row (it returns a value its `produces` schema accepts, and checks what it
 * consumes with its `consumes` schema), so a row added to the table is covered by this test
 * as soon as it exists.
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@clipline/shared';
import {
  AnalysisRepository,
  createLogger,
  createQueue,
  JobQueues,
  PARENT_PHASES,
  PermanentJobError,
  pipelineQueue,
  runOptionalStep,
  runVideoStep,
  startWorker,
  stepProgressRange,
  VIDEO_FLOW,
  VIDEO_STEPS,
  videoJobId,
  VideoPipelineProducer,
  VideosRepository,
  type JobHandle,
  type Processor,
  type QueueDeclaration,
  type RunningWorker,
  type VideoStepDefinition,
} from '@clipline/shared';
import { pipelineProcessors } from '../src/io-worker.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let redis: RedisClient;
let jobs: JobQueues;
let videos: VideosRepository;
let analyses: AnalysisRepository;
let producer: VideoPipelineProducer;
const workers: RunningWorker[] = [];
/** Every stand-in run, in the order they started. */
const runs: { step: string; jobId: string; consumed: boolean }[] = [];
/** Videos whose renders of these clip indexes end without recording their clip. */
const unrecordedRenders = new Map<string, number[]>();
/** Videos whose essential step of this name fails where its processor never sees it (as a job failed for stalling). */
const unrecordedFailures = new Map<string, string>();

const CANDIDATES = [
  { startSeconds: 0, endSeconds: 6, score: 80, reasons: ['strong motion'] },
  { startSeconds: 10, endSeconds: 16, score: 70, reasons: ['loud audio'] },
];

/** A value each step's `produces` schema accepts. */
function sampleResult(step: VideoStepDefinition, job: JobHandle<{ videoId: string }>): unknown {
  const metadata = { durationSeconds: 20, width: 640, height: 360, fps: 25, hasAudio: true, sizeBytes: 1000, videoCodec: 'h264' };
  const clipOptions = { clipCount: 2, minClipSeconds: 5, maxClipSeconds: 30, aspect: '9:16' as const };
  const samples: Record<string, unknown> = {
    ingest: { storageKey: `videos/${job.data.videoId}/source.mp4`, sizeBytes: 1000, container: 'mp4' },
    analyze: {
      metadata,
      scenes: [{ startSeconds: 0, endSeconds: 20 }],
      cutSeconds: [],
      sampledFrames: 200,
      sampleFps: 10,
      clipOptions,
      clipCandidates: CANDIDATES,
      audio: { integratedLufs: -20, loudnessRangeLu: 5 },
      warnings: [],
      contentSha256: 'a'.repeat(64),
      reusedFrom: null,
    },
    persist: { scenes: 1, clipCandidates: CANDIDATES, aspect: '9:16' },
    render: { clipId: randomUUID(), storageKey: 'clip.mp4', thumbnailKey: 'clip.jpg', width: 360, height: 640, durationSeconds: 6 },
  };
  return samples[step.name] ?? { done: true };
}

/** Videos whose essential step of this name returns a result its `produces` schema refuses. */
const malformedResults = new Map<string, string>();

/** The step's sample result with a reason longer than a reason may be. */
function malformed(step: VideoStepDefinition, job: JobHandle<{ videoId: string }>): unknown {
  const sample = sampleResult(step, job) as { clipCandidates: typeof CANDIDATES };
  return { ...sample, clipCandidates: sample.clipCandidates.map((clip) => ({ ...clip, reasons: [...clip.reasons, 'x'.repeat(250)] })) };
}

/** The video's final status; a stand-in's failed expectation fails its job, and so the video. */
async function finished(id: string): Promise<string> {
  return waitFor(
    async () => {
      const status = await videos.status(id);
      return status === 'completed' || status === 'failed' ? status : undefined;
    },
    30_000,
    'the video to finish',
  );
}

/** A stand-in processor for one row, with the bookkeeping its kind of step has in production. */
function standIn(step: VideoStepDefinition): Processor<{ videoId: string }> {
  return async (job) => {
    let consumed = false;
    if (step.consumes && step.phase === 'chain') {
      const [input] = await job.childResults();
      consumed = step.consumes.safeParse(input).success;
      expect(consumed).toBe(true);
    }
    if (step.consumes && step.phase !== 'chain' && !step.fanOut) {
      // A step of a parent phase gets what it consumes in its payload, from the parent.
      consumed = Object.values(job.data as Record<string, unknown>).some((value) => step.consumes!.safeParse(value).success);
      expect(consumed).toBe(true);
    }
    if (step.consumes && step.fanOut) {
      // A fan-out item consumed its input when it is exactly the candidate of its index.
      const item = job.data as unknown as { clipIndex: number; startSeconds: number; endSeconds: number };
      const candidate = CANDIDATES[item.clipIndex];
      consumed = candidate?.startSeconds === item.startSeconds && candidate?.endSeconds === item.endSeconds;
    }
    runs.push({ step: step.name, jobId: job.id, consumed });
    const result = malformedResults.get(job.data.videoId) === step.name ? malformed(step, job) : sampleResult(step, job);
    if (malformedResults.get(job.data.videoId) !== step.name) expect(step.produces.safeParse(result).success).toBe(true);
    if (step.fanOut) {
      // A render that ends before it records its clip (its worker crashing each time).
      const unrecorded = unrecordedRenders.get(job.data.videoId);
      if (unrecorded?.includes((job.data as unknown as { clipIndex: number }).clipIndex)) throw new PermanentJobError('worker lost');
      const clip = job.data as unknown as {
        videoId: string;
        clipIndex: number;
        startSeconds: number;
        endSeconds: number;
        score: number;
        reasons: string[];
        aspect: '9:16';
      };
      await analyses.upsertClip({ ...clip, status: 'rendered', storageKey: 'clip.mp4', thumbnailKey: 'clip.jpg', width: 360, height: 640, durationSeconds: 6 });
      return result;
    }
    if (!step.essential) return runOptionalStep(step.name, job, videos, async () => ({ done: result }));
    if (unrecordedFailures.get(job.data.videoId) === step.name) throw new PermanentJobError('job stalled more than allowable limit');
    return runVideoStep(step.name, job, videos, async (context) => {
      await context.progress(1);
      return result;
    });
  };
}

beforeAll(async () => {
  env = await createTestEnvironment();
  redis = connectRedis(env.config.redisUrl);
  jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
  videos = new VideosRepository(env.db, { stepOrder: VIDEO_STEPS });
  analyses = new AnalysisRepository(env.db);
  producer = new VideoPipelineProducer({ connection: redis, prefix: env.config.queuePrefix }, videos);
  const common = { connection: redis, prefix: env.config.queuePrefix, concurrency: 4, logger: createLogger({ name: 'flow', level: 'silent' }) };
  // One worker per queue of the table, its processors the stand-ins of the rows on that queue.
  const byQueue = new Map<QueueDeclaration, Record<string, Processor<{ videoId: string }>>>();
  for (const step of VIDEO_FLOW) byQueue.set(step.queue, { ...byQueue.get(step.queue), [step.job]: standIn(step) });
  for (const [declaration, processors] of byQueue) workers.push(startWorker(declaration, processors as never, common));
  // The parent is the real one.
  workers.push(startWorker(pipelineQueue, pipelineProcessors(videos, analyses, jobs), common));
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.close()));
  await producer.close();
  await jobs.close();
  redis.disconnect();
  await env.cleanup();
});

describe('the video flow follows its table', () => {
  it('enqueues the chain of the table, in order, under the parent, with the table job ids', async () => {
    const id = randomUUID();
    await producer.submit({ source: '/media/a.mp4' }, {}, id);
    // Each chain job's parent is the next step of the chain, the last one's the pipeline parent.
    const chain = VIDEO_FLOW.filter((step) => step.phase === 'chain');
    const parentIds = await Promise.all(
      chain.map(async (step) => {
        const queue = createQueue(step.queue, { connection: redis, prefix: env.config.queuePrefix });
        try {
          const job = await queue.getJob(videoJobId(id, step.name));
          expect(job?.name).toBe(step.job);
          return job?.parent?.id;
        } finally {
          await queue.close();
        }
      }),
    );
    expect(parentIds).toEqual([...chain.slice(1).map((step) => videoJobId(id, step.name)), videoJobId(id, 'pipeline')]);
    expect(await jobs.get(pipelineQueue, videoJobId(id, 'pipeline'))).toMatchObject({ name: 'video-pipeline' });
    expect(await finished(id)).toBe('completed');
  });

  it('runs the chain, then the parent phases in table order, each step under its job id, to completion with full progress', async () => {
    const id = randomUUID();
    await producer.submit({ source: '/media/b.mp4', priority: 'high' }, {}, id);
    expect(await finished(id)).toBe('completed');
    // Every step's job kept the video's priority, those the parent added in its phases included.
    const priorities = await Promise.all(
      VIDEO_FLOW.flatMap((step) =>
        (step.fanOut ? CANDIDATES.map((_, index) => videoJobId(id, step.name, index)) : [videoJobId(id, step.name)]).map((jobId) => ({ step, jobId })),
      )
        .concat([{ step: { queue: pipelineQueue } as VideoStepDefinition, jobId: videoJobId(id, 'pipeline') }])
        .map(async ({ step, jobId }) => {
          const queue = createQueue(step.queue, { connection: redis, prefix: env.config.queuePrefix });
          try {
            return [jobId, (await queue.getJob(jobId))?.opts.priority];
          } finally {
            await queue.close();
          }
        }),
    );
    expect(new Set(priorities.map(([, priority]) => priority))).toEqual(new Set([1]));
    const mine = runs.filter((run) => run.jobId.startsWith(id));

    // Chain steps one after another, in table order.
    const chain = VIDEO_FLOW.filter((step) => step.phase === 'chain').map((step) => step.name);
    expect(mine.slice(0, chain.length).map((run) => run.step)).toEqual(chain);
    // Then each parent phase: its steps (in any order within the phase) before the next phase's.
    const phaseOf = new Map(VIDEO_FLOW.map((step) => [step.name as string, step.phase]));
    const phases = mine.slice(chain.length).map((run) => phaseOf.get(run.step));
    expect(phases).toEqual([...phases].sort((a, b) => PARENT_PHASES.indexOf(a as never) - PARENT_PHASES.indexOf(b as never)));
    // Every step ran, with the job ids of the table; a fan-out step once per item it consumed.
    const expectedIds = VIDEO_FLOW.flatMap((step) =>
      step.fanOut ? CANDIDATES.map((_, index) => videoJobId(id, step.name, index)) : [videoJobId(id, step.name)],
    );
    expect(mine.map((run) => run.jobId).sort()).toEqual(expectedIds.sort());
    expect(mine.filter((run) => VIDEO_FLOW.find((step) => step.name === run.step)?.consumes).every((run) => run.consumed)).toBe(true);

    // The step list in table order, every step done; progress full.
    const video = await videos.find(id);
    expect(video!.steps.map((step) => [step.name, step.status])).toEqual(VIDEO_STEPS.map((name) => [name, 'completed']));
    expect(video!.progress).toBe(100);
    // The weights cover the bar: the last weighted step ends where completion takes over.
    expect(Math.max(...VIDEO_STEPS.map((name) => stepProgressRange(name)[1]))).toBeLessThanOrEqual(100);
  });

  it('counts a clip whose render ended without recording it as failed: some such, the step names them; all, the video fails', async () => {
    const some = randomUUID();
    unrecordedRenders.set(some, [1]);
    await producer.submit({ source: '/media/c.mp4' }, {}, some);
    expect(await finished(some)).toBe('completed');
    expect((await videos.find(some))!.steps.find((step) => step.name === 'render')).toMatchObject({
      status: 'completed',
      reason: '1 of 2 clips failed: its render job ended without rendering it',
    });

    const all = randomUUID();
    unrecordedRenders.set(all, [0, 1]);
    await producer.submit({ source: '/media/d.mp4' }, {}, all);
    expect(await finished(all)).toBe('failed');
    const video = (await videos.find(all))!;
    expect(video.error).toBe('render: no clip could be rendered (its render job ended without rendering it)');
    expect(video.steps.find((step) => step.name === 'render')!.status).toBe('failed');
  });

  it('fails the video, naming the step, when an essential step returns a result the steps after it cannot read, instead of completing it without clips', async () => {
    const id = randomUUID();
    malformedResults.set(id, 'persist');
    await producer.submit({ source: '/media/malformed.mp4' }, {}, id);
    expect(await finished(id)).toBe('failed');
    const video = (await videos.find(id))!;
    const persist = video.steps.find((step) => step.name === 'persist');
    expect(persist).toMatchObject({
      status: 'failed',
      reason: expect.stringContaining("the persist step's result is not what the steps after it read (clipCandidates.0.reasons.1:"),
    });
    expect(runs.filter((run) => run.jobId.startsWith(id) && run.step === 'render')).toEqual([]);
  });

  it('fails the video when an essential step failed without its processor recording it, and runs nothing after it', async () => {
    const { id } = await producer.submit({ source: '/media/persist-lost.mp4' });
    unrecordedFailures.set(id, 'persist');
    expect(await finished(id)).toBe('failed');
    const video = await videos.find(id);
    expect(video!.error).toMatch(/persist: job stalled more than allowable limit/);
    expect(video!.steps.find((step) => step.name === 'persist')).toMatchObject({ status: 'failed' });
    // Nothing of the later phases ran on the missing result.
    expect(runs.filter((run) => run.jobId.startsWith(id) && ['render', 'captions', 'thumbnail', 'voiceover'].includes(run.step))).toEqual([]);
    expect(await analyses.listClips(id)).toEqual([]);
  });

  it('removes the rows of a submission whose jobs could not be enqueued, a database blip at that moment too', async () => {
    let removals = 0;
    class BlinkingVideos extends VideosRepository {
      override async remove(...ids: string[]) {
        removals += 1;
        if (removals === 1) throw new Error('Connection terminated unexpectedly');
        return super.remove(...ids);
      }
    }
    const blinking = new BlinkingVideos(env.db, { stepOrder: VIDEO_STEPS });
    const refusing = new VideoPipelineProducer({ connection: redis, prefix: env.config.queuePrefix }, blinking);
    // The enqueue fails as on a Redis blip.
    (refusing as unknown as { flows: { addChains(): Promise<void> } }).flows = {
      addChains: async () => {
        throw new Error('Connection is closed.');
      },
    };
    const id = randomUUID();
    await expect(refusing.submit({ source: '/media/refused.mp4' }, {}, id)).rejects.toThrow('Connection is closed.');
    await waitFor(async () => ((await videos.find(id)) ? undefined : true), 10_000, "the refused submission's row to go");
    expect(removals).toBe(2);
  });

  it('cancels a video whose running steps cannot be told (Redis failing the signal): the record says cancelled, the waiting jobs go', async () => {
    const failingSignals = { cancelled: async () => Promise.reject(new Error('Connection is closed.')) };
    const cancelling = new VideoPipelineProducer({ connection: redis, prefix: env.config.queuePrefix }, videos, failingSignals as never);
    try {
      const id = randomUUID();
      // Held back, so its jobs are still waiting when it is cancelled.
      await producer.submit({ source: '/media/e.mp4', delaySeconds: 60 }, {}, id);
      expect(await cancelling.cancel(id)).toBe('cancelled');
      expect(await videos.status(id)).toBe('cancelled');
      const ingest = VIDEO_FLOW.find((step) => step.phase === 'chain')!;
      expect(await jobs.get(ingest.queue, videoJobId(id, ingest.name))).toBeUndefined();
    } finally {
      await cancelling.close();
    }
  });
});
