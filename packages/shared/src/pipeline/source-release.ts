import type { VideosRepository } from '../db/videos-repository.js';
import type { JobQueues } from '../jobs/job-queues.js';
import { storageQueue } from '../queues/storage.js';
import { videoSideJobId } from './video-flow.js';
import type { StorageLedger } from '../storage-ledger.js';
import type { LocalStorage } from '../storage.js';

/**
 * When a video's source goes. Nothing reads it once the video has finished: the pipeline parent
 * completes a video only after every render and the transcript are done; a failed or cancelled
 * video never runs another step (every step checks the status first, and a finished video never
 * changes status again, so there is no retry of a failed video to keep it for). Analysis reuse
 * copies rows of an earlier analysis by content hash and needs only the new video's own source.
 * KEEP_SOURCES=true keeps sources, for operators who re-render by hand.
 */
export interface SourceReleaseDependencies {
  videos: VideosRepository;
  storage: LocalStorage;
  ledger: StorageLedger;
}

/** Enqueues the removal of a finished video's source; the job id makes a repeat a no-op. */
export async function enqueueSourceRelease(jobs: JobQueues, videoId: string): Promise<void> {
  await jobs.add(storageQueue, 'release-source', { videoId }, { jobId: videoSideJobId(videoId, 'release-source') });
}

/**
 * Removes the source of a finished video: the row forgets the key first, then the file goes, so
 * no reader is sent to a missing file (a crash in between leaves an unnamed file that retention
 * removes with the video's directory). Unfinished videos and released sources are left alone.
 */
export async function releaseVideoSource(deps: SourceReleaseDependencies, videoId: string): Promise<{ released: string | null; bytes: number }> {
  const key = await deps.videos.releaseSource(videoId);
  if (!key) return { released: null, bytes: 0 };
  const bytes = await deps.storage.sizeOf(key);
  await deps.storage.remove(key);
  await deps.ledger.addBytes(-bytes);
  return { released: key, bytes };
}
