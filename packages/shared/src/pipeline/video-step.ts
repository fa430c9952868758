/**
 * The bookkeeping around a video's step, shared by every processor of the table: the step's
 * status and attempts in the database, its share of the progress bar, and what its failure means
 * for the video (essential steps fail it, optional ones never do).
 */
import type { VideosRepository } from '../db/videos-repository.js';
import {
  classifyJobError,
  coerceError,
  JobAbandonedError,
  PermanentJobError,
  upstreamOutageVerdict,
  type JobErrorKind,
  type UpstreamOutageError,
  type UpstreamWait,
} from '../errors.js';
import { stepProgressRange, VIDEO_FLOW, type VideoStepName } from './video-flow.js';

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
  /** The job's earlier waits for upstreams that were down (the worker runtime keeps them in the job). */
  upstreamWaits?: Readonly<Record<string, UpstreamWait>>;
  updateProgress(percent: number): Promise<void>;
}

/** What a step shows while its job waits for an upstream to come back. */
function waitingReason(outage: UpstreamOutageError, delayMs: number): string {
  return `waiting for ${outage.upstream} to recover, next try in about ${Math.ceil(delayMs / 1000)} s: ${outage.message}`;
}

/**
 * A step whose upstream is down: within the outage horizon the step stays active with the
 * reason it waits (the caller rethrows, and the runtime delays the job without spending an
 * attempt) and undefined is returned; past it, the reason to give up.
 */
async function waitForUpstream(
  step: VideoStepName,
  job: Pick<StepJob, 'data' | 'attemptsMade' | 'upstreamWaits'>,
  videos: VideosRepository,
  outage: UpstreamOutageError,
): Promise<string | undefined> {
  const verdict = upstreamOutageVerdict(outage, job.upstreamWaits?.[outage.upstream]);
  if (!verdict.wait) return verdict.reason;
  await videos.setStep(job.data.videoId, step, 'active', { reason: waitingReason(outage, verdict.delayMs), attempts: job.attemptsMade + 1 });
  return undefined;
}

/** The upstream a step's job waits for: one that is down, or one that keeps refusing with 429s. */
function upstreamAway(classified: JobErrorKind): UpstreamOutageError | undefined {
  if (classified.kind === 'upstream-outage') return classified.outage;
  return classified.kind === 'rate-limited' ? classified.upstream : undefined;
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
 * The steps after this one find its result among the parent's by the schema it `produces`: a
 * result that does not match would be taken for none (the clips' step finding no candidates, and
 * the video completing without clips), so the step fails here instead, saying why.
 */
function assertProduces(step: VideoStepName, result: unknown): void {
  const parsed = VIDEO_FLOW.find((row) => row.name === step)?.produces.safeParse(result);
  if (parsed && !parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((issue) => `${issue.path.join('.') || '(result)'}: ${issue.message}`);
    throw new PermanentJobError(`the ${step} step's result is not what the steps after it read (${issues.join('; ')})`);
  }
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
    assertProduces(step, result);
    // The completion and its event are one transaction: the event is the record that the step's
    // effects were stored once. Should the database go away here, the job runs again.
    await videos.completeStep({ videoId, queue: job.queue, jobName: job.name, jobId: job.id, step, attempt });
    await videos.raiseProgress(videoId, stepProgressRange(step)[1]);
    return result;
  } catch (thrown) {
    const classified = classifyJobError(thrown, job.signal, { last: attempt >= job.maxAttempts });
    // The database is away: nothing can be recorded; the runtime retries the job without an attempt.
    // The job's lock was lost: the step is another run's to record now.
    if (classified.kind === 'dependency-outage' || classified.kind === 'lock-lost') throw thrown;
    let error = thrown;
    let kind = classified.kind;
    const unavailable = upstreamAway(classified);
    if (unavailable) {
      // Within the horizon the job waits for its upstream, no attempt spent; past it the step fails for good.
      const giveUp = await waitForUpstream(step, job, videos, unavailable);
      if (giveUp === undefined) {
        await record('waiting', unavailable.message);
        throw thrown;
      }
      error = new PermanentJobError(giveUp, { cause: thrown });
      kind = 'permanent';
    } else if (kind === 'rate-limited') {
      // Our own limiter: the queue pauses and the job comes back, no attempt spent, nothing to record.
      throw thrown;
    }
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

type OptionalStepJob = Pick<StepJob, 'data' | 'attemptsMade' | 'maxAttempts' | 'signal' | 'upstreamWaits'>;

/**
 * Runs a step that enriches a video without being essential to it (transcript, captions,
 * generated thumbnail, voice-over): it is recorded as completed, skipped (with the reason, e.g.
 * no API key configured) or failed, but it never fails the video. A {@link RateLimitedError}
 * passes through unrecorded: the job comes back later without that counting as an attempt. So
 * does an {@link UpstreamOutageError} of an upstream judged down, or on the last attempt (the step
 * shows what it waits for), until the job has waited longer than the outage horizon: then the
 * step is skipped with that reason.
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
    const classified = classifyJobError(error, job.signal, { last: attempt >= job.maxAttempts });
    const { kind } = classified;
    // Stopped because the video failed meanwhile: the failure already recorded the step as
    // cancelled, and the job ends as a skip rather than an error.
    if (job.signal?.aborted && job.signal.reason instanceof JobAbandonedError) return { skipped: job.signal.reason.message };
    // Shutting down, cancelled, the database away, a lost lock or a pause of our own limiter: nothing to record here.
    const unavailable = upstreamAway(classified);
    const passOn = kind === 'worker-closing' || kind === 'cancelled' || kind === 'dependency-outage' || kind === 'lock-lost';
    if (passOn || (kind === 'rate-limited' && !unavailable)) throw error;
    if (unavailable) {
      const giveUp = await waitForUpstream(step, job, videos, unavailable);
      if (giveUp === undefined) throw error;
      await videos.setStep(videoId, step, 'skipped', { reason: giveUp, attempts: attempt });
      return { skipped: giveUp };
    }
    // Anything else takes the normal path to a final state.
    const message = coerceError(error).message;
    const final = kind === 'permanent' || attempt >= job.maxAttempts;
    await videos.setStep(videoId, step, final ? 'failed' : 'active', {
      reason: final ? `${step}: ${message}` : `attempt ${attempt} failed: ${message}`,
      attempts: attempt,
    });
    throw error;
  }
}
