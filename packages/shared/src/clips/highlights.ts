/**
 * Highlight scoring: turns per-frame signals into ranked clip candidates. Pure functions over
 * typed arrays; they run in worker-cpu's pool, in worker-io when clips are chosen with a
 * transcript, and directly in unit tests.
 */
import type { ClipCandidate } from '../queues/render.js';
import type { SpeechBoundaries } from './speech.js';

export interface HighlightSignals {
  /** Sampled frames per second of the per-frame arrays. */
  fps: number;
  durationSeconds: number;
  /** Mean absolute luma change to the previous frame, one value a frame. */
  motion: Float32Array;
  /** Variance of the Laplacian, one value a frame. */
  sharpness: Float32Array;
  /** dHash of every frame, 8 bytes a frame. */
  dhash: Uint8Array;
  /** Indices of the frames that start a new scene, ascending. */
  cutFrames: readonly number[];
  /** Short-term loudness; null when there is no audio. */
  loudness: { stepSeconds: number; shortTermLufs: ArrayLike<number> } | null;
}

export interface HighlightOptions {
  /** Candidates kept. @defaultValue 3 */
  clipCount?: number;
  /** Shortest candidate, in seconds. @defaultValue 5 */
  minClipSeconds?: number;
  /** Longest candidate, in seconds. @defaultValue 30 */
  maxClipSeconds?: number;
  /** dHash bits two frames may differ by and still count as the same picture. @defaultValue 8 */
  maxHashDistance?: number;
  /** Shot length that scores best on scene rhythm, in seconds. @defaultValue 3 */
  idealShotSeconds?: number;
  /** Where speech allows cuts; clips then start and end in pauses. Null or absent: scene cuts and a grid. */
  speech?: SpeechBoundaries | null;
  /** Non-overlapping candidates to return for a later ranking to choose `clipCount` from. @defaultValue clipCount */
  poolSize?: number;
}

/** What choosing clips yields: the clips, best first, what their boundaries follow, and why there are fewer than asked. */
export interface ClipChoice {
  clips: ClipCandidate[];
  boundaries: 'transcript' | 'pauses' | 'scenes';
  /** Set when fewer clips than `clipCount` were possible, saying why. */
  shortfall?: string;
}

/** How much each signal weighs in the score; loudness's share is spread over the others without audio. */
export const SIGNAL_WEIGHTS = { motion: 0.35, loudness: 0.25, sharpness: 0.2, rhythm: 0.2 } as const;
type Signal = keyof typeof SIGNAL_WEIGHTS;

/** Loudness below this (LUFS) counts as silence; above 0 cannot occur in practice. */
const LOUDNESS_FLOOR = -70;
/** A signal at or above this share of its range is named among the reasons. */
const NOTABLE = 0.6;
/** Below NOTABLE, a signal at or above this share is described as middling, below it as weak. */
const MIDDLING = 0.3;

/** Defaults of {@link HighlightOptions}. */
const DEFAULT_CLIP_COUNT = 3;
const DEFAULT_MIN_CLIP_SECONDS = 5;
const DEFAULT_MAX_CLIP_SECONDS = 30;
const DEFAULT_MAX_HASH_DISTANCE = 8;
const DEFAULT_IDEAL_SHOT_SECONDS = 3;

/**
 * Signals are scaled between these percentiles of the video's own values, so a few extreme
 * seconds (a flash, a bang) do not flatten the rest.
 */
const RANGE_LOW_PERCENTILE = 0.1;
const RANGE_HIGH_PERCENTILE = 0.98;
/** What a signal scores when it does not vary over the video (or has no data for a stretch). */
const NEUTRAL_SCORE = 0.5;
/** A signal whose range is narrower than this does not vary. */
const FLAT_RANGE = 1e-9;
/** Shots this many octaves (doublings) away from the ideal length score zero on rhythm. */
const RHYTHM_OCTAVES_TO_ZERO = 3;
/** Seconds the 3 s short-term loudness window needs before it measures only the clip. */
const LOUDNESS_WINDOW_SECONDS = 3;
/** Tolerance of comparisons between times in seconds (sums of floats). */
const EPSILON_SECONDS = 1e-9;
/** Inside a shot longer than the longest clip, points every max(min/2, max/8, this) seconds. */
const MIN_GRID_SECONDS = 0.5;
const GRID_SHARE_OF_MIN = 1 / 2;
const GRID_SHARE_OF_MAX = 1 / 8;
/** Bytes of one frame's dHash (64 bits). */
const DHASH_BYTES = 8;
/** Pictures sampled per clip to compare clips with each other. */
const MAX_SIGNATURE_HASHES = 32;

export interface CandidatePoint {
  seconds: number;
  /** On a scene cut (or the video's start or end), rather than inside a long shot. */
  onCut: boolean;
}

interface Scored {
  startSeconds: number;
  endSeconds: number;
  score: number;
  signals: Record<Signal, number | null>;
  shots: number;
  alignedEnds: number;
  /** Both ends on speech boundaries (in pauses). */
  onSpeech?: boolean;
}

/**
 * The best `clipCount` clips of a video, as {@link chooseClips} picks them.
 */
export function clipCandidates(signals: HighlightSignals, options: HighlightOptions = {}): ClipCandidate[] {
  return chooseClips(signals, options).clips;
}

/** Two candidates this close in score count as a tie, which the longer one (more whole sentences) wins. */
const TIE_POINTS = 3;

/**
 * The best clips of a video. With speech boundaries, clips start and end in pauses (after whole
 * sentences when a transcript gave them), between the requested lengths, and the longer of two
 * nearly equal stretches wins; without, they start and end on scene cuts (inside a shot longer
 * than `maxClipSeconds`, on a regular grid). Stretches are scored 0-100 from motion, loudness,
 * sharpness and scene rhythm relative to the rest of the video. Picks never overlap, keep apart
 * from each other when they can, and a stretch whose pictures mostly match a picked one (a
 * replay) waits until the distinct ones run out. `clipCount` clips are returned whenever the
 * video is at least `clipCount` × `minClipSeconds` long.
 */
export function chooseClips(signals: HighlightSignals, options: HighlightOptions = {}): ClipChoice {
  const clipCount = options.clipCount ?? DEFAULT_CLIP_COUNT;
  const minSeconds = options.minClipSeconds ?? DEFAULT_MIN_CLIP_SECONDS;
  const maxSeconds = options.maxClipSeconds ?? DEFAULT_MAX_CLIP_SECONDS;
  if (!(minSeconds > 0) || minSeconds > maxSeconds) throw new Error(`clip lengths must satisfy 0 < min (${minSeconds}) <= max (${maxSeconds})`);
  const frames = signals.motion.length;
  if (signals.sharpness.length !== frames || signals.dhash.length !== frames * DHASH_BYTES) {
    throw new Error(
      `signals disagree on the frame count: motion ${frames}, sharpness ${signals.sharpness.length}, dhash ${signals.dhash.length / DHASH_BYTES}`,
    );
  }
  const duration = signals.durationSeconds;
  if (frames === 0 || duration < minSeconds - EPSILON_SECONDS) {
    return { clips: [], boundaries: 'scenes', shortfall: `the video (${duration.toFixed(1)} s) is shorter than the shortest clip asked for (${minSeconds} s)` };
  }
  const scorer = stretchScorer(signals, options.idealShotSeconds ?? DEFAULT_IDEAL_SHOT_SECONDS);
  const limits = { minSeconds, maxSeconds, durationSeconds: duration };
  const speech = options.speech ?? null;
  const spoken = speech ? bestSpokenStretches(speech, scorer.score, limits) : [];
  const scenic = bestStretchPerStart(candidatePoints(duration, scorer.cutSeconds, minSeconds, maxSeconds), scorer.score, limits);
  const want = Math.max(clipCount, options.poolSize ?? clipCount);
  const picker = new SpreadPicker(want, Math.min(minSeconds, duration / (clipCount * 4)), (stretch) =>
    signatureHashes(signals.dhash, scorer.frameRange(stretch.startSeconds, stretch.endSeconds)),
  );
  const maxHashDistance = options.maxHashDistance ?? DEFAULT_MAX_HASH_DISTANCE;
  // Each pass relaxes a rule: apart and distinct, distinct, apart, only not overlapping. A replay
  // comes last, and a talking head (one picture throughout) still gets its count.
  const passes = [{ spread: true, distinct: true }, { distinct: true }, { spread: true }, {}].map((rules) => ({ ...rules, maxHashDistance }));
  for (const rules of passes) picker.take(spoken, rules);
  // Scenes and the grid only fill up what speech could not give (a sentence longer than the longest clip).
  if (!speech || picker.picked.length < clipCount) for (const rules of passes) picker.take(scenic, rules);
  let picked = picker.picked;
  if (picked.length < clipCount && duration >= clipCount * minSeconds - EPSILON_SECONDS) {
    const tiled = tile(clipCount, speech, scorer.score, limits);
    if (tiled.length > picked.length) picked = tiled;
  }
  picked = [...picked].sort((a, b) => (ranksBefore(a, b) ? -1 : ranksBefore(b, a) ? 1 : 0));
  const onSpeech = speech && picked.length > 0 && picked.every((stretch) => stretch.alignedEnds === 2 && stretch.onSpeech);
  return {
    clips: picked.map((scored) => ({
      startSeconds: round3(scored.startSeconds),
      endSeconds: round3(scored.endSeconds),
      score: scored.score,
      reasons: reasonsFor(scored),
    })),
    boundaries: onSpeech ? speech.source : 'scenes',
    ...(picked.length < clipCount ? { shortfall: shortfallReason(picked.length, clipCount, minSeconds, duration) } : {}),
  };
}

function shortfallReason(found: number, asked: number, minSeconds: number, duration: number): string {
  if (duration < asked * minSeconds) {
    return `${asked} clips of at least ${minSeconds} s do not fit in ${duration.toFixed(1)} s of video; ${found} chosen`;
  }
  return `only ${found} of the ${asked} clips asked for could be placed without overlapping`;
}

/** Per start, the best end among the speech boundaries in range; a near tie goes to the longer stretch. */
function bestSpokenStretches(
  speech: SpeechBoundaries,
  score: (start: CandidatePoint, end: CandidatePoint) => Scored,
  limits: { minSeconds: number; maxSeconds: number },
): Scored[] {
  const best: Scored[] = [];
  for (const start of speech.starts) {
    let top: Scored | undefined;
    for (const end of speech.ends) {
      const length = end - start;
      if (length < limits.minSeconds - EPSILON_SECONDS) continue;
      if (length > limits.maxSeconds + EPSILON_SECONDS) break;
      const candidate = spokenScore(score({ seconds: start, onCut: true }, { seconds: end, onCut: true }));
      if (!top || candidate.score > top.score + TIE_POINTS || (candidate.score >= top.score - TIE_POINTS && length > top.endSeconds - top.startSeconds)) {
        top = candidate;
      }
    }
    if (top) best.push(top);
  }
  return best.sort((a, b) => (ranksBefore(a, b) ? -1 : ranksBefore(b, a) ? 1 : 0));
}

/**
 * A stretch cut on speech. Inside one shot, scene rhythm would only measure the clip's length
 * and favour the shortest: there the pace is the speech's, so rhythm is left out of the score.
 */
function spokenScore(scored: Scored): Scored {
  if (scored.shots > 1) return { ...scored, onSpeech: true };
  const signals = { ...scored.signals, rhythm: null };
  return { ...scored, signals, score: weightedScore(signals), onSpeech: true };
}

/** Greedy picks, best first, over several passes that relax what a pick must keep away from. */
class SpreadPicker {
  readonly picked: Scored[] = [];
  private readonly hashes = new Map<Scored, Uint8Array[]>();

  constructor(
    private readonly want: number,
    private readonly gapSeconds: number,
    private readonly hashesOf: (stretch: Scored) => Uint8Array[],
  ) {}

  take(ranked: readonly Scored[], rules: { spread?: boolean; distinct?: boolean; maxHashDistance?: number }): void {
    for (const candidate of ranked) {
      if (this.picked.length >= this.want) return;
      const gap = rules.spread ? this.gapSeconds : -EPSILON_SECONDS;
      if (this.picked.some((other) => candidate.startSeconds < other.endSeconds + gap && other.startSeconds < candidate.endSeconds + gap)) continue;
      if (rules.distinct) {
        const hashes = this.hashOf(candidate);
        if (this.picked.some((other) => mostlySamePictures(hashes, this.hashOf(other), rules.maxHashDistance ?? DEFAULT_MAX_HASH_DISTANCE))) continue;
      }
      this.picked.push(candidate);
    }
  }

  private hashOf(stretch: Scored): Uint8Array[] {
    const known = this.hashes.get(stretch);
    if (known) return known;
    const hashes = this.hashesOf(stretch);
    this.hashes.set(stretch, hashes);
    return hashes;
  }
}

/**
 * The video cut into `count` equal slices, one clip in each: the best stretch inside the slice
 * on speech boundaries, else the slice itself (up to the longest clip) starting where speech
 * resumes in it when that leaves room. Used when greedy picks fall short of a count that fits.
 */
function tile(
  count: number,
  speech: SpeechBoundaries | null,
  score: (start: CandidatePoint, end: CandidatePoint) => Scored,
  limits: { minSeconds: number; maxSeconds: number; durationSeconds: number },
): Scored[] {
  const slice = limits.durationSeconds / count;
  const tiles: Scored[] = [];
  for (let k = 0; k < count; k++) {
    const from = k * slice;
    const to = k === count - 1 ? limits.durationSeconds : (k + 1) * slice;
    const inside = speech
      ? bestSpokenStretches(
          { ...speech, starts: speech.starts.filter((t) => t >= from - EPSILON_SECONDS), ends: speech.ends.filter((t) => t <= to + EPSILON_SECONDS) },
          score,
          limits,
        )
      : [];
    if (inside[0]) {
      tiles.push(inside[0]);
      continue;
    }
    const start = speech?.starts.find((t) => t >= from && to - t >= limits.minSeconds) ?? from;
    tiles.push(score({ seconds: start, onCut: false }, { seconds: Math.min(to, start + limits.maxSeconds), onCut: false }));
  }
  return tiles;
}

/** Scores stretches of one video: each signal relative to the rest of the video, weighted into 0-100. */
function stretchScorer(signals: HighlightSignals, idealShot: number) {
  const frames = signals.motion.length;
  const cutSeconds = signals.cutFrames.map((index) => index / signals.fps);
  const motion = new PrefixSums(motionWithoutCuts(signals.motion, signals.cutFrames));
  const sharpness = new PrefixSums(signals.sharpness);
  const motionRange = percentileRange(secondMeans(signals.motion, signals.fps), RANGE_LOW_PERCENTILE, RANGE_HIGH_PERCENTILE);
  const sharpnessRange = percentileRange(secondMeans(signals.sharpness, signals.fps), RANGE_LOW_PERCENTILE, RANGE_HIGH_PERCENTILE);
  const loudness = loudnessIndex(signals.loudness);
  const frameRange = (start: number, end: number): [number, number] => {
    const from = Math.min(frames - 1, Math.max(0, Math.round(start * signals.fps)));
    return [from, Math.max(from + 1, Math.min(frames, Math.round(end * signals.fps)))];
  };
  const score = (start: CandidatePoint, end: CandidatePoint): Scored => {
    const [from, to] = frameRange(start.seconds, end.seconds);
    const shots = 1 + countInside(cutSeconds, start.seconds, end.seconds);
    const values: Record<Signal, number | null> = {
      motion: normalise(motion.mean(from, to), motionRange),
      sharpness: normalise(sharpness.mean(from, to), sharpnessRange),
      loudness: loudness ? loudness.score(start.seconds, end.seconds) : null,
      rhythm: clamp01(1 - Math.abs(Math.log2((end.seconds - start.seconds) / shots / idealShot)) / RHYTHM_OCTAVES_TO_ZERO),
    };
    return {
      startSeconds: start.seconds,
      endSeconds: end.seconds,
      score: weightedScore(values),
      signals: values,
      shots,
      alignedEnds: Number(start.onCut) + Number(end.onCut),
    };
  };
  return { cutSeconds, frameRange, score };
}

/** 0-100 from the signals that have a value; a missing one's weight is spread over the others. */
function weightedScore(values: Record<Signal, number | null>): number {
  let total = 0;
  let weights = 0;
  for (const signal of Object.keys(SIGNAL_WEIGHTS) as Signal[]) {
    const value = values[signal];
    if (value === null) continue;
    total += SIGNAL_WEIGHTS[signal] * value;
    weights += SIGNAL_WEIGHTS[signal];
  }
  return Math.round((100 * total) / weights);
}

/**
 * One candidate per start point, its best end, best first: picks may not overlap anyway, and
 * keeping every pair would grow with (cuts × clip length) on fast-cut videos.
 */
function bestStretchPerStart(
  points: readonly CandidatePoint[],
  score: (start: CandidatePoint, end: CandidatePoint) => Scored,
  limits: { minSeconds: number; maxSeconds: number; durationSeconds: number },
): Scored[] {
  const best: Scored[] = [];
  for (let i = 0; i < points.length; i++) {
    const start = points[i]!;
    let top: Scored | undefined;
    for (let j = i + 1; j < points.length; j++) {
      const length = points[j]!.seconds - start.seconds;
      if (length > limits.maxSeconds + EPSILON_SECONDS) break;
      if (length < limits.minSeconds - EPSILON_SECONDS) continue;
      const candidate = score(start, points[j]!);
      if (!top || ranksBefore(candidate, top)) top = candidate;
    }
    // Cuts can fall so that no later point is at a fitting distance: end inside the shot then.
    const fallbackEnd = Math.min(start.seconds + limits.maxSeconds, limits.durationSeconds);
    if (!top && fallbackEnd - start.seconds >= limits.minSeconds - EPSILON_SECONDS) top = score(start, { seconds: fallbackEnd, onCut: false });
    if (top) best.push(top);
  }
  return best.sort((a, b) => (ranksBefore(a, b) ? -1 : ranksBefore(b, a) ? 1 : 0));
}

function ranksBefore(a: Scored, b: Scored): boolean {
  if (a.score !== b.score) return a.score > b.score;
  if (a.alignedEnds !== b.alignedEnds) return a.alignedEnds > b.alignedEnds;
  return a.startSeconds < b.startSeconds;
}

/**
 * Where clips may start and end: the video's start and end and every cut; a stretch between two
 * of them longer than the longest clip also gets points on a grid, so a long single shot still
 * yields clips.
 */
export function candidatePoints(durationSeconds: number, cutSeconds: readonly number[], minSeconds: number, maxSeconds: number): CandidatePoint[] {
  const bounds = [0, ...cutSeconds.filter((t) => t > 0 && t < durationSeconds), durationSeconds];
  const grid = Math.max(minSeconds * GRID_SHARE_OF_MIN, maxSeconds * GRID_SHARE_OF_MAX, MIN_GRID_SECONDS);
  const points: CandidatePoint[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const from = bounds[i]!;
    const to = bounds[i + 1]!;
    points.push({ seconds: from, onCut: true });
    if (to - from > maxSeconds) {
      for (let at = from + grid; at < to - EPSILON_SECONDS; at += grid) points.push({ seconds: at, onCut: false });
    }
  }
  points.push({ seconds: durationSeconds, onCut: true });
  return points;
}

/** The frame after a cut differs from the one before by the cut, not by motion: it borrows its predecessor's value. */
function motionWithoutCuts(motion: Float32Array, cutFrames: readonly number[]): Float32Array {
  const cleaned = Float32Array.from(motion);
  for (const index of cutFrames) if (index > 0 && index < cleaned.length) cleaned[index] = cleaned[index - 1]!;
  return cleaned;
}

class PrefixSums {
  private readonly sums: Float64Array;
  constructor(values: ArrayLike<number>) {
    this.sums = new Float64Array(values.length + 1);
    for (let i = 0; i < values.length; i++) this.sums[i + 1] = this.sums[i]! + values[i]!;
  }
  /** Mean of values [from, to). */
  mean(from: number, to: number): number {
    return to > from ? (this.sums[to]! - this.sums[from]!) / (to - from) : 0;
  }
}

interface Range {
  low: number;
  high: number;
}

/**
 * Means of whole seconds: clips are judged by their means, so the spread that matters is that
 * of means too, not of single (noisy) frames.
 */
function secondMeans(values: Float32Array, fps: number): Float32Array {
  const size = Math.max(1, Math.round(fps));
  const means = new Float32Array(Math.ceil(values.length / size));
  for (let bin = 0; bin < means.length; bin++) {
    const from = bin * size;
    const to = Math.min(values.length, from + size);
    let sum = 0;
    for (let i = from; i < to; i++) sum += values[i]!;
    means[bin] = sum / (to - from);
  }
  return means;
}

/** The spread of a signal over the whole video, so each video is scored against itself. */
function percentileRange(values: ArrayLike<number>, low: number, high: number): Range {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))] ?? 0;
  return { low: at(low), high: at(high) };
}

function normalise(value: number, range: Range): number {
  if (range.high - range.low < FLAT_RANGE) return NEUTRAL_SCORE;
  return clamp01((value - range.low) / (range.high - range.low));
}

function loudnessIndex(loudness: HighlightSignals['loudness']) {
  if (!loudness || loudness.shortTermLufs.length === 0) return null;
  const values = Float32Array.from(loudness.shortTermLufs as ArrayLike<number>, (lufs) => Math.max(LOUDNESS_FLOOR, lufs));
  const range = percentileRange(values, RANGE_LOW_PERCENTILE, RANGE_HIGH_PERCENTILE);
  // A silent track carries no highlight information: treat it as no audio at all.
  if (range.high <= LOUDNESS_FLOOR) return null;
  const sums = new PrefixSums(values);
  const step = loudness.stepSeconds;
  return {
    /** Windows that end inside the clip, after its first seconds (the 3 s window must reach into it). */
    score(start: number, end: number): number {
      const settle = Math.min(LOUDNESS_WINDOW_SECONDS, (end - start) / 2);
      const from = Math.max(0, Math.ceil((start + settle) / step) - 1);
      const to = Math.min(values.length, Math.floor(end / step));
      if (to <= from) return NEUTRAL_SCORE;
      return normalise(sums.mean(from, to), range);
    },
  };
}

/** Values of an ascending list strictly between start and end. */
function countInside(sorted: readonly number[], start: number, end: number): number {
  return Math.max(0, firstAtOrAbove(sorted, end - EPSILON_SECONDS) - firstAtOrAbove(sorted, start + EPSILON_SECONDS));
}

function firstAtOrAbove(sorted: readonly number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]! < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** dHashes about once a second across a clip (at most MAX_SIGNATURE_HASHES), to compare clips by their pictures. */
function signatureHashes(dhash: Uint8Array, [from, to]: [number, number]): Uint8Array[] {
  const count = Math.min(MAX_SIGNATURE_HASHES, Math.max(1, to - from));
  const hashes: Uint8Array[] = [];
  for (let k = 0; k < count; k++) {
    const frame = from + Math.floor(((k + 0.5) * (to - from)) / count);
    hashes.push(dhash.subarray(frame * DHASH_BYTES, (frame + 1) * DHASH_BYTES));
  }
  return hashes;
}

function hashDistance(a: Uint8Array, b: Uint8Array): number {
  let distance = 0;
  for (let i = 0; i < DHASH_BYTES; i++) {
    let x = a[i]! ^ b[i]!;
    while (x) {
      distance += x & 1;
      x >>= 1;
    }
  }
  return distance;
}

/** Most (over half) of one clip's sampled pictures have a near-identical picture in the other. */
function mostlySamePictures(a: Uint8Array[], b: Uint8Array[], maxDistance: number): boolean {
  let matched = 0;
  for (const hash of a) if (b.some((other) => hashDistance(hash, other) <= maxDistance)) matched++;
  return matched * 2 > a.length;
}

const PHRASES: Record<Signal | 'singleShot', [strong: string, middling: string, weak: string]> = {
  motion: ['strong motion', 'some motion', 'calm picture'],
  loudness: ['loud audio', 'lively audio', 'quiet audio'],
  sharpness: ['sharp, detailed picture', 'fairly sharp picture', 'soft picture'],
  rhythm: ['lively editing', 'steady editing', 'slow editing'],
  // Scene rhythm of a clip that is one shot: its length is its pace.
  singleShot: ['one short, complete shot', 'one shot', 'one long shot'],
};

/** The signals that stand out, strongest contribution first; at least the strongest one. */
function reasonsFor(scored: Scored): string[] {
  const ranked = (Object.keys(SIGNAL_WEIGHTS) as Signal[])
    .filter((signal) => scored.signals[signal] !== null)
    .map((signal) => ({ signal, value: scored.signals[signal]!, contribution: SIGNAL_WEIGHTS[signal] * scored.signals[signal]! }))
    .sort((a, b) => b.contribution - a.contribution);
  const phrase = ({ signal, value }: { signal: Signal; value: number }) => {
    const [strong, middling, weak] = PHRASES[signal === 'rhythm' && scored.shots === 1 ? 'singleShot' : signal];
    const text = value >= NOTABLE ? strong : value >= MIDDLING ? middling : weak;
    return signal === 'rhythm' && scored.shots > 1 ? `${text} (${scored.shots} shots in ${Math.round(scored.endSeconds - scored.startSeconds)} s)` : text;
  };
  const notable = ranked.filter((item) => item.value >= NOTABLE);
  return (notable.length ? notable : ranked.slice(0, 1)).map(phrase);
}

function clamp01(value: number): number {
  return value < 0 ? 0 : Math.min(value, 1);
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
