/**
 * Plans how a crop window moves through a clip so it keeps the most interesting part of the
 * picture in view, steadily like a camera operator would: smooth pans within a shot, a jump only
 * where the shot changes. Pure functions; the planning runs in the pool.
 */

export interface CropPathInput {
  /** Sampled frames per second of `profiles`. */
  fps: number;
  /** One interest profile per sampled frame along the axis the window moves on. */
  profiles: readonly Float32Array[];
  /** Window length in profile units (crop size × profile length / source size). */
  window: number;
  /**
   * Seconds into the clip of the first profile's frame (frames analysis sampled from the start
   * of the source fall up to half a sample before or after the clip's start). The path starts
   * at 0 regardless. @defaultValue 0
   */
  startSeconds?: number;
  /** Indices of sampled frames that start a new shot, ascending. */
  cutFrames: readonly number[];
  /** Fastest pan, in shares of the free room per second. @defaultValue 0.5 */
  maxPanPerSecond?: number;
  /** Seconds over which the window position is averaged within a shot. @defaultValue 1 */
  smoothingSeconds?: number;
  /** Most keyframes in the path (the ffmpeg expression grows with them). @defaultValue 48 */
  maxKeyframes?: number;
}

/** Where the window is at a moment: `offset` 0 is the left (top) edge, 1 the right (bottom) edge. */
export interface CropKeyframe {
  seconds: number;
  offset: number;
}

/**
 * The window's path as keyframes, linear between them. Each frame's best position is the one
 * whose window holds the most interest in the shot's profiles around it; positions are then
 * averaged over `smoothingSeconds`, held to `maxPanPerSecond`, and thinned out where the path
 * runs straight.
 */
export function planCropPath(input: CropPathInput): CropKeyframe[] {
  const { fps, profiles } = input;
  const frames = profiles.length;
  if (frames === 0) return [{ seconds: 0, offset: 0.5 }];
  const radius = Math.max(0, Math.round(((input.smoothingSeconds ?? 1) * fps) / 2));
  const maxStep = (input.maxPanPerSecond ?? 0.5) / fps;
  const shots = shotRanges(frames, input.cutFrames);

  const offsets = new Float64Array(frames);
  for (const [from, to] of shots) {
    for (let i = from; i < to; i++) {
      offsets[i] = bestOffset(averageProfile(profiles, Math.max(from, i - radius), Math.min(to, i + radius + 1)), input.window);
    }
    smoothWithin(offsets, from, to, radius);
    limitPanSpeed(offsets, from, to, maxStep);
  }

  const first = input.startSeconds ?? 0;
  const at = (index: number) => Math.max(0, first + index / fps);
  const keyframes: (CropKeyframe & { pinned: boolean })[] = [];
  for (const [from, to] of shots) {
    // A cut happens somewhere between two samples: jump halfway.
    const start = from === 0 ? 0 : at(from - 0.5);
    keyframes.push({ seconds: start, offset: offsets[from]!, pinned: true });
    for (let i = from + 1; i < to; i++) keyframes.push({ seconds: at(i), offset: offsets[i]!, pinned: false });
    if (to < frames) keyframes.push({ seconds: Math.max(0, at(to - 0.5) - 1e-3), offset: offsets[to - 1]!, pinned: true });
  }
  return thin(keyframes, input.maxKeyframes ?? 48).map(({ seconds, offset }) => ({ seconds: round(seconds, 3), offset: round(offset, 4) }));
}

function shotRanges(frames: number, cutFrames: readonly number[]): [number, number][] {
  const starts = [0, ...cutFrames.filter((index) => index > 0 && index < frames)];
  return starts.map((start, k) => [start, starts[k + 1] ?? frames]);
}

function averageProfile(profiles: readonly Float32Array[], from: number, to: number): Float64Array {
  const sum = new Float64Array(profiles[from]!.length);
  for (let i = from; i < to; i++) {
    const profile = profiles[i]!;
    for (let x = 0; x < sum.length; x++) sum[x]! += profile[x]!;
  }
  return sum;
}

/** Offset (0..1) of the window holding the most interest; the centre when nothing stands out. */
export function bestOffset(profile: ArrayLike<number>, window: number): number {
  const length = profile.length;
  const size = Math.max(1, Math.min(length, Math.round(window)));
  const room = length - size;
  if (room <= 0) return 0.5;
  let sum = 0;
  for (let x = 0; x < size; x++) sum += profile[x]!;
  let best = sum;
  let bestStarts: number[] = [0];
  for (let start = 1; start <= room; start++) {
    sum += profile[start + size - 1]! - profile[start - 1]!;
    if (sum > best + 1e-9) {
      best = sum;
      bestStarts = [start];
    } else if (Math.abs(sum - best) <= 1e-9) {
      bestStarts.push(start);
    }
  }
  // Equal windows (a flat or symmetric picture): the middle of them, which is the centre for a flat one.
  const middle = (bestStarts[0]! + bestStarts.at(-1)!) / 2;
  return middle / room;
}

function smoothWithin(offsets: Float64Array, from: number, to: number, radius: number): void {
  if (radius === 0) return;
  const source = offsets.slice(from, to);
  for (let i = 0; i < source.length; i++) {
    let sum = 0;
    let count = 0;
    for (let j = Math.max(0, i - radius); j <= Math.min(source.length - 1, i + radius); j++) {
      sum += source[j]!;
      count++;
    }
    offsets[from + i] = sum / count;
  }
}

/** Holds every step to `maxStep`, walking forward then backward so the path neither lags nor jumps. */
function limitPanSpeed(offsets: Float64Array, from: number, to: number, maxStep: number): void {
  for (let i = from + 1; i < to; i++) offsets[i] = clampTo(offsets[i]!, offsets[i - 1]! - maxStep, offsets[i - 1]! + maxStep);
  for (let i = to - 2; i >= from; i--) offsets[i] = clampTo(offsets[i]!, offsets[i + 1]! - maxStep, offsets[i + 1]! + maxStep);
}

/** Drops keyframes that lie on the line between their neighbours, loosening the tolerance until few enough remain. */
function thin<K extends CropKeyframe & { pinned: boolean }>(keyframes: K[], maxKeyframes: number): K[] {
  let tolerance = 0.005;
  let kept = keyframes;
  for (;;) {
    kept = [keyframes[0]!];
    for (let i = 1; i < keyframes.length - 1; i++) {
      const current = keyframes[i]!;
      const before = kept.at(-1)!;
      const after = keyframes[i + 1]!;
      const span = after.seconds - before.seconds;
      const expected = span > 0 ? before.offset + ((after.offset - before.offset) * (current.seconds - before.seconds)) / span : after.offset;
      if (current.pinned || Math.abs(current.offset - expected) > tolerance) kept.push(current);
    }
    if (keyframes.length > 1) kept.push(keyframes.at(-1)!);
    if (kept.length <= maxKeyframes || tolerance > 1) return kept;
    tolerance *= 2;
  }
}

/**
 * The path as an ffmpeg expression of the frame time `t` (seconds from the clip's start), giving
 * the window's position in pixels along an axis with `slack` pixels of room. Commas are escaped
 * for use inside a filter graph.
 */
export function cropExpression(keyframes: readonly CropKeyframe[], slack: number): string {
  const pixels = keyframes.map((keyframe) => ({ t: keyframe.seconds, x: round(keyframe.offset * slack, 2) }));
  const last = pixels.at(-1);
  if (!last) return String(round(slack / 2, 2));
  let expression = String(last.x);
  for (let k = pixels.length - 2; k >= 0; k--) {
    const a = pixels[k]!;
    const b = pixels[k + 1]!;
    const span = b.t - a.t;
    const segment = span > 0 && b.x !== a.x ? `${a.x}+(${round(b.x - a.x, 2)})*(t-${a.t})/${round(span, 4)}` : String(a.x);
    expression = `if(lt(t,${b.t}),${segment},${expression})`;
  }
  return expression.replace(/,/g, '\\,');
}

function clampTo(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low, 0), high, 1);
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
