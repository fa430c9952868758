import { batchMetrics, differenceHash, hammingDistance, hsvPlanes, lumaPlane } from '../src/analysis/frame-metrics.js';
import { detectCutFrames, scenesFromCuts } from '../src/analysis/scene-cuts.js';

const W = 16;
const H = 12;
const PIXELS = W * H;

function solid(r: number, g: number, b: number): Uint8Array {
  const frame = new Uint8Array(PIXELS * 3);
  for (let p = 0; p < PIXELS; p++) frame.set([r, g, b], p * 3);
  return frame;
}

function gradient(): Uint8Array {
  const frame = new Uint8Array(PIXELS * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) frame.fill((x * 255) / (W - 1), (y * W + x) * 3, (y * W + x) * 3 + 3);
  return frame;
}

function checkerboard(): Uint8Array {
  const frame = new Uint8Array(PIXELS * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) frame.fill((x + y) % 2 ? 255 : 0, (y * W + x) * 3, (y * W + x) * 3 + 3);
  return frame;
}

function pack(...frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.length * PIXELS * 3);
  frames.forEach((frame, index) => out.set(frame, index * PIXELS * 3));
  return out;
}

describe('frame metrics', () => {
  it('computes BT.601 luma', () => {
    expect(lumaPlane(solid(255, 255, 255), PIXELS)[0]).toBe(255);
    expect(lumaPlane(solid(255, 0, 0), PIXELS)[0]).toBe(76);
    expect(lumaPlane(solid(0, 255, 0), PIXELS)[0]).toBe(150);
    expect(lumaPlane(solid(0, 0, 255), PIXELS)[0]).toBe(29);
  });

  it('converts to HSV on the OpenCV 8-bit scale', () => {
    const hsv = hsvPlanes(solid(0, 0, 255), PIXELS);
    expect([hsv[0], hsv[PIXELS], hsv[2 * PIXELS]]).toEqual([120, 255, 255]);
    const grey = hsvPlanes(solid(128, 128, 128), PIXELS);
    expect([grey[0], grey[PIXELS], grey[2 * PIXELS]]).toEqual([0, 0, 128]);
  });

  it('gives every colour the hue and saturation of the per-pixel formula (the tables hold the same values)', () => {
    // Every (r, g, b) on a lattice of 52 steps a channel, plus the extremes, through the tables.
    const levels = [...Array.from({ length: 52 }, (_, i) => i * 5), 1, 254, 255];
    const colours: number[][] = [];
    for (const r of levels) for (const g of levels) for (const b of levels) colours.push([r, g, b]);
    const rgb = Uint8Array.from(colours.flat());
    const hsv = hsvPlanes(rgb, colours.length);
    const mismatches = colours.filter(([r, g, b], p) => {
      const max = Math.max(r!, g!, b!);
      const delta = max - Math.min(r!, g!, b!);
      let hue = 0;
      if (delta !== 0) {
        if (max === r) hue = (60 * (g! - b!)) / delta;
        else if (max === g) hue = 120 + (60 * (b! - r!)) / delta;
        else hue = 240 + (60 * (r! - g!)) / delta;
        if (hue < 0) hue += 360;
      }
      const saturation = max === 0 ? 0 : Math.round((255 * delta) / max);
      return hsv[p] !== Math.round(hue / 2) % 180 || hsv[colours.length + p] !== saturation || hsv[2 * colours.length + p] !== max;
    });
    expect(colours.length).toBeGreaterThan(150_000);
    expect(mismatches).toEqual([]);
  });

  it('scores identical frames 0 and a red→blue change high', () => {
    const [first, same, changed] = batchMetrics({ width: W, height: H, count: 3, frames: pack(solid(255, 0, 0), solid(255, 0, 0), solid(0, 0, 255)) });
    expect(first!.contentScore).toBe(0);
    expect(same!.contentScore).toBe(0);
    expect(same!.motion).toBe(0);
    // |ΔH| = 120, |ΔS| = 0, |ΔV| = 0 → (120 + 0 + 0) / 3 = 40.
    expect(changed!.contentScore).toBeCloseTo(40, 5);
    expect(changed!.motion).toBe(76 - 29);
  });

  it('compares the first frame of a batch with the previous batch', () => {
    const [metrics] = batchMetrics({ width: W, height: H, count: 1, frames: solid(0, 0, 0), previous: solid(255, 255, 255) });
    expect(metrics!.motion).toBe(255);
    expect(metrics!.contentScore).toBeCloseTo(255 / 3, 5);
  });

  it('rates a checkerboard sharper than a flat or smooth frame', () => {
    const [flat, smooth, sharp] = batchMetrics({ width: W, height: H, count: 3, frames: pack(solid(90, 90, 90), gradient(), checkerboard()) });
    expect(flat!.sharpness).toBe(0);
    expect(sharp!.sharpness).toBeGreaterThan(smooth!.sharpness * 100);
  });

  it('builds a normalised histogram', () => {
    const [metrics] = batchMetrics({ width: W, height: H, count: 1, frames: solid(255, 255, 255) });
    expect(metrics!.histogram).toHaveLength(16);
    expect(metrics!.histogram[15]).toBe(1);
    expect(metrics!.histogram.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
  });

  it('gives equal pictures equal dHashes and different pictures distant ones', () => {
    const a = differenceHash(lumaPlane(gradient(), PIXELS), { width: W, height: H });
    const b = differenceHash(lumaPlane(gradient(), PIXELS), { width: W, height: H });
    const mirrored = new Uint8Array(PIXELS * 3);
    const source = gradient();
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) mirrored.set(source.subarray((y * W + x) * 3, (y * W + x) * 3 + 3), (y * W + (W - 1 - x)) * 3);
    const c = differenceHash(lumaPlane(mirrored, PIXELS), { width: W, height: H });
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(hammingDistance(a, b)).toBe(0);
    expect(hammingDistance(a, c)).toBeGreaterThan(48);
  });

  it('refuses a batch shorter than its frame count', () => {
    expect(() => batchMetrics({ width: W, height: H, count: 2, frames: solid(0, 0, 0) })).toThrow(/2 frames need/);
  });
});

describe('scene cuts', () => {
  it('cuts where the score crosses the threshold, no closer than the minimum scene', () => {
    const scores = [0, 1, 2, 40, 1, 30, 0, 0, 0, 0, 0, 50, 0];
    expect(detectCutFrames(scores, { fps: 10, threshold: 27, minSceneSeconds: 0.5 })).toEqual([3, 11]);
    expect(detectCutFrames(scores, { fps: 10, threshold: 27, minSceneSeconds: 0.1 })).toEqual([3, 5, 11]);
  });

  it('splits the duration into scenes at the cuts', () => {
    expect(scenesFromCuts([3, 6.5], 10)).toEqual([
      { startSeconds: 0, endSeconds: 3 },
      { startSeconds: 3, endSeconds: 6.5 },
      { startSeconds: 6.5, endSeconds: 10 },
    ]);
    expect(scenesFromCuts([], 4.2)).toEqual([{ startSeconds: 0, endSeconds: 4.2 }]);
  });
});
