/**
 * The functions the piscina pool runs, one named export each (selected with the `name` run
 * option). This file is loaded inside worker threads only.
 */
import { batchMetrics, type FrameBatch, type FrameMetrics } from './frame-metrics.js';

export function frameMetrics(batch: FrameBatch): FrameMetrics[] {
  return batchMetrics(batch);
}
