import type { VideosRepository } from '../db/videos-repository.js';
import { isDependencyOutage, isWorkerClosing, JobCancelledError, PermanentJobError } from '../errors.js';

/** What an optional step's work returns: done, or skipped with the reason users will read. */
export type OptionalStepOutcome<R> = { done: R; note?: string } | { skipped: string };

interface OptionalStepJob {
  data: { videoId: string };
  attemptsMade: number;
  maxAttempts: number;
  signal?: AbortSignal;
}

/**
 * Runs a step that enriches a video without being essential to it (transcript, captions,
 * generated thumbnail, voice-over): it is recorded as completed, skipped (with the reason, e.g.
 * no API key configured) or failed, but it never fails the video. Errors that carry
 * `retryAfterMs` (an upstream rate limit) pass through untouched: the job comes back later
 * without that counting as an attempt.
 */
export async function runOptionalStep<R>(
  step: string,
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
    // Shutting down, cancelled, or the database away: nothing to record here.
    if (isWorkerClosing(error, job.signal) || job.signal?.reason instanceof JobCancelledError || isDependencyOutage(error)) throw error;
    // Only a real rate-limit pause comes back without spending an attempt (the worker pauses the
    // queue); anything else, an open breaker included, takes the normal path to a final state.
    const retryAfter = (error as { retryAfterMs?: unknown }).retryAfterMs;
    if ((error as Error).name === 'ProviderRateLimitedError' && typeof retryAfter === 'number' && retryAfter > 0) throw error;
    const message = (error as Error).message ?? String(error);
    const final = error instanceof PermanentJobError || attempt >= job.maxAttempts;
    await videos.setStep(videoId, step, final ? 'failed' : 'active', {
      reason: final ? `${step}: ${message}` : `attempt ${attempt} failed: ${message}`,
      attempts: attempt,
    });
    throw error;
  }
}
