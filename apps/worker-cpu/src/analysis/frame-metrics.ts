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
 * HSV planes of an RGB24 frame with OpenCV's 8-bit conventions: H in 0-179 (degrees / 2),
 * S and V in 0-255. Written into one Uint8Array of 3 planes [H..., S..., V...].
 */
export function hsvPlanes(rgb: Uint8Array, pixels: number, out: Uint8Array = new Uint8Array(pixels * 3)): Uint8Array {
  for (let p = 0, i = 0; p < pixels; p++, i += 3) {
    const r = rgb[i]!;
    const g = rgb[i + 1]!;
    const b = rgb[i + 2]!;
    const max = r > g ? Math.max(r, b) : Math.max(g, b);
    const min = r < g ? Math.min(r, b) : Math.min(g, b);
    const delta = max - min;
    let hue = 0;
    if (delta !== 0) {
      if (max === r) hue = (60 * (g - b)) / delta;
      else if (max === g) hue = 120 + (60 * (b - r)) / delta;
      else hue = 240 + (60 * (r - g)) / delta;
      if (hue < 0) hue += 360;
    }
    out[p] = Math.round(hue / 2) % 180;
    out[pixels + p] = max === 0 ? 0 : Math.round((255 * delta) / max);
    out[2 * pixels + p] = max;
  }
  return out;
}

function meanAbsoluteDifference(a: Uint8Array, b: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) {
    const d = a[i]! - b[i]!;
    sum += d < 0 ? -d : d;
  }
  return sum / (to - from);
}

function laplacianVariance(luma: Uint8Array, { width, height }: FrameGeometry): number {
  if (width < 3 || height < 3) return 0;
  let sum = 0;
  let sumSquares = 0;
  let count = 0;
  for (let y = 1; y < height - 1; y++) {
    const row = y * width;
    for (let x = 1; x < width - 1; x++) {
      const i = row + x;
      const value = luma[i - 1]! + luma[i + 1]! + luma[i - width]! + luma[i + width]! - 4 * luma[i]!;
      sum += value;
      sumSquares += value * value;
      count++;
    }
  }
  const mean = sum / count;
  return sumSquares / count - mean * mean;
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

export interface FrameBatch extends FrameGeometry {
  /** `count` packed RGB24 frames. */
  frames: Uint8Array;
  count: number;
  /** The frame before the first of this batch (RGB24), when there is one. */
  previous?: Uint8Array | null;
}

interface Planes {
  luma: [Uint8Array, Uint8Array];
  hsv: [Uint8Array, Uint8Array];
}

let scratch: Planes | undefined;

/**
 * Working planes reused from batch to batch. Allocating them per frame costs more than the
 * arithmetic on small frames, and the allocator is shared by every pool thread, so it also
 * keeps the threads from queueing on it. One batch runs at a time per thread.
 */
function scratchPlanes(pixels: number): Planes {
  if (!scratch || scratch.luma[0].length !== pixels) {
    scratch = { luma: [new Uint8Array(pixels), new Uint8Array(pixels)], hsv: [new Uint8Array(pixels * 3), new Uint8Array(pixels * 3)] };
  }
  return scratch;
}

/**
 * Metrics of every frame in a batch. Each frame's motion and content score compare it with the
 * frame before it; the batch's first frame is compared with `previous`.
 */
export function batchMetrics(batch: FrameBatch): FrameMetrics[] {
  const { width, height, count, frames } = batch;
  const pixels = width * height;
  const frameBytes = pixels * 3;
  if (frames.length < count * frameBytes) throw new Error(`batch holds ${frames.length} bytes, ${count} frames need ${count * frameBytes}`);
  const results: FrameMetrics[] = [];
  const planes = scratchPlanes(pixels);
  let previousLuma: Uint8Array | null = null;
  let previousHsv: Uint8Array | null = null;
  if (batch.previous) {
    previousLuma = lumaPlane(batch.previous, pixels, planes.luma[1]);
    previousHsv = hsvPlanes(batch.previous, pixels, planes.hsv[1]);
  }
  for (let f = 0; f < count; f++) {
    const rgb = frames.subarray(f * frameBytes, (f + 1) * frameBytes);
    // Two sets of planes take turns being the current and the previous frame's.
    const turn = f % 2 === 0 ? 0 : 1;
    const luma = lumaPlane(rgb, pixels, planes.luma[turn]);
    const hsv = hsvPlanes(rgb, pixels, planes.hsv[turn]);
    const histogram = new Array<number>(HISTOGRAM_BINS).fill(0);
    let lumaSum = 0;
    for (let p = 0; p < pixels; p++) {
      const value = luma[p]!;
      lumaSum += value;
      histogram[value >> 4]! += 1;
    }
    let contentScore = 0;
    let motion = 0;
    if (previousLuma && previousHsv) {
      motion = meanAbsoluteDifference(luma, previousLuma, 0, pixels);
      contentScore =
        (meanAbsoluteDifference(hsv, previousHsv, 0, pixels) +
          meanAbsoluteDifference(hsv, previousHsv, pixels, 2 * pixels) +
          meanAbsoluteDifference(hsv, previousHsv, 2 * pixels, 3 * pixels)) /
        3;
    }
    results.push({
      luma: lumaSum / pixels,
      sharpness: laplacianVariance(luma, batch),
      motion,
      contentScore,
      dhash: differenceHash(luma, batch),
      histogram: histogram.map((bin) => bin / pixels),
    });
    previousLuma = luma;
    previousHsv = hsv;
  }
  return results;
}
