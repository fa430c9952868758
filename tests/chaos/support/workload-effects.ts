/**
 * What a chaos run over many jobs left behind, tallied so one expectation can demand each effect
 * exactly once: webhooks as the database recorded them and as a receiver got them, public jobs as
 * rows, queue jobs and stored metadata, and the clip files on disk.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Queue } from 'bullmq';
import { WEBHOOK_ID_HEADER, type Db } from '@clipline/shared';
import type { ReceivedWebhook } from './webhook-receiver.js';

export interface WebhookTally {
  /** Delivery rows of the videos, and how many of them are `delivered`. */
  rows: number;
  delivered: number;
  /** Videos with other than one delivery row. */
  videosWithoutOneRow: string[];
  /** POSTs the receiver got, the distinct ids among them, and the repeats of an id already seen. */
  received: number;
  distinctIds: number;
  repeatedIds: number;
  /** Ids received that no delivery row has, and delivered rows whose id never arrived. */
  unknownIds: string[];
  missingIds: string[];
  /** Videos announced under more than one id: a receiver could not tell those apart from two events. */
  videosUnderTwoIds: string[];
}

export async function webhookTally(db: Db, videoIds: readonly string[], received: readonly ReceivedWebhook[]): Promise<WebhookTally> {
  // A video ends once, completed or failed: either way one event, one delivery row.
  const rows = await db.selectFrom('webhook_deliveries').select(['id', 'video_id', 'state']).execute();
  const rowsPerVideo = new Map<string, number>();
  for (const row of rows) rowsPerVideo.set(row.video_id, (rowsPerVideo.get(row.video_id) ?? 0) + 1);
  const rowIds = new Set(rows.map((row) => row.id));
  const idsPerVideo = new Map<string, Set<string>>();
  const seen = new Set<string>();
  for (const hit of received) {
    const id = String(hit.headers[WEBHOOK_ID_HEADER]);
    seen.add(id);
    const videoId = (JSON.parse(hit.body) as { video?: { id?: string } }).video?.id ?? '?';
    idsPerVideo.set(videoId, (idsPerVideo.get(videoId) ?? new Set()).add(id));
  }
  return {
    rows: rows.length,
    delivered: rows.filter((row) => row.state === 'delivered').length,
    videosWithoutOneRow: videoIds.filter((id) => rowsPerVideo.get(id) !== 1),
    received: received.length,
    distinctIds: seen.size,
    repeatedIds: received.length - seen.size,
    unknownIds: [...seen].filter((id) => !rowIds.has(id)),
    missingIds: rows.filter((row) => row.state === 'delivered' && !seen.has(row.id)).map((row) => row.id),
    videosUnderTwoIds: [...idsPerVideo].filter(([, ids]) => ids.size > 1).map(([videoId]) => videoId),
  };
}

export interface PublicJobTally {
  accepted: number;
  /** `public_jobs` rows, and whether their ids are exactly the accepted ones (no loss, no duplicate). */
  rows: number;
  rowsAreTheAccepted: boolean;
  /** Accepted jobs completed in the queue with a fetch (not skipped), and the others with their state. */
  completedWithFetch: number;
  unfinished: { id: string; state: string; reason: string | undefined }[];
  /** Linked videos with stored metadata of their own YouTube id, fetched after the last request for them. */
  videosWithFreshMetadata: number;
  videosWithoutFreshMetadata: string[];
}

export interface PublicJobRequest {
  id: string;
  videoId: string;
  sentAt: number;
}

/** Metadata must have been saved after the last request was sent; the database clock may round. */
const CLOCK_TOLERANCE_MS = 1000;

export async function publicJobTally(
  db: Db,
  queue: Queue,
  requests: readonly PublicJobRequest[],
  youtubeIds: ReadonlyMap<string, string>,
): Promise<PublicJobTally> {
  const rows = await db.selectFrom('public_jobs').select('id').execute();
  const accepted = requests.map((request) => request.id).sort();
  const stored = rows.map((row) => row.id).sort();
  const jobs = await Promise.all(requests.map((request) => queue.getJob(request.id)));
  const states = await Promise.all(jobs.map((job) => (job ? job.getState() : Promise.resolve('missing'))));
  const unfinished = requests.flatMap((request, index) =>
    states[index] === 'completed' && jobs[index]?.returnvalue?.skipped === undefined
      ? []
      : [{ id: request.id, state: states[index]!, reason: jobs[index]?.failedReason ?? jobs[index]?.returnvalue?.skipped }],
  );
  const lastRequest = new Map<string, number>();
  for (const request of requests) lastRequest.set(request.videoId, Math.max(lastRequest.get(request.videoId) ?? 0, request.sentAt));
  const metadata = await db.selectFrom('external_metadata').select(['video_id', 'external_id', 'fetched_at']).execute();
  const fresh = new Set(
    metadata
      .filter((row) => row.external_id === youtubeIds.get(row.video_id))
      .filter((row) => new Date(row.fetched_at).getTime() >= (lastRequest.get(row.video_id) ?? 0) - CLOCK_TOLERANCE_MS)
      .map((row) => row.video_id),
  );
  return {
    accepted: accepted.length,
    rows: stored.length,
    rowsAreTheAccepted: JSON.stringify(stored) === JSON.stringify(accepted),
    completedWithFetch: requests.length - unfinished.length,
    unfinished: unfinished.slice(0, 10),
    videosWithFreshMetadata: fresh.size,
    videosWithoutFreshMetadata: [...youtubeIds.keys()].filter((videoId) => !fresh.has(videoId)),
  };
}

/** Per video, the clip files on disk that no `rendered` clip row names (leftovers, duplicates) and the named ones missing. */
export async function clipFileTally(db: Db, storageDir: string, videoIds: readonly string[]): Promise<{ files: number; stray: string[]; missing: string[] }> {
  const clips = await db.selectFrom('clips').select(['video_id', 'storage_key', 'thumbnail_key']).where('status', '=', 'rendered').execute();
  const expected = new Set(clips.flatMap((clip) => [clip.storage_key, clip.thumbnail_key]).filter((key): key is string => key !== null));
  const found = new Set<string>();
  for (const videoId of videoIds) {
    const dir = `videos/${videoId}/clips`;
    const names = await readdir(path.join(storageDir, dir)).catch(() => [] as string[]);
    for (const name of names) found.add(`${dir}/${name}`);
  }
  return { files: found.size, stray: [...found].filter((key) => !expected.has(key)), missing: [...expected].filter((key) => !found.has(key)) };
}
