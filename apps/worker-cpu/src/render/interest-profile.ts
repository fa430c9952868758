/**
 * Where the interesting part of each frame is, as seen along each axis. Pure functions over
 * packed RGB24 frames; they run in the pool (see `pool-tasks.ts`) and directly in unit tests.
 */
import { batchMetrics, lumaPlane, type FrameBatch } from '../analysis/frame-metrics.js';

export interface FrameInterest {
  /** Interest summed down each column, one value a column, normalised by the frame height. */
  columns: Float32Array;
  /** Interest summed across each row, one value a row, normalised by the frame width. */
  rows: Float32Array;
  sharpness: number;
  contentScore: number;
}

/**
 * Moving things draw the eye more than still detail: a pixel's interest is its local contrast
 * (luma gradient) plus this many times its change from the previous frame.
 */
export const MOTION_WEIGHT = 4;

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
  const { width, height, count, frames } = batch;
  const pixels = width * height;
  const metrics = batch.profilesOnly ? null : batchMetrics(batch);
  let previousLuma = batch.previous ? lumaPlane(batch.previous, pixels) : null;
  const results: FrameInterest[] = [];
  for (let f = 0; f < count; f++) {
    const luma = lumaPlane(frames.subarray(f * pixels * 3, (f + 1) * pixels * 3), pixels);
    const columns = new Float32Array(width);
    const rows = new Float32Array(height);
    for (let y = 0; y < height; y++) {
      const row = y * width;
      const up = y > 0 ? row - width : row;
      const down = y < height - 1 ? row + width : row;
      let rowSum = 0;
      for (let x = 0; x < width; x++) {
        const i = row + x;
        const left = x > 0 ? i - 1 : i;
        const right = x < width - 1 ? i + 1 : i;
        const gradient = Math.abs(luma[right]! - luma[left]!) + Math.abs(luma[down + x]! - luma[up + x]!);
        const change = previousLuma ? Math.abs(luma[i]! - previousLuma[i]!) : 0;
        const interest = gradient + MOTION_WEIGHT * change;
        columns[x]! += interest;
        rowSum += interest;
      }
      rows[y] = rowSum / width;
    }
    for (let x = 0; x < width; x++) columns[x]! /= height;
    const frameMetrics = metrics?.[f];
    results.push({ columns, rows, sharpness: frameMetrics?.sharpness ?? 0, contentScore: frameMetrics?.contentScore ?? 0 });
    previousLuma = luma;
  }
  return results;
}
