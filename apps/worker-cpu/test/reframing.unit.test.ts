import { PermanentJobError } from '@clipline/shared';
import { cropGeometry } from '../src/render/crop-geometry.js';
import { bestOffset, cropExpression, planCropPath } from '../src/render/crop-plan.js';
import { interestProfiles } from '../src/render/interest-profile.js';

describe('cropGeometry', () => {
  it.each([
    [1280, 720, '9:16', { width: 396, height: 704, slackX: 884, slackY: 16 }],
    [1280, 720, '1:1', { width: 720, height: 720, slackX: 560, slackY: 0 }],
    [1280, 720, '16:9', { width: 1280, height: 720, slackX: 0, slackY: 0 }],
    [320, 240, '16:9', { width: 320, height: 180, slackX: 0, slackY: 60 }],
    [322, 178, '9:16', { width: 90, height: 160, slackX: 232, slackY: 18 }],
    [1080, 1920, '9:16', { width: 1080, height: 1920, slackX: 0, slackY: 0 }],
    [1080, 1920, '16:9', { width: 1056, height: 594, slackX: 24, slackY: 1326 }],
  ] as const)('%dx%d as %s', (width, height, aspect, expected) => {
    expect(cropGeometry(width, height, aspect)).toEqual(expected);
  });

  it('always gives exactly the requested aspect with even sides', () => {
    for (const [width, height] of [
      [1920, 1080],
      [641, 359],
      [320, 192],
      [1000, 1000],
      [720, 1280],
    ] as const) {
      for (const [aspect, ratio] of [
        ['9:16', 9 / 16],
        ['1:1', 1],
        ['16:9', 16 / 9],
      ] as const) {
        const geometry = cropGeometry(width, height, aspect);
        expect(geometry.width / geometry.height).toBeCloseTo(ratio, 10);
        expect(geometry.width % 2).toBe(0);
        expect(geometry.height % 2).toBe(0);
        expect(geometry.width).toBeLessThanOrEqual(width);
        expect(geometry.height).toBeLessThanOrEqual(height);
      }
    }
  });

  it('refuses a source too small for the aspect', () => {
    expect(() => cropGeometry(8, 8, '9:16')).toThrow(PermanentJobError);
    expect(() => cropGeometry(8, 8, '9:16')).toThrow(/8x8\) is too small for a 9:16 clip/);
  });
});

/** A profile of `length` values with interest only in [from, to). */
function profile(length: number, from: number, to: number): Float32Array {
  return Float32Array.from({ length }, (_, x) => (x >= from && x < to ? 10 : 0));
}

describe('bestOffset', () => {
  it('moves the window over the interesting part', () => {
    expect(bestOffset(profile(100, 80, 95), 20)).toBeCloseTo(78 / 80, 1);
    expect(bestOffset(profile(100, 0, 10), 20)).toBe(0);
  });

  it('centres the window when nothing stands out', () => {
    expect(bestOffset(new Float32Array(100), 30)).toBe(0.5);
  });
});

describe('planCropPath', () => {
  it('holds the window on the action within a shot and jumps only at the cut', () => {
    // 8 fps: 2 s with the action on the right, then a cut, 2 s with it on the left.
    const profiles = [...Array.from({ length: 16 }, () => profile(100, 75, 95)), ...Array.from({ length: 16 }, () => profile(100, 5, 25))];
    const path = planCropPath({ fps: 8, profiles, window: 30, cutFrames: [16] });
    const at = (seconds: number) => path.filter((keyframe) => keyframe.seconds <= seconds).at(-1)!.offset;
    expect(at(0)).toBeGreaterThan(0.85);
    expect(at(1.8)).toBeGreaterThan(0.85);
    expect(at(2.0)).toBeLessThan(0.15);
    expect(at(3.9)).toBeLessThan(0.15);
    // Straight stretches are thinned out: the two steady shots need only a handful of keyframes.
    expect(path.length).toBeLessThanOrEqual(6);
  });

  it('pans no faster than allowed inside a shot', () => {
    const profiles = [...Array.from({ length: 16 }, () => profile(100, 0, 20)), ...Array.from({ length: 16 }, () => profile(100, 80, 100))];
    const path = planCropPath({ fps: 8, profiles, window: 20, cutFrames: [], maxPanPerSecond: 0.4 });
    for (let k = 1; k < path.length; k++) {
      const speed = Math.abs(path[k]!.offset - path[k - 1]!.offset) / (path[k]!.seconds - path[k - 1]!.seconds);
      expect(speed).toBeLessThanOrEqual(0.4 + 1e-3);
    }
    expect(path.at(-1)!.offset).toBeGreaterThan(path[0]!.offset + 0.5);
  });

  it('ignores a single-frame flash', () => {
    const profiles = Array.from({ length: 24 }, (_, i) => (i === 12 ? profile(100, 0, 10) : profile(100, 45, 55)));
    const path = planCropPath({ fps: 8, profiles, window: 20, cutFrames: [] });
    for (const keyframe of path) expect(Math.abs(keyframe.offset - 0.5)).toBeLessThan(0.15);
  });
});

describe('cropExpression', () => {
  /** Evaluates the generated expression the way ffmpeg would, for the few functions it uses. */
  function evaluate(expression: string, t: number): number {
    const js = expression.replace(/\\,/g, ',').replace(/if\(/g, 'when(').replace(/lt\(/g, 'lower(');
    return new Function('t', 'when', 'lower', `return ${js};`)(
      t,
      (c: number, a: number, b: number) => (c ? a : b),
      (a: number, b: number) => (a < b ? 1 : 0),
    );
  }

  it('interpolates between keyframes in pixels and escapes commas for the filter graph', () => {
    const expression = cropExpression(
      [
        { seconds: 0, offset: 0 },
        { seconds: 2, offset: 1 },
        { seconds: 4, offset: 0.5 },
      ],
      400,
    );
    expect(expression).not.toMatch(/[^\\],/);
    expect(evaluate(expression, 0)).toBeCloseTo(0, 6);
    expect(evaluate(expression, 1)).toBeCloseTo(200, 6);
    expect(evaluate(expression, 2)).toBeCloseTo(400, 6);
    expect(evaluate(expression, 3)).toBeCloseTo(300, 6);
    expect(evaluate(expression, 9)).toBeCloseTo(200, 6);
  });

  it('is a constant for a single keyframe', () => {
    expect(cropExpression([{ seconds: 0, offset: 0.25 }], 100)).toBe('25');
  });
});

describe('interestProfiles', () => {
  const W = 32;
  const H = 16;

  function frame(paint: (x: number, y: number) => number): Uint8Array {
    const rgb = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) rgb.fill(paint(x, y), (y * W + x) * 3, (y * W + x) * 3 + 3);
    return rgb;
  }

  it('finds detail where the picture has edges', () => {
    // A checkerboard in the right quarter, flat grey elsewhere.
    const [interest] = interestProfiles({ width: W, height: H, count: 1, frames: frame((x, y) => (x >= 24 ? ((x + y) % 2) * 255 : 128)) });
    const left = interest!.columns.subarray(0, 16).reduce((a, b) => a + b, 0);
    const right = interest!.columns.subarray(24).reduce((a, b) => a + b, 0);
    expect(right).toBeGreaterThan(100 * (left + 1));
    expect(interest!.rows).toHaveLength(H);
    expect(interest!.sharpness).toBeGreaterThan(0);
  });

  it('weighs motion: a moving block on flat ground stands out against the still picture', () => {
    const still = frame(() => 100);
    const moved = frame((x, y) => (x < 8 && y < 8 ? 200 : 100));
    const frames = new Uint8Array(W * H * 3 * 2);
    frames.set(still, 0);
    frames.set(moved, W * H * 3);
    const [, second] = interestProfiles({ width: W, height: H, count: 2, frames });
    expect(second!.columns[2]!).toBeGreaterThan(second!.columns[20]! + 100);
    expect(second!.rows[2]!).toBeGreaterThan(second!.rows[12]! + 10);
    expect(second!.contentScore).toBeGreaterThan(0);
  });
});
