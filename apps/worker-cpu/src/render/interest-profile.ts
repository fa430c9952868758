/**
 * Where the interesting part of each frame is, as seen along each axis. Pure functions over
 * packed RGB24 frames; they run in the pool (see `pool-tasks.ts`) and directly in unit tests.
 */
import { MOTION_WEIGHT, measureBatch, type FrameBatch } from '../analysis/frame-metrics.js';

export interface FrameInterest {
  /** Interest summed down each column, one value a column, normalised by the frame height. */
  columns: Float32Array;
  /** Interest summed across each row, one value a row, normalised by the frame width. */
  rows: Float32Array;
  sharpness: number;
  contentScore: number;
}

export { MOTION_WEIGHT };

/** A batch of frames to profile; `profilesOnly` skips the sharpness and content score (0 each). */
export interface InterestBatch extends FrameBatch {
  /** Set when analysis already measured sharpness and shot changes: only the profiles are needed. */
  profilesOnly?: boolean;
}

/**
 * Interest profiles of every frame in a batch, plus the sharpness (for the thumbnail) and
 * content score (for shot changes) of each unless `profilesOnly`. The first frame's motion is
 * measured against `previous` when given.
 */
export function interestProfiles(batch: InterestBatch): FrameInterest[] {
  const { metrics, profiles } = measureBatch(batch, { metrics: !batch.profilesOnly, profiles: true });
  return profiles.map((profile, f) => ({ ...profile, sharpness: metrics[f]?.sharpness ?? 0, contentScore: metrics[f]?.contentScore ?? 0 }));
}
