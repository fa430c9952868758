/**
 * The bookkeeping around a video's step, shared by every processor of the table: the step's
 * status and attempts in the database, its share of the progress bar, and what its failure means
 * for the video (essential steps fail it, optional ones never do).
 */
import type { VideosRepository } from '../db/videos-repository.js';
import { classifyJobError, coerceError, PermanentJobError } from '../errors.js';
import { stepProgressRange, type VideoStepName } from './video-flow.js';

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

/** Refuses work for a video that is gone, cancelled or failed while the step waited. */
async function assertVideoRunnable(videos: VideosRepository, videoId: string, step: VideoStepName): Promise<void> {
  const current = await videos.status(videoId);
  // Purged (or never recorded): a job retried after its video's rows and files were removed
  // must not bring files back.
  if (current === undefined) throw new PermanentJobError(`video ${videoId} does not exist; ${step} skipped`);
  if (current === 'cancelled' || current === 'failed') throw new PermanentJobError(`video is ${current}; ${step} skipped`);
}

function progressReporter(job: StepJob, videos: VideosRepository, step: VideoStepName, intervalMs: number): StepContext {
  const [from, to] = stepProgressRange(step);
  let lastWrite = 0;
  return {
    async progress(fraction) {
      const percent = from + (to - from) * Math.max(0, Math.min(1, fraction));
      await job.updateProgress(percent);
      const now = Date.now();
      if (now - lastWrite >= intervalMs) {
        lastWrite = now;
        await videos.raiseProgress(job.data.videoId, percent);
      }
    },
  };
}

/**
 * Runs an essential step: the video and step move to running, progress is mapped into the
 * step's share, and a final failure (no attempts left or a permanent error) marks the step and
 * video failed with a readable reason. The error is rethrown so BullMQ records it and fails the
 * parent flow.
 */
export async function runVideoStep<R>(
  step: VideoStepName,
  job: StepJob,
  videos: VideosRepository,
  run: (context: StepContext) => Promise<R>,
  progressIntervalMs = 500,
): Promise<R> {
  const { videoId } = job.data;
  const attempt = job.attemptsMade + 1;
  await assertVideoRunnable(videos, videoId, step);
  await videos.setStatus(videoId, 'processing');
  await videos.setStep(videoId, step, 'active', { attempts: attempt });
  const record = (status: string, reason: string | null = null) =>
    videos.recordJobEvent({ videoId, queue: job.queue, jobName: job.name, jobId: job.id, step, status, attempt, reason }).catch(() => {});
  await record('active');
  try {
    const result = await run(progressReporter(job, videos, step, progressIntervalMs));
    await videos.setStep(videoId, step, 'completed', { attempts: attempt });
    await videos.raiseProgress(videoId, stepProgressRange(step)[1]);
    await record('completed');
    return result;
  } catch (error) {
    const { kind } = classifyJobError(error, job.signal);
    // The database is away: nothing can be recorded; the runtime retries the job without an attempt.
    if (kind === 'dependency-outage') throw error;
    if (kind === 'cancelled') {
      await record('cancelled', 'cancelled on request');
    } else if (kind === 'worker-closing') {
      await videos.setStep(videoId, step, 'pending', { reason: 'released by a worker that shut down; waiting for another', attempts: job.attemptsMade });
      await record('released');
    } else {
      const message = coerceError(error).message;
      const final = kind === 'permanent' || attempt >= job.maxAttempts;
      const reason = `${step}: ${message}`;
      await record(final ? 'failed' : 'retrying', reason);
      if (final) await videos.failVideo(videoId, step, reason);
      else await videos.setStep(videoId, step, 'active', { reason: `attempt ${attempt} failed: ${message}`, attempts: attempt });
    }
    throw error;
  }
}

/** What an optional step's work returns: done, or skipped with the reason users will read. */
export type OptionalStepOutcome<R> = { done: R; note?: string } | { skipped: string };

type OptionalStepJob = Pick<StepJob, 'data' | 'attemptsMade' | 'maxAttempts' | 'signal'>;

/**
 * Runs a step that enriches a video without being essential to it (transcript, captions,
 * generated thumbnail, voice-over): it is recorded as completed, skipped (with the reason, e.g.
 * no API key configured) or failed, but it never fails the video. A {@link RateLimitedError}
 * passes through unrecorded: the job comes back later without that counting as an attempt.
 */
export async function runOptionalStep<R>(
  step: VideoStepName,
  job: OptionalStepJob,
  videos: VideosRepository,
  work: () => Promise<OptionalStepOutcome<R>>,
): Promise<R | { skipped: string }> {
  const { videoId } = job.data;
  const attempt = job.attemptsMade + 1;
  const status = await videos.status(videoId);
  if (status === 'cancelled' || status === 'failed') return { skipped: `video is ${status}` };
  // Purged: nothing to record, and no file may be written for it again.
  if (status === undefined) return { skipped: 'video does not exist' };
  await videos.setStep(videoId, step, 'active', { attempts: attempt });
  try {
    const outcome = await work();
    if ('skipped' in outcome) {
      await videos.setStep(videoId, step, 'skipped', { reason: outcome.skipped, attempts: attempt });
      return { skipped: outcome.skipped };
    }
    await videos.setStep(videoId, step, 'completed', { reason: outcome.note ?? null, attempts: attempt });
    return outcome.done;
  } catch (error) {
    const { kind } = classifyJobError(error, job.signal);
    // Shutting down, cancelled, the database away or a queue pause: nothing to record here.
    // Anything else, an open breaker included, takes the normal path to a final state.
    if (kind === 'worker-closing' || kind === 'cancelled' || kind === 'dependency-outage' || kind === 'rate-limited') throw error;
    const message = coerceError(error).message;
    const final = kind === 'permanent' || attempt >= job.maxAttempts;
    await videos.setStep(videoId, step, final ? 'failed' : 'active', {
      reason: final ? `${step}: ${message}` : `attempt ${attempt} failed: ${message}`,
      attempts: attempt,
    });
    throw error;
  }
}
