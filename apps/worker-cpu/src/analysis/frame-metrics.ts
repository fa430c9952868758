/**
 * Per-frame metrics over packed RGB24 frames. Pure functions with no I/O: they run inside the
 * piscina pool threads (see `pool-tasks.ts`) and directly in unit tests.
 */

export interface FrameMetrics {
  /** Mean luma (BT.601), 0-255. */
  luma: number;
  /** Variance of the 4-neighbour Laplacian of luma: higher is sharper. */
  sharpness: number;
  /** Mean absolute luma difference to the previous frame, 0-255 (0 for the first frame). */
  motion: number;
  /**
   * Mean HSV change to the previous frame, averaged over hue, saturation and value, on OpenCV's
   * scale (H 0-179, S and V 0-255), as PySceneDetect's content detector scores frames.
   */
  contentScore: number;
  /** 64-bit difference hash (dHash) of the frame, as 16 hex digits. */
  dhash: string;
  /** 16-bin luma histogram, normalised to sum to 1. */
  histogram: number[];
}

export interface FrameGeometry {
  width: number;
  height: number;
}

const HISTOGRAM_BINS = 16;

/** Luma plane of an RGB24 frame, one byte a pixel. */
export function lumaPlane(rgb: Uint8Array, pixels: number, out: Uint8Array = new Uint8Array(pixels)): Uint8Array {
  for (let p = 0, i = 0; p < pixels; p++, i += 3) {
    // Integer BT.601 weights (0.299, 0.587, 0.114) scaled by 2^16.
    out[p] = (19595 * rgb[i]! + 38470 * rgb[i + 1]! + 7471 * rgb[i + 2]! + 32768) >>> 16;
  }
  return out;
}

/**
 * Hue on OpenCV's 8-bit scale for every (dominant channel, max - min, difference of the other
 * two channels), worked out once with the per-pixel formula: a table read instead of a division
 * and a rounding per pixel, with the very same values. Index: `((channel << 8) | delta) << 9 |
 * (difference + 255)`, channel 0 red, 1 green, 2 blue.
 */
const HUE_TABLE = (() => {
  const table = new Uint8Array(3 << 17);
  for (let channel = 0; channel < 3; channel++) {
    for (let delta = 1; delta < 256; delta++) {
      for (let difference = -delta; difference <= delta; difference++) {
        let hue = (60 * difference) / delta;
        if (channel === 1) hue = 120 + hue;
        else if (channel === 2) hue = 240 + hue;
        if (hue < 0) hue += 360;
        table[(((channel << 8) | delta) << 9) | (difference + 255)] = Math.round(hue / 2) % 180;
      }
    }
  }
  return table;
})();

/** Saturation on OpenCV's 8-bit scale for every (max, max - min): index `(max << 8) | delta`. */
const SATURATION_TABLE = (() => {
  const table = new Uint8Array(1 << 16);
  for (let max = 1; max < 256; max++) for (let delta = 0; delta <= max; delta++) table[(max << 8) | delta] = Math.round((255 * delta) / max);
  return table;
})();

/**
 * HSV planes of an RGB24 frame with OpenCV's 8-bit conventions: H in 0-179 (degrees / 2),
 * S and V in 0-255. Written into one Uint8Array of 3 planes [H..., S..., V...].
 */
export function hsvPlanes(rgb: Uint8Array, pixels: number, out: Uint8Array = new Uint8Array(pixels * 3)): Uint8Array {
  colourPass(rgb, pixels, new Uint8Array(pixels), out, null, null, new Int32Array(HISTOGRAM_BINS), new Float64Array(SUMS));
  return out;
}

/**
 * |value| of a small integer without a branch: the sign of a pixel difference follows the
 * picture, so a branch on it is mispredicted about half the time, which costs more than the
 * arithmetic of a whole pixel.
 */
function absolute(value: number): number {
  const sign = value >> 31;
  return (value ^ sign) - sign;
}

/** What {@link colourPass} adds up: luma, then the absolute changes of luma, hue, saturation and value. */
const SUMS = 5;

/**
 * One pass over a frame's pixels: its luma and HSV planes, its luma histogram, and the sums the
 * frame's mean luma, motion and content score are made of (changes against the previous frame's
 * planes, when given). One read of each pixel instead of one per metric.
 */
function colourPass(
  rgb: Uint8Array,
  pixels: number,
  luma: Uint8Array,
  hsv: Uint8Array,
  previousLuma: Uint8Array | null,
  previousHsv: Uint8Array | null,
  histogram: Int32Array,
  sums: Float64Array,
): void {
  histogram.fill(0);
  let lumaSum = 0;
  let motion = 0;
  let hueChange = 0;
  let saturationChange = 0;
  let valueChange = 0;
  const valueAt = 2 * pixels;
  for (let p = 0, i = 0; p < pixels; p++, i += 3) {
    const r = rgb[i]!;
    const g = rgb[i + 1]!;
    const b = rgb[i + 2]!;
    const y = (19595 * r + 38470 * g + 7471 * b + 32768) >>> 16;
    // biome-ignore lint/complexity/useMathMinMax: measured, Math.max/min make this pass 40 % slower
    const max = r > g ? (r > b ? r : b) : g > b ? g : b;
    // biome-ignore lint/complexity/useMathMinMax: as above
    const min = r < g ? (r < b ? r : b) : g < b ? g : b;
    const delta = max - min;
    let hue = 0;
    if (delta !== 0) {
      if (max === r) hue = HUE_TABLE[(delta << 9) | (g - b + 255)]!;
      else if (max === g) hue = HUE_TABLE[((256 | delta) << 9) | (b - r + 255)]!;
      else hue = HUE_TABLE[((512 | delta) << 9) | (r - g + 255)]!;
    }
    const saturation = SATURATION_TABLE[(max << 8) | delta]!;
    luma[p] = y;
    hsv[p] = hue;
    hsv[pixels + p] = saturation;
    hsv[valueAt + p] = max;
    lumaSum += y;
    histogram[y >> 4]! += 1;
    if (previousLuma && previousHsv) {
      const dy = y - previousLuma[p]!;
      const dh = hue - previousHsv[p]!;
      const ds = saturation - previousHsv[pixels + p]!;
      const dv = max - previousHsv[valueAt + p]!;
      motion += absolute(dy);
      hueChange += absolute(dh);
      saturationChange += absolute(ds);
      valueChange += absolute(dv);
    }
  }
  sums[0] = lumaSum;
  sums[1] = motion;
  sums[2] = hueChange;
  sums[3] = saturationChange;
  sums[4] = valueChange;
}

/** Where {@link spatialPass} writes a frame's interest profiles; null when they are not wanted. */
interface ProfileOut {
  columns: Float32Array;
  rows: Float32Array;
}

/**
 * One pass over a frame's luma: the variance of its 4-neighbour Laplacian (its sharpness) and,
 * when `profile` is given, its interest profiles: a pixel's interest is its luma gradient (edges
 * clamped) plus {@link MOTION_WEIGHT} times its change from `previousLuma`, summed down each
 * column and across each row, normalised by the frame's height and width.
 */
function spatialPass(luma: Uint8Array, previousLuma: Uint8Array | null, { width, height }: FrameGeometry, profile: ProfileOut | null): number {
  const sharpness = laplacianVariance(luma, width, height);
  if (profile) interestPass(luma, previousLuma, width, height, profile.columns, profile.rows);
  return sharpness;
}

/** Variance of the 4-neighbour Laplacian over the frame's interior pixels (0 for frames under 3x3). */
function laplacianVariance(luma: Uint8Array, width: number, height: number): number {
  if (width < 3 || height < 3) return 0;
  let sum = 0;
  let sumSquares = 0;
  for (let y = 1; y < height - 1; y++) {
    const end = (y + 1) * width - 1;
    for (let i = y * width + 1; i < end; i++) {
      const value = luma[i - 1]! + luma[i + 1]! + luma[i - width]! + luma[i + width]! - 4 * luma[i]!;
      sum += value;
      sumSquares += value * value;
    }
  }
  const count = (width - 2) * (height - 2);
  const mean = sum / count;
  return sumSquares / count - mean * mean;
}

/** A pixel's interest: its luma gradient (neighbours clamped at the edges) and its change since the previous frame. */
function interestPass(luma: Uint8Array, previousLuma: Uint8Array | null, width: number, height: number, columns: Float32Array, rows: Float32Array): void {
  const lastX = width - 1;
  const motionWeight = previousLuma ? MOTION_WEIGHT : 0;
  const previous = previousLuma ?? luma;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const up = y > 0 ? row - width : row;
    const down = y < height - 1 ? row + width : row;
    let rowSum = 0;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      const centre = luma[i]!;
      const dx = (x < lastX ? luma[i + 1]! : centre) - (x > 0 ? luma[i - 1]! : centre);
      const dy = luma[down + x]! - luma[up + x]!;
      const change = centre - previous[i]!;
      const interest = absolute(dx) + absolute(dy) + motionWeight * absolute(change);
      columns[x]! += interest;
      rowSum += interest;
    }
    rows[y] = rowSum / width;
  }
  for (let x = 0; x < width; x++) columns[x]! /= height;
}

/** dHash: 9x8 box-averaged luma grid, one bit per horizontal neighbour comparison. */
export function differenceHash(luma: Uint8Array, { width, height }: FrameGeometry): string {
  const cols = 9;
  const rows = 8;
  const grid = new Float64Array(cols * rows);
  for (let gy = 0; gy < rows; gy++) {
    const y0 = Math.floor((gy * height) / rows);
    const y1 = Math.max(y0 + 1, Math.floor(((gy + 1) * height) / rows));
    for (let gx = 0; gx < cols; gx++) {
      const x0 = Math.floor((gx * width) / cols);
      const x1 = Math.max(x0 + 1, Math.floor(((gx + 1) * width) / cols));
      let sum = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += luma[y * width + x]!;
      grid[gy * cols + gx] = sum / ((y1 - y0) * (x1 - x0));
    }
  }
  let hex = '';
  for (let gy = 0; gy < rows; gy++) {
    let byte = 0;
    for (let gx = 0; gx < cols - 1; gx++) byte = (byte << 1) | (grid[gy * cols + gx]! > grid[gy * cols + gx + 1]! ? 1 : 0);
    hex += byte.toString(16).padStart(2, '0');
  }
  return hex;
}

/** Bits that differ between two dHashes (0 = same picture, 64 = opposite). */
export function hammingDistance(a: string, b: string): number {
  let distance = 0;
  for (let i = 0; i < a.length; i += 2) {
    let x = parseInt(a.slice(i, i + 2), 16) ^ parseInt(b.slice(i, i + 2), 16);
    while (x) {
      distance += x & 1;
      x >>= 1;
    }
  }
  return distance;
}

/** A frame task's result and the batch's frame buffer, moved back out of the pool thread. */
export interface WithFrames<T> {
  value: T;
  frames: Uint8Array;
}

export interface FrameBatch extends FrameGeometry {
  /** `count` packed RGB24 frames. */
  frames: Uint8Array;
  count: number;
  /** The frame before the first of this batch (RGB24), when there is one. */
  previous?: Uint8Array | null;
}

/** A frame's interest profiles: where the eye is drawn along each axis (see {@link spatialPass}). */
export interface FrameProfile {
  /** Interest summed down each column, one value a column, normalised by the frame height. */
  columns: Float32Array;
  /** Interest summed across each row, one value a row, normalised by the frame width. */
  rows: Float32Array;
}

/**
 * Moving things draw the eye more than still detail: a pixel's interest is its local contrast
 * (luma gradient) plus this many times its change from the previous frame.
 */
export const MOTION_WEIGHT = 4;

/** What to measure of a batch: the metrics, the interest profiles, or both. */
export interface MeasureWants {
  metrics: boolean;
  profiles: boolean;
}

interface Planes {
  luma: [Uint8Array, Uint8Array];
  hsv: [Uint8Array, Uint8Array];
  histogram: Int32Array;
  sums: Float64Array;
}

let scratch: Planes | undefined;

/**
 * Working planes reused from batch to batch. Allocating them per frame costs more than the
 * arithmetic on small frames, and the allocator is shared by every pool thread, so it also
 * keeps the threads from queueing on it. One batch runs at a time per thread.
 */
function scratchPlanes(pixels: number): Planes {
  if (!scratch || scratch.luma[0].length !== pixels) {
    scratch = {
      luma: [new Uint8Array(pixels), new Uint8Array(pixels)],
      hsv: [new Uint8Array(pixels * 3), new Uint8Array(pixels * 3)],
      histogram: new Int32Array(HISTOGRAM_BINS),
      sums: new Float64Array(SUMS),
    };
  }
  return scratch;
}

/**
 * Metrics and/or interest profiles of every frame in a batch, in one colour pass and one spatial
 * pass a frame. Each frame's motion, content score and profile compare it with the frame before
 * it; the batch's first frame is compared with `previous`. Without metrics, only luma is worked
 * out of the colours.
 */
export function measureBatch(batch: FrameBatch, wants: MeasureWants): { metrics: FrameMetrics[]; profiles: FrameProfile[] } {
  const { width, height, count, frames } = batch;
  const pixels = width * height;
  const frameBytes = pixels * 3;
  if (frames.length < count * frameBytes) throw new Error(`batch holds ${frames.length} bytes, ${count} frames need ${count * frameBytes}`);
  const metrics: FrameMetrics[] = [];
  const profiles: FrameProfile[] = [];
  const planes = scratchPlanes(pixels);
  const { histogram, sums } = planes;
  let previousLuma: Uint8Array | null = null;
  let previousHsv: Uint8Array | null = null;
  if (batch.previous) {
    previousLuma = planes.luma[1];
    previousHsv = planes.hsv[1];
    if (wants.metrics) colourPass(batch.previous, pixels, previousLuma, previousHsv, null, null, histogram, sums);
    else lumaPlane(batch.previous, pixels, previousLuma);
  }
  for (let f = 0; f < count; f++) {
    const rgb = frames.subarray(f * frameBytes, (f + 1) * frameBytes);
    // Two sets of planes take turns being the current and the previous frame's.
    const turn = f % 2 === 0 ? 0 : 1;
    const luma = planes.luma[turn];
    const hsv = planes.hsv[turn];
    if (wants.metrics) colourPass(rgb, pixels, luma, hsv, previousLuma, previousHsv, histogram, sums);
    else lumaPlane(rgb, pixels, luma);
    const profile = wants.profiles ? { columns: new Float32Array(width), rows: new Float32Array(height) } : null;
    const sharpness = spatialPass(luma, previousLuma, batch, profile);
    if (profile) profiles.push(profile);
    if (wants.metrics) {
      const compared = previousLuma !== null;
      metrics.push({
        luma: sums[0]! / pixels,
        sharpness,
        motion: compared ? sums[1]! / pixels : 0,
        contentScore: compared ? (sums[2]! / pixels + sums[3]! / pixels + sums[4]! / pixels) / 3 : 0,
        dhash: differenceHash(luma, batch),
        histogram: Array.from(histogram, (bin) => bin / pixels),
      });
    }
    previousLuma = luma;
    previousHsv = hsv;
  }
  return { metrics, profiles };
}

/**
 * Metrics of every frame in a batch. Each frame's motion and content score compare it with the
 * frame before it; the batch's first frame is compared with `previous`.
 */
export function batchMetrics(batch: FrameBatch): FrameMetrics[] {
  return measureBatch(batch, { metrics: true, profiles: false }).metrics;
}
