/**
 * What a job's failure means for its video, handed to the generic worker runtime as its
 * {@link JobPolicy}: a database outage waits without spending attempts, a cancelled video stops
 * its running jobs, a failed video its running optional ones, and an essential job that failed for
 * good fails its video.
 */
import type { VideosRepository } from '../db/videos-repository.js';
import type { CancellationSource, FinalFailure, JobPolicy } from '../jobs/worker-runtime.js';
import { withRetries } from '../retries.js';
import { essentialStepOfJob, isOptionalStepJob, optionalStepOfJob } from './video-flow.js';

/** How long a job waits before running again when a dependency is unreachable. */
const OUTAGE_RETRY_MS = 2000;

/**
 * Settling a final failure writes to the database, which may be the very thing that failed: it
 * is tried for a few minutes (about 12 tries, backing off to 30 s); the reconciler catches what
 * is still unsettled after that, or after a crash.
 */
const SETTLE_ATTEMPTS = 12;
const SETTLE_FIRST_DELAY_MS = 1000;
const SETTLE_MAX_DELAY_MS = 30_000;
const settling = (attempts: number) => ({ attempts, firstDelayMs: SETTLE_FIRST_DELAY_MS, maxDelayMs: SETTLE_MAX_DELAY_MS });

const videoIdOf = (data: unknown): string | undefined => {
  const videoId = (data as { videoId?: unknown } | null)?.videoId;
  return typeof videoId === 'string' ? videoId : undefined;
};

/**
 * An essential job that failed for good, however it failed (including a worker dying on it until
 * the stall check gave up), fails its video with the reason. A video that already finished
 * (failed by its step, cancelled) is left as it is. An optional job's step is failed when its job
 * could not settle it (the stall check failed the job without running it): the video goes on
 * without it, and the step no longer shows as running. Unrelated jobs are ignored.
 */
export function failVideoOnFinalFailure(videos: VideosRepository, attempts = SETTLE_ATTEMPTS) {
  return async ({ queue, name, data, reason }: FinalFailure): Promise<void> => {
    const videoId = videoIdOf(data);
    const optional = optionalStepOfJob(queue, name);
    if (optional && videoId) return withRetries(() => videos.failUnsettledStep(videoId, optional, `${optional}: ${reason}`), settling(attempts));
    const step = essentialStepOfJob(queue, name);
    if (!step || !videoId) return;
    const stepReason = reason.startsWith(`${step}:`) ? reason : `${step}: ${reason}`;
    await withRetries(() => videos.failVideo(videoId, step, stepReason), settling(attempts));
  };
}

/** The policy every worker of a video-processing process runs with. */
export function videoJobPolicy(videos: VideosRepository, cancellations: CancellationSource): JobPolicy {
  return {
    outageRetryMs: OUTAGE_RETRY_MS,
    cancellations,
    cancellationKey: videoIdOf,
    abandonable: isOptionalStepJob,
    onFinalFailure: failVideoOnFinalFailure(videos),
  };
}
