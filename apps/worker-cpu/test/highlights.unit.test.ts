import fc from 'fast-check';
import type { ClipCandidate } from '@clipline/shared';
import { candidatePoints, clipCandidates, type HighlightSignals } from '@clipline/shared/clips';

const FPS = 10;

interface Stretch {
  from: number;
  to: number;
}

/** A synthetic video: a new scene every `sceneSeconds`, each with a picture (dHash) of its own. */
function video(options: {
  seconds: number;
  sceneSeconds?: number;
  busy?: Stretch[];
  loud?: Stretch[];
  audio?: boolean;
  /** Scenes (by index) whose pictures repeat scene 0's. */
  repeatsOfFirst?: number[];
}): HighlightSignals {
  const frames = options.seconds * FPS;
  const sceneFrames = (options.sceneSeconds ?? options.seconds) * FPS;
  const inside = (t: number, stretches: Stretch[] = []) => stretches.some((s) => t >= s.from && t < s.to);
  const motion = new Float32Array(frames);
  const sharpness = new Float32Array(frames).fill(100);
  const dhash = new Uint8Array(frames * 8);
  const cutFrames: number[] = [];
  for (let i = 0; i < frames; i++) {
    const t = i / FPS;
    motion[i] = inside(t, options.busy) ? 20 + (i % 3) : 1 + (i % 2) * 0.5;
    let scene = Math.floor(i / sceneFrames);
    if (i > 0 && i % sceneFrames === 0) cutFrames.push(i);
    if (options.repeatsOfFirst?.includes(scene)) scene = 0;
    // Scenes get far-apart hashes (bytes spread by a large odd multiplier).
    for (let b = 0; b < 8; b++) dhash[i * 8 + b] = (scene * 151 + b * 37 + ((scene * 73) >> b)) & 0xff;
  }
  const loudness =
    options.audio === false
      ? null
      : {
          stepSeconds: 0.5,
          shortTermLufs: Array.from({ length: options.seconds * 2 }, (_, k) => (inside((k + 1) * 0.5 - 1, options.loud) ? -12 : -35)),
        };
  return { fps: FPS, durationSeconds: options.seconds, motion, sharpness, dhash, cutFrames, loudness };
}

describe('clipCandidates', () => {
  it('ranks the busy, loud stretch first, on scene cuts, within the requested lengths, the others spread apart', () => {
    const signals = video({ seconds: 60, sceneSeconds: 6, busy: [{ from: 24, to: 36 }], loud: [{ from: 24, to: 36 }] });
    const clips = clipCandidates(signals, { clipCount: 3, minClipSeconds: 5, maxClipSeconds: 12 });
    expect(clips).toHaveLength(3);
    const [first, second] = clips as [ClipCandidate, ClipCandidate, ClipCandidate];
    expect(first.startSeconds).toBeGreaterThanOrEqual(24);
    expect(first.endSeconds).toBeLessThanOrEqual(36);
    expect(first.reasons).toEqual(expect.arrayContaining(['strong motion', 'loud audio']));
    expect(second.score).toBeLessThan(first.score - 30);
    const ordered = [...clips].sort((a, b) => a.startSeconds - b.startSeconds);
    for (let i = 1; i < ordered.length; i++) expect(ordered[i]!.startSeconds - ordered[i - 1]!.endSeconds).toBeGreaterThanOrEqual(5);
    for (const clip of clips) {
      expect(clip.startSeconds % 6).toBe(0);
      expect(clip.endSeconds % 6).toBe(0);
      expect(clip.endSeconds - clip.startSeconds).toBeGreaterThanOrEqual(5);
      expect(clip.endSeconds - clip.startSeconds).toBeLessThanOrEqual(12);
      expect(Number.isInteger(clip.score)).toBe(true);
    }
    expect(clips.map((clip) => clip.score)).toEqual([...clips.map((clip) => clip.score)].sort((a, b) => b - a));
  });

  it('leaves out a stretch whose pictures repeat one already picked (a replay)', () => {
    // Scene 0 (0-6 s) is busy; scene 5 (30-36 s) replays it and is just as busy.
    const options = { clipCount: 2, minClipSeconds: 5, maxClipSeconds: 6 };
    const base = {
      seconds: 60,
      sceneSeconds: 6,
      busy: [
        { from: 0, to: 6 },
        { from: 30, to: 36 },
      ],
      repeatsOfFirst: [5],
      audio: false,
    } as const;
    const withReplay = clipCandidates(video(base), options);
    expect(withReplay[0]).toMatchObject({ startSeconds: 0, endSeconds: 6 });
    expect(withReplay.map((clip) => clip.startSeconds)).not.toContain(30);
    // The same video with distinct pictures keeps both busy scenes.
    const distinct = clipCandidates(video({ ...base, repeatsOfFirst: [] }), options);
    expect(distinct.map((clip) => clip.startSeconds).sort((a, b) => a - b)).toEqual([0, 30]);
  });

  it('still finds clips in one long shot, on a grid inside it', () => {
    // A panning camera: one shot whose picture keeps changing.
    const signals = video({ seconds: 100, busy: [{ from: 70, to: 80 }], audio: false });
    signals.dhash.forEach((_, index, bytes) => (bytes[index] = (Math.floor(index / 8 / FPS) * 97 + (index % 8) * 29) & 0xff));
    const clips = clipCandidates(signals, { clipCount: 2, minClipSeconds: 5, maxClipSeconds: 10 });
    expect(clips).toHaveLength(2);
    expect(clips[0]!.startSeconds).toBeGreaterThanOrEqual(68);
    expect(clips[0]!.endSeconds).toBeLessThanOrEqual(82);
    expect(clips[0]!.reasons[0]).toBe('strong motion');
    expect(clips.flatMap((clip) => clip.reasons).join(' ')).not.toMatch(/editing/);
  });

  it('gives the count asked for on a shot whose picture never changes (a talking head), spread over the video', () => {
    const clips = clipCandidates(video({ seconds: 100, busy: [{ from: 70, to: 80 }], audio: false }), { clipCount: 3, minClipSeconds: 5, maxClipSeconds: 10 });
    expect(clips).toHaveLength(3);
    expect(clips[0]!.startSeconds).toBeGreaterThanOrEqual(70);
    expect(clips[0]!.endSeconds).toBeLessThanOrEqual(80);
    const ordered = [...clips].sort((a, b) => a.startSeconds - b.startSeconds);
    for (let i = 1; i < ordered.length; i++) expect(ordered[i]!.startSeconds).toBeGreaterThanOrEqual(ordered[i - 1]!.endSeconds + 5);
  });

  it('scores without audio from the other signals and never names audio', () => {
    const clips = clipCandidates(video({ seconds: 30, sceneSeconds: 3, busy: [{ from: 9, to: 18 }], audio: false }), { clipCount: 3 });
    expect(clips.length).toBeGreaterThan(0);
    expect(clips.flatMap((clip) => clip.reasons).join(' ')).not.toMatch(/audio/);
  });

  it('ends a clip inside a shot when no cut lies at a fitting distance', () => {
    const signals = { ...video({ seconds: 5.5, audio: false }), cutFrames: [10, 20, 30, 40, 45] };
    const clips = clipCandidates(signals, { clipCount: 1, minClipSeconds: 5, maxClipSeconds: 5 });
    expect(clips).toHaveLength(1);
    expect(clips[0]!.endSeconds - clips[0]!.startSeconds).toBeCloseTo(5, 6);
  });

  it('returns nothing for a video shorter than the shortest clip', () => {
    expect(clipCandidates(video({ seconds: 4 }), { minClipSeconds: 5 })).toEqual([]);
  });

  it('refuses lengths where the shortest exceeds the longest', () => {
    expect(() => clipCandidates(video({ seconds: 20 }), { minClipSeconds: 10, maxClipSeconds: 5 })).toThrow(/min \(10\) <= max \(5\)/);
  });

  it('refuses signals of different lengths', () => {
    const signals = video({ seconds: 20 });
    expect(() => clipCandidates({ ...signals, sharpness: signals.sharpness.subarray(1) }, {})).toThrow(/disagree on the frame count/);
  });

  it('keeps every pick within the rules for any video and options', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 240 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 2399 }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 40 }),
        fc.boolean(),
        fc.integer(),
        (seconds, cutList, clipCount, minClip, extra, audio, seed) => {
          const frames = seconds * FPS;
          let state = seed;
          const random = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
          const signals: HighlightSignals = {
            fps: FPS,
            durationSeconds: seconds,
            motion: Float32Array.from({ length: frames }, () => random() * 30),
            sharpness: Float32Array.from({ length: frames }, () => random() * 500),
            dhash: Uint8Array.from({ length: frames * 8 }, () => Math.floor(random() * 256)),
            cutFrames: cutList.filter((index) => index < frames).sort((a, b) => a - b),
            loudness: audio ? { stepSeconds: 0.5, shortTermLufs: Array.from({ length: seconds * 2 }, () => -60 + random() * 55) } : null,
          };
          const options = { clipCount, minClipSeconds: minClip, maxClipSeconds: minClip + extra };
          const clips = clipCandidates(signals, options);
          expect(clips.length).toBeLessThanOrEqual(clipCount);
          if (seconds >= minClip) expect(clips.length).toBeGreaterThan(0);
          const sorted = [...clips].sort((a, b) => a.startSeconds - b.startSeconds);
          sorted.forEach((clip, k) => {
            const length = clip.endSeconds - clip.startSeconds;
            expect(length).toBeGreaterThanOrEqual(options.minClipSeconds - 0.002);
            expect(length).toBeLessThanOrEqual(options.maxClipSeconds + 0.002);
            expect(clip.startSeconds).toBeGreaterThanOrEqual(0);
            expect(clip.endSeconds).toBeLessThanOrEqual(seconds);
            expect(clip.score).toBeGreaterThanOrEqual(0);
            expect(clip.score).toBeLessThanOrEqual(100);
            expect(clip.reasons.length).toBeGreaterThan(0);
            if (k > 0) expect(clip.startSeconds).toBeGreaterThanOrEqual(sorted[k - 1]!.endSeconds - 0.002);
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('candidatePoints', () => {
  it('puts points on every cut, and on a grid only inside shots longer than the longest clip', () => {
    const points = candidatePoints(50, [4, 8], 5, 20);
    expect(points.filter((point) => point.onCut).map((point) => point.seconds)).toEqual([0, 4, 8, 50]);
    const grid = points.filter((point) => !point.onCut).map((point) => point.seconds);
    expect(grid.length).toBeGreaterThan(5);
    expect(grid.every((t) => t > 8 && t < 50)).toBe(true);
  });
});
