import {
  clipStorageKeys,
  classifyJobError,
  PermanentJobError,
  reasonOf,
  type AiResultsRepository,
  type AnalysisRepository,
  type ClipRecord,
  type JobHandle,
  type LocalStorage,
  type Processors,
  type RenderClipPayload,
  type RenderClipResult,
  type renderQueue,
  type VideosRepository,
} from '@clipline/shared';
import { type CaptionWord, wordsToBurn } from './burned-captions.js';
import { renderClip, type RenderSettings } from './render-clip.js';
import { storedAnalysis } from './stored-analysis.js';

export interface RenderDependencies {
  settings: RenderSettings;
  analyses: AnalysisRepository;
  storage: LocalStorage;
  /**
   * When given, a clip of a cancelled or failed video is not rendered; with `find`, the source's
   * facts are read from its saved metadata instead of probing it again.
   */
  videos?: Pick<VideosRepository, 'status'> & Partial<Pick<VideosRepository, 'find'>>;
  /**
   * Frames per second analysis sampled (ANALYZE_FPS): with it, the frame metrics analysis stored
   * give each clip its sharpest frame and shot changes, so rendering measures only where the
   * interest lies in the frames it samples.
   */
  analysisFps?: number;
  /** Where burned captions read the transcript's words. */
  results?: Pick<AiResultsRepository, 'transcript'>;
}

/**
 * The words to burn into a clip ({@link wordsToBurn}); empty without a transcript.
 */
async function captionWords(deps: RenderDependencies, videoId: string): Promise<CaptionWord[]> {
  const transcript = await deps.results?.transcript(videoId);
  return transcript ? wordsToBurn(transcript.segments) : [];
}

export function renderProcessors(deps: RenderDependencies): Processors<typeof renderQueue> {
  return { 'render-clip': (job) => renderClipJob(deps, job) };
}

/** The key of the video's stored source; a permanent failure naming why when there is none. */
async function storedSourceKey(analyses: AnalysisRepository, videoId: string, status: string | undefined): Promise<string> {
  const sourceKey = await analyses.findSourceKey(videoId);
  if (sourceKey === undefined) throw new PermanentJobError(`video ${videoId} does not exist`);
  if (sourceKey === null) {
    // A finished video's source is released (unless KEEP_SOURCES), so a render retried by hand
    // afterwards says why rather than blaming ingest.
    throw new PermanentJobError(
      status === 'completed'
        ? `video ${videoId} finished and its source was removed; set KEEP_SOURCES=true to keep sources for later renders`
        : `video ${videoId} has no stored source yet (ingest has not finished)`,
    );
  }
  return sourceKey;
}

/** Seconds within which a stored span is the payload's: PostgreSQL keeps them as 4-byte reals. */
const SPAN_TOLERANCE_SECONDS = 0.01;

/**
 * The clip as already rendered for this very payload (the same span and aspect, both files
 * stored), or undefined. A render that runs again (a second delivery of a finished job, whose
 * worker died before BullMQ heard it finished, or a job retried by hand) keeps it shown while it
 * runs and keeps it if it fails; with the source released it cannot run, and answers it as it is.
 */
async function alreadyRendered(deps: RenderDependencies, clip: RenderClipPayload): Promise<RenderClipResult | undefined> {
  const row = (await deps.analyses.listClips(clip.videoId)).find((candidate) => candidate.clipIndex === clip.clipIndex);
  if (row?.status !== 'rendered' || !row.storageKey || !row.thumbnailKey || row.aspect !== clip.aspect) return undefined;
  if (Math.abs(row.startSeconds - clip.startSeconds) > SPAN_TOLERANCE_SECONDS || Math.abs(row.endSeconds - clip.endSeconds) > SPAN_TOLERANCE_SECONDS)
    return undefined;
  const stored = await Promise.all(
    [row.storageKey, row.thumbnailKey].map((key) =>
      deps.storage.sizeOf(key).then(
        (size) => size > 0,
        () => false,
      ),
    ),
  );
  if (!stored.every(Boolean)) return undefined;
  return {
    clipId: row.id,
    storageKey: row.storageKey,
    thumbnailKey: row.thumbnailKey,
    width: row.width ?? 0,
    height: row.height ?? 0,
    durationSeconds: row.durationSeconds ?? clip.endSeconds - clip.startSeconds,
  };
}

/**
 * Renders one clip of a video into storage (`videos/<id>/clips/<n>.mp4` and `.jpg`) and records
 * its `clips` row. The row is keyed by (video, clip index) and the files are replaced whole, so
 * a retry or a second delivery leaves one clip; a clip already rendered for the same payload
 * stays shown meanwhile ({@link alreadyRendered}). A final failure is recorded on the row, unless
 * the clip stands rendered (before this run, or by another delivery meanwhile).
 */
async function renderClipJob(deps: RenderDependencies, job: JobHandle<RenderClipPayload>): Promise<RenderClipResult> {
  const { analyses, storage } = deps;
  const clip = job.data;
  const chosen = {
    videoId: clip.videoId,
    clipIndex: clip.clipIndex,
    startSeconds: clip.startSeconds,
    endSeconds: clip.endSeconds,
    score: clip.score,
    reasons: clip.reasons,
    aspect: clip.aspect,
  };
  const status = await deps.videos?.status(clip.videoId);
  if (status === 'cancelled' || status === 'failed') throw new PermanentJobError(`video ${clip.videoId} is ${status}; clip ${clip.clipIndex} not rendered`);
  const existing = await alreadyRendered(deps, clip);
  if (existing && (await analyses.findSourceKey(clip.videoId)) === null) {
    job.logger.info({ clipId: existing.clipId }, 'clip already rendered and the source released: kept as it is');
    return existing;
  }
  try {
    const sourceKey = await storedSourceKey(analyses, clip.videoId, status);
    // A first render shows the clip pending; one rendered before stays shown until replaced.
    if (!existing) await analyses.upsertClip({ ...chosen, status: 'pending' });
    const keys = clipStorageKeys(clip.videoId, clip.clipIndex);
    const captions = clip.captions === 'burned' ? await captionWords(deps, clip.videoId) : [];
    if (clip.captions === 'burned' && captions.length === 0) job.logger.warn({ videoId: clip.videoId }, 'captions asked for, but the video has no transcript');
    const analysis = await storedAnalysis({ videos: deps.videos, analyses, storage }, clip.videoId, clip, deps.analysisFps);
    const rendered = await renderClip(
      deps.settings,
      {
        source: storage.pathOf(sourceKey),
        analysis,
        startSeconds: clip.startSeconds,
        endSeconds: clip.endSeconds,
        aspect: clip.aspect,
        videoFile: await storage.prepare(keys.video),
        thumbnailFile: await storage.prepare(keys.thumbnail),
        captions,
      },
      { signal: job.signal, onProgress: (fraction) => job.updateProgress(fraction * 100) },
    );
    const row = await analyses.upsertClip({
      ...chosen,
      status: 'rendered',
      storageKey: keys.video,
      thumbnailKey: keys.thumbnail,
      width: rendered.width,
      height: rendered.height,
      durationSeconds: rendered.durationSeconds,
    });
    job.logger.info({ clipId: row.id, durationSeconds: rendered.durationSeconds, crop: `${rendered.crop.width}x${rendered.crop.height}` }, 'clip rendered');
    return {
      clipId: row.id,
      storageKey: keys.video,
      thumbnailKey: keys.thumbnail,
      width: rendered.width,
      height: rendered.height,
      durationSeconds: rendered.durationSeconds,
    };
  } catch (error) {
    await recordFailure(deps, job, chosen, error);
    throw error;
  }
}

/**
 * Only a failure that ends the job marks the clip failed: an outage or a shutdown hands the job
 * back without spending the attempt, so its next run may still succeed. A cancellation ends it
 * for good, and says why. A clip another delivery rendered meanwhile is left as it is.
 */
async function recordFailure(
  deps: RenderDependencies,
  job: JobHandle<RenderClipPayload>,
  chosen: Omit<ClipRecord, 'status' | 'error'>,
  error: unknown,
): Promise<void> {
  const verdict = classifyJobError(error, job.signal);
  const final = verdict.kind === 'permanent' || verdict.kind === 'cancelled' || (verdict.kind === 'transient' && job.attemptsMade + 1 >= job.maxAttempts);
  if (!final || (await alreadyRendered(deps, job.data).catch(() => undefined))) return;
  await deps.analyses.failClip(chosen, verdict.kind === 'cancelled' ? verdict.reason : reasonOf(error)).catch(() => {});
}
