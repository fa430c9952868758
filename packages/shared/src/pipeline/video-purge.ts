import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { VideosRepository } from '../db/videos-repository.js';
import type { VideoStatus } from '../db/schema.js';
import type { JobQueues } from '../jobs/job-queues.js';
import { parentFlowStep, videoSideJobId } from './video-flow.js';
import { storageQueue } from '../queues/storage.js';
import { syncQueue } from '../queues/sync.js';
import type { StorageLedger } from '../storage-ledger.js';
import { videoStorageKey, type LocalStorage } from '../storage.js';
import { ANY_TENANT, type TenantScope } from '../tenancy.js';

export interface VideoPurgeDependencies {
  videos: VideosRepository;
  storage: LocalStorage;
  jobs: JobQueues;
  ledger: StorageLedger;
}

/** A purge asked of a video that is still queued or processing: cancel it first. */
export class VideoNotFinishedError extends Error {
  override name = 'VideoNotFinishedError';

  constructor(
    readonly videoId: string,
    readonly status: VideoStatus,
  ) {
    super(`video ${videoId} is ${status}: only a finished video (completed, failed or cancelled) can be purged; cancel it first`);
  }
}

export type PurgeOutcome = { outcome: 'purged'; bytesRemoved: number } | { outcome: 'not-found' };

const FINISHED: readonly VideoStatus[] = ['completed', 'failed', 'cancelled'];

/**
 * Removes a finished video for good: its jobs, its rows (the video and everything hanging off
 * it) and its files (`videos/<id>/`). A video that is not in `scope` is `not-found`; one that
 * has not finished is refused with a {@link VideoNotFinishedError}. Safe to repeat, and to run
 * while the retention job purges the same video.
 */
export async function purgeVideo(deps: VideoPurgeDependencies, videoId: string, scope: TenantScope = ANY_TENANT): Promise<PurgeOutcome> {
  const status = await deps.videos.status(videoId, scope);
  if (!status) return { outcome: 'not-found' };
  if (!FINISHED.includes(status)) throw new VideoNotFinishedError(videoId, status);
  const [purged] = await purgeFinishedVideos(deps, [videoId]);
  return purged ? { outcome: 'purged', bytesRemoved: purged.bytesRemoved } : { outcome: 'not-found' };
}

/**
 * Purges the finished videos among `videoIds`, in this order:
 * 1. the ids are noted in the ledger, the one record that files remain once the rows are gone;
 * 2. their jobs are removed, so none is retried (from Bull Board, say) into re-creating files or
 *    rows, and a new video may use the same ids;
 * 3. the rows go, in one transaction (foreign keys cascade; job events go with them);
 * 4. the files go, then the note.
 * Rows go before files because the opposite failure is the harmful one: a crash after the files
 * but before the rows would leave videos whose clips and downloads point at nothing. A crash here
 * leaves only unnamed files, which {@link finishInterruptedPurges} removes from the note.
 * Unfinished ids are left alone. The files of an id are removed, and counted, by the purge that
 * deleted its rows: of two purges of one video at once (the API's and the retention job's, or two
 * requests), one reports it and its bytes leave the ledger once. With `rowsGone: 'purge-files'`
 * (an interrupted purge, finished later) ids whose rows were already gone have their files
 * removed too.
 */
export async function purgeFinishedVideos(
  deps: VideoPurgeDependencies,
  videoIds: readonly string[],
  { rowsGone = 'skip' }: { rowsGone?: 'skip' | 'purge-files' } = {},
): Promise<{ videoId: string; bytesRemoved: number }[]> {
  if (videoIds.length === 0) return [];
  await deps.ledger.notePurges(videoIds);
  await Promise.all(videoIds.map((videoId) => removeVideoJobs(deps.jobs, videoId)));
  const deleted = new Set(await deps.videos.deleteFinished(videoIds));
  const purged: { videoId: string; bytesRemoved: number }[] = [];
  // Ids another purge deleted the rows of: their files, and the note that they remain, are its.
  const othersToFinish = new Set<string>();
  for (const videoId of videoIds) {
    if (!deleted.has(videoId)) {
      const rowsLeft = (await deps.videos.status(videoId)) !== undefined;
      if (!rowsLeft && rowsGone === 'skip') othersToFinish.add(videoId);
      if (rowsLeft || rowsGone === 'skip') continue;
    }
    const key = videoStorageKey(videoId);
    const bytesRemoved = await deps.storage.sizeOf(key);
    await deps.storage.remove(key);
    purged.push({ videoId, bytesRemoved });
  }
  // One ledger update for the batch; a crash before it is corrected by the next storage walk.
  await deps.ledger.addBytes(-purged.reduce((sum, item) => sum + item.bytesRemoved, 0));
  await deps.ledger.forgetPurges(videoIds.filter((videoId) => !othersToFinish.has(videoId)));
  return purged;
}

/**
 * The jobs a video's flow made: the pipeline parent with every step below it (ingest, analyze,
 * persist, renders, AI steps), its metadata refresh and its source release. Running ones keep
 * their lock and stay; they find no video and do nothing.
 */
async function removeVideoJobs(jobs: JobQueues, videoId: string): Promise<void> {
  const parent = parentFlowStep(videoId);
  await jobs.remove(parent.declaration, parent.jobId, { removeChildren: true });
  await jobs.remove(syncQueue, videoSideJobId(videoId, 'sync'));
  await jobs.remove(storageQueue, videoSideJobId(videoId, 'release-source'));
}

/** Finishes purges interrupted between their rows and their files (noted over a minute ago). */
export async function finishInterruptedPurges(deps: VideoPurgeDependencies, limit = 100): Promise<number> {
  const pending = await deps.ledger.unfinishedPurges(60_000, limit);
  return (await purgeFinishedVideos(deps, pending, { rowsGone: 'purge-files' })).length;
}

export interface RetentionSettings {
  /** Days after its finish that a video is purged. */
  retentionDays: number;
  /** Videos purged per batch. @defaultValue 50 */
  batchSize?: number;
  /** Batches per run; what is left waits for the next run. @defaultValue 20 */
  maxBatches?: number;
}

/** Purges videos finished more than `retentionDays` ago, oldest first, in bounded batches. */
export async function purgeExpiredVideos(deps: VideoPurgeDependencies, settings: RetentionSettings): Promise<{ purged: number; bytesRemoved: number }> {
  const batchSize = settings.batchSize ?? 50;
  let purged = 0;
  let bytesRemoved = 0;
  for (let batch = 0; batch < (settings.maxBatches ?? 20); batch++) {
    const expired = await deps.videos.finishedBefore(settings.retentionDays * 86_400, batchSize);
    if (expired.length === 0) break;
    const done = await purgeFinishedVideos(deps, expired);
    purged += done.length;
    bytesRemoved += done.reduce((sum, video) => sum + video.bytesRemoved, 0);
    if (expired.length < batchSize) break;
  }
  return { purged, bytesRemoved };
}

/** A video's folder name: its id. */
const VIDEO_FOLDER = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface OrphanSweepSettings {
  /** Seconds a folder must have been left unchanged before it may go. @defaultValue an hour */
  graceSeconds?: number;
  /** Folders looked at per run, taking up after the last run's: every folder is reached in turn. @defaultValue 5,000 */
  limit?: number;
  now?: number;
}

/** Where this process's last sweep stopped (by storage root): the next takes up after it. */
const sweepCursors = new Map<string, string>();

/**
 * Removes the folders of videos that no longer exist (`videos/<id>/` without a row): what a job
 * still running when its video was purged wrote afterwards (a generated thumbnail after a
 * Stability call, say), recreating the folder the purge had removed. A folder is only removed
 * when it has not changed for `graceSeconds`; rows are always written before their video's
 * first file, so a folder without a row that old is one nobody will ever name. Each run looks
 * at `limit` folders in name order from where the last one stopped, so a store of any size is
 * covered over successive runs. Answers the folders removed and their bytes.
 */
export async function removeOrphanedVideoFolders(
  deps: Pick<VideoPurgeDependencies, 'videos' | 'storage' | 'ledger'>,
  settings: OrphanSweepSettings = {},
): Promise<{ removed: number; bytesRemoved: number }> {
  const cutoff = (settings.now ?? Date.now()) - (settings.graceSeconds ?? 3600) * 1000;
  const root = deps.storage.pathOf('videos');
  const names = await readdir(root).then(
    (entries) => entries.filter((name) => VIDEO_FOLDER.test(name)).sort(),
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[];
      throw error;
    },
  );
  const after = sweepCursors.get(root) ?? '';
  const from = names.findIndex((name) => name > after);
  const ordered = from < 0 ? names : [...names.slice(from), ...names.slice(0, from)];
  const visited = ordered.slice(0, settings.limit ?? 5000);
  if (visited.length > 0) sweepCursors.set(root, visited.length === names.length ? '' : visited.at(-1)!);
  const candidates: string[] = [];
  for (const name of visited) {
    const changed = await stat(path.join(root, name)).then(
      (stats) => (stats.isDirectory() ? stats.mtimeMs : Number.POSITIVE_INFINITY),
      () => Number.POSITIVE_INFINITY,
    );
    if (changed < cutoff) candidates.push(name);
  }
  let removed = 0;
  let bytesRemoved = 0;
  for (let start = 0; start < candidates.length; start += 500) {
    const batch = candidates.slice(start, start + 500);
    const known = await deps.videos.existing(batch);
    for (const videoId of batch.filter((id) => !known.has(id))) {
      const key = videoStorageKey(videoId);
      bytesRemoved += await deps.storage.sizeOf(key);
      await deps.storage.remove(key);
      removed++;
    }
  }
  if (bytesRemoved > 0) await deps.ledger.addBytes(-bytesRemoved);
  return { removed, bytesRemoved };
}
