import type { AnalysisRepository, LocalStorage, VideosRepository } from '@clipline/shared';
import { interestProfilesKey, readInterestProfiles, type InterestSlice } from './interest-store.js';

/** What rendering needs to know of a source before it starts. */
export interface SourceFacts {
  durationSeconds: number;
  /** Display-oriented picture size (a rotated source's sides swapped), as analysis probed it. */
  width: number;
  height: number;
  hasAudio: boolean;
}

/** One frame analysis sampled, as far as rendering uses it. */
export interface AnalysedFrame {
  /** Seconds into the source. */
  timeSeconds: number;
  sharpness: number;
  /** Change from the sampled frame before it (shot changes score high). */
  contentScore: number;
}

/**
 * What analysis already measured of a source, handed to `renderClip` so it neither probes the
 * source again nor measures sharpness and shot changes of the frames it samples.
 */
export interface SourceAnalysis {
  facts: SourceFacts;
  /** Analysis's sampled frames over the clip, in order; absent when they do not cover it. */
  frames?: { fps: number; list: AnalysedFrame[] };
  /**
   * The interest profiles analysis kept of those very frames (one each, in the same order);
   * absent when there are none (an older analysis, or one not kept in storage).
   */
  interest?: InterestSlice;
}

export interface StoredAnalysisStores {
  videos?: Partial<Pick<VideosRepository, 'find'>>;
  analyses: Pick<AnalysisRepository, 'listFrameMetrics'>;
  /** Where analysis kept the interest profiles; absent, they are not read. */
  storage?: Pick<LocalStorage, 'pathOf'>;
}

/**
 * The stored analysis of a video over a clip, or undefined when there is none (the video was
 * not analysed by this pipeline, or its metadata is not saved yet). Frame metrics are used only
 * when they cover the whole clip at the expected rate, so a partial or differently sampled
 * analysis falls back to measuring the frames while rendering.
 */
export async function storedAnalysis(
  stores: StoredAnalysisStores,
  videoId: string,
  span: { startSeconds: number; endSeconds: number },
  analysisFps: number | undefined,
): Promise<SourceAnalysis | undefined> {
  const metadata = (await stores.videos?.find?.(videoId))?.metadata;
  if (!metadata) return undefined;
  const facts: SourceFacts = { durationSeconds: metadata.durationSeconds, width: metadata.width, height: metadata.height, hasAudio: metadata.hasAudio };
  if (!analysisFps || analysisFps <= 0) return { facts };
  const fromIndex = Math.max(0, Math.floor(span.startSeconds * analysisFps) - 1);
  const limit = Math.ceil((span.endSeconds - span.startSeconds) * analysisFps) + 4;
  const rows = await stores.analyses.listFrameMetrics(videoId, fromIndex, limit);
  const step = 1 / analysisFps;
  const inSpan = rows.filter((row) => row.timeSeconds >= span.startSeconds - step / 2 && row.timeSeconds < span.endSeconds);
  const list = inSpan.map((row) => ({ timeSeconds: row.timeSeconds, sharpness: row.sharpness, contentScore: row.contentScore }));
  // Fewer rows than asked for: the stored frames end inside the window, so nothing was sampled
  // after the last of them (a clip running to the very end of the video).
  const sampledToEnd = rows.length < limit;
  if (!coversSpan(list, span, step, sampledToEnd)) return { facts };
  const interest = await storedInterest(stores, videoId, inSpan[0]!.frameIndex, list.length, analysisFps);
  return { facts, frames: { fps: analysisFps, list }, ...(interest ? { interest } : {}) };
}

/** The kept profiles of `count` frames from `firstIndex`, when there are and they were sampled at `fps`. */
async function storedInterest(
  stores: StoredAnalysisStores,
  videoId: string,
  firstIndex: number,
  count: number,
  fps: number,
): Promise<InterestSlice | undefined> {
  if (!stores.storage) return undefined;
  const slice = await readInterestProfiles(stores.storage.pathOf(interestProfilesKey(videoId)), firstIndex, count);
  return slice && Math.abs(slice.fps - fps) < 1e-3 ? slice : undefined;
}

/**
 * True when the frames start and end within a sample or two of the span and none is missing.
 * With `sampledToEnd` (no frame was sampled after the last one), a span reaching past the last
 * sampled frame is covered up to it: the video's last fraction of a second was never sampled,
 * and decoding the clip again would not tell the crop more.
 */
function coversSpan(frames: readonly AnalysedFrame[], span: { startSeconds: number; endSeconds: number }, step: number, sampledToEnd: boolean): boolean {
  const first = frames[0];
  const last = frames.at(-1);
  if (!first || !last) return false;
  const end = sampledToEnd ? Math.min(span.endSeconds, last.timeSeconds + step) : span.endSeconds;
  const expected = Math.floor((end - span.startSeconds) / step);
  return first.timeSeconds <= span.startSeconds + step && last.timeSeconds >= end - 2 * step && frames.length >= expected - 1;
}
