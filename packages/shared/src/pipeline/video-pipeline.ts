import type { VideosRepository } from '../db/videos-repository.js';
import { isDependencyOutage, isWorkerClosing, JobCancelledError, PermanentJobError } from '../errors.js';
import type { VIDEO_STEPS } from '../queues/index.js';

/** Share of the overall progress each step covers: [start, end] in percent. */
const STEP_PROGRESS: Record<string, [number, number]> = {
  ingest: [0, 10],
  analyze: [10, 70],
  persist: [70, 75],
  render: [75, 99],
};

export interface StepContext {
  /** Reports progress inside the step, 0..1; persisted at most every `progressIntervalMs`. */
  progress(fraction: number): Promise<void>;
}

interface StepJob {
  id: string;
  name: string;
  queue: string;
  data: { videoId: string };
  attemptsMade: number;
  maxAttempts: number;
  signal?: AbortSignal;
  updateProgress(percent: number): Promise<void>;
}

/**
 * Wraps a pipeline step with the bookkeeping every step needs: the video and step move to
 * running, progress is mapped into the step's share, and a final failure (no attempts left or
 * a permanent error) marks the step and video failed with a readable reason. The error is
 * rethrown so BullMQ records it and fails the parent flow.
 */
export async function runVideoStep<J extends StepJob, R>(
  step: (typeof VIDEO_STEPS)[number],
  job: J,
  videos: VideosRepository,
  run: (context: StepContext) => Promise<R>,
  progressIntervalMs = 500,
): Promise<R> {
  const { videoId } = job.data;
  const [from, to] = STEP_PROGRESS[step] ?? [0, 100];
  const attempt = job.attemptsMade + 1;
  const current = await videos.status(videoId);
  // Purged (or never recorded): a job retried after its video's rows and files were removed
  // must not bring files back.
  if (current === undefined) throw new PermanentJobError(`video ${videoId} does not exist; ${step} skipped`);
  if (current === 'cancelled' || current === 'failed') {
    // Cancelled (or failed elsewhere) while this step waited: do no work for it.
    throw new PermanentJobError(`video is ${current}; ${step} skipped`);
  }
  await videos.setStatus(videoId, 'processing');
  await videos.setStep(videoId, step, 'active', { attempts: attempt });
  const record = (status: string, reason: string | null = null) =>
    videos
      .recordJobEvent({ videoId, queue: job.queue, jobName: job.name, jobId: job.id, step, status, attempt, reason })
      .catch(() => {});
  await record('active');
  let lastWrite = 0;
  const context: StepContext = {
    async progress(fraction) {
      const percent = from + (to - from) * Math.max(0, Math.min(1, fraction));
      await job.updateProgress(percent);
      const now = Date.now();
      if (now - lastWrite >= progressIntervalMs) {
        lastWrite = now;
        await videos.raiseProgress(videoId, percent);
      }
    },
  };
  try {
    const result = await run(context);
    await videos.setStep(videoId, step, 'completed', { attempts: attempt });
    await videos.raiseProgress(videoId, to);
    await record('completed');
    return result;
  } catch (error) {
    // The database is away: nothing can be recorded; the runtime retries the job without an attempt.
    if (isDependencyOutage(error)) throw error;
    if (job.signal?.reason instanceof JobCancelledError) {
      await record('cancelled', 'cancelled on request');
      throw error;
    }
    if (isWorkerClosing(error, job.signal)) {
      await videos.setStep(videoId, step, 'pending', { reason: 'released by a worker that shut down; waiting for another', attempts: job.attemptsMade });
      await record('released');
      throw error;
    }
    const final =
      error instanceof PermanentJobError || (error as Error)?.name === 'UnrecoverableError' || attempt >= job.maxAttempts;
    const reason = `${step}: ${(error as Error).message ?? String(error)}`;
    await record(final ? 'failed' : 'retrying', reason);
    if (final) {
      await videos.failVideo(videoId, step, reason);
    } else {
      await videos.setStep(videoId, step, 'active', { reason: `attempt ${attempt} failed: ${(error as Error).message}`, attempts: attempt });
    }
    throw error;
  }
}

/** Jobs a video cannot complete without, and the step each one is. */
const ESSENTIAL_JOBS: Record<string, string> = {
  'ingest-video': 'ingest',
  'analyze-video': 'analyze',
  'persist-analysis': 'persist',
  'video-pipeline': 'pipeline',
};

/**
 * The `onFinalFailure` of every worker: an essential job that failed for good, however it failed
 * (including a worker dying on it until the stall check gave up), fails its video with the
 * reason. A video that already finished (failed by its step, cancelled) is left as it is.
 */
export function failVideoOnFinalFailure(videos: VideosRepository) {
  return async ({ name, data, reason }: { name: string; data: unknown; reason: string }) => {
    const step = ESSENTIAL_JOBS[name];
    const videoId = (data as { videoId?: unknown } | null)?.videoId;
    if (!step || typeof videoId !== 'string') return;
    await videos.failVideo(videoId, step, reason.startsWith(`${step}:`) ? reason : `${step}: ${reason}`);
  };
}
