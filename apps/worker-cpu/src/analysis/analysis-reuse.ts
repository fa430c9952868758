import { copyFile, rename, rm } from 'node:fs/promises';
import {
  partFileFor,
  removeOtherParts,
  type AnalysisRepository,
  type AnalyzeResult,
  type ClipOptions,
  type LocalStorage,
  type VideoAnalysis,
} from '@clipline/shared';
import { InterestProfileWriter, interestProfilesKey } from '../render/interest-store.js';
import { analyzeVideo, resolveClipOptions, type AnalysisSettings } from './analyze-video.js';
import { FrameMetricsWriter } from './frame-metrics-writer.js';

/**
 * Version of what analysis produces. Raise it when sampling, metrics or scoring change, so
 * results made the old way are no longer reused.
 */
export const ANALYSIS_VERSION = 3;

/** Share of a step's progress the content hash takes (it reads the whole file once). */
const HASH_SHARE = 0.03;

export interface StoredAnalysisRequest {
  videoId: string;
  file: string;
  sizeBytes: number;
  clipOptions?: Partial<ClipOptions>;
  /**
   * Where the video's files are: analysis keeps the frames' interest profiles there (see
   * `render/interest-store.ts`) for rendering's moving crop. Absent, none are kept and rendering
   * samples the clip's frames itself.
   */
  storage?: Pick<LocalStorage, 'prepare' | 'pathOf'>;
}

export interface StoredAnalysisHooks {
  signal?: AbortSignal;
  /** Called with the share done, 0..1. */
  onProgress?: (fraction: number) => void | Promise<void>;
}

/** Everything a result depends on besides the bytes; two analyses with equal fingerprints agree. */
export function analysisFingerprint(settings: AnalysisSettings, clipOptions: ClipOptions): string {
  return JSON.stringify({
    version: ANALYSIS_VERSION,
    fps: settings.fps,
    width: settings.width,
    cutThreshold: settings.cutThreshold ?? null,
    clipCount: clipOptions.clipCount,
    minClipSeconds: clipOptions.minClipSeconds,
    maxClipSeconds: clipOptions.maxClipSeconds,
    aspect: clipOptions.aspect,
  });
}

/**
 * Analyses a stored source, or reuses a finished analysis of the same bytes. The SHA-256 is
 * computed in the pool (the file is read inside a thread) and stored on the video. When another
 * video with that hash was analysed with the same settings, its result and rows (frame metrics,
 * loudness) are copied instead of decoding again; otherwise the video is analysed with its
 * frame metrics and loudness written as they come. Either way the finished analysis is recorded,
 * and every write is an upsert, so a retry leaves the same rows.
 */
export async function analyzeWithReuse(
  settings: AnalysisSettings,
  analyses: AnalysisRepository,
  request: StoredAnalysisRequest,
  hooks: StoredAnalysisHooks = {},
): Promise<AnalyzeResult> {
  const { videoId } = request;
  const { signal } = hooks;
  const clipOptions = resolveClipOptions(request.clipOptions);
  const contentSha256 = await settings.pool.sha256File(request.file, signal);
  await analyses.setContentHash(videoId, contentSha256);
  await hooks.onProgress?.(HASH_SHARE);
  const fingerprint = analysisFingerprint(settings, clipOptions);

  const earlier = await analyses.findCompletedAnalysisByHash<VideoAnalysis>(contentSha256, fingerprint, videoId);
  // An earlier video purged between finding and copying leaves nothing to copy: analysed afresh.
  if (earlier && ((await analyses.copyAnalysisRows(earlier.videoId, videoId)) > 0 || earlier.result.sampledFrames === 0)) {
    if (request.storage) await copyInterestProfiles(request.storage, earlier.videoId, videoId);
    // Options outside the fingerprint (captions) are this video's own.
    const result: VideoAnalysis = { ...earlier.result, clipOptions, metadata: { ...earlier.result.metadata, sizeBytes: request.sizeBytes } };
    await analyses.saveCompletedAnalysis(videoId, contentSha256, fingerprint, result);
    return { ...result, contentSha256, reusedFrom: earlier.videoId };
  }

  const writer = new FrameMetricsWriter(analyses, videoId, settings.fps);
  const profilesFile = request.storage ? await request.storage.prepare(interestProfilesKey(videoId)) : undefined;
  if (profilesFile) await removeOtherParts(profilesFile);
  const profiles = profilesFile ? new InterestProfileWriter(profilesFile, settings.fps, partFileFor(profilesFile)) : undefined;
  let result: VideoAnalysis;
  try {
    result = await analyzeVideo(
      settings,
      { file: request.file, sizeBytes: request.sizeBytes, clipOptions },
      {
        ...(signal ? { signal } : {}),
        onProgress: (fraction) => hooks.onProgress?.(HASH_SHARE + (1 - HASH_SHARE) * fraction),
        onFrameMetrics: (firstIndex, metrics) => writer.add(firstIndex, metrics),
        onLoudness: (track) => analyses.saveAudioLoudness(videoId, track),
        ...(profiles ? { onInterestProfiles: (firstIndex, batch) => profiles.add(firstIndex, batch) } : {}),
      },
    );
    // Finishing writes too (the last metrics, the profiles' header): a failure there is abandoned alike.
    await writer.finish();
    await profiles?.finish();
  } catch (error) {
    await Promise.all([writer.abandon(), profiles?.abandon()]);
    throw error;
  }
  await analyses.saveCompletedAnalysis(videoId, contentSha256, fingerprint, result);
  return { ...result, contentSha256, reusedFrom: null };
}

/**
 * Gives a reusing video its own copy of the earlier video's interest profiles, as its rows are
 * copied: every video owns the files in its folder, so purging one never takes another's. An
 * earlier analysis without them (or purged meanwhile) leaves none, and rendering samples frames.
 */
async function copyInterestProfiles(storage: Pick<LocalStorage, 'prepare' | 'pathOf'>, fromVideoId: string, toVideoId: string): Promise<void> {
  const target = await storage.prepare(interestProfilesKey(toVideoId));
  await removeOtherParts(target);
  const part = partFileFor(target);
  try {
    await copyFile(storage.pathOf(interestProfilesKey(fromVideoId)), part);
    await rename(part, target);
  } catch (error) {
    await rm(part, { force: true });
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await rm(target, { force: true });
  }
}
