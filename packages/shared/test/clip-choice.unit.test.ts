/**
 * Choosing clips on speech, and the count asked for: pure functions over synthetic signals and
 * pause lists (the voice-activity pass itself is tested on real espeak-ng speech in tests/speech).
 */
import { chooseClips, findPauses, type HighlightSignals, speechBoundaries, VoiceActivityDetector } from '../src/clips/index.js';

const FPS = 2;

/** One shot whose picture never changes (a podcast camera), optionally one loud stretch. */
function singleShot(seconds: number, loud?: { from: number; to: number }): HighlightSignals {
  const frames = seconds * FPS;
  return {
    fps: FPS,
    durationSeconds: seconds,
    motion: new Float32Array(frames).fill(1),
    sharpness: new Float32Array(frames).fill(50),
    dhash: new Uint8Array(frames * 8).fill(0x5a),
    cutFrames: [],
    loudness: {
      stepSeconds: 0.5,
      shortTermLufs: Float32Array.from({ length: seconds * 2 }, (_, k) => (loud && k / 2 >= loud.from && k / 2 < loud.to ? -10 : -24)),
    },
  };
}

/** Sentences of `sentenceSeconds` with `pauseSeconds` between them, from 0.5 s on. */
function talk(seconds: number, sentenceSeconds: number, pauseSeconds: number) {
  const sentences: { startSeconds: number; endSeconds: number; text: string }[] = [];
  for (let at = 0.5; at + sentenceSeconds <= seconds - 0.5; at += sentenceSeconds + pauseSeconds) {
    sentences.push({ startSeconds: at, endSeconds: at + sentenceSeconds, text: `Sentence ${sentences.length}.` });
  }
  const pauses = sentences.slice(0, -1).map((sentence, i) => ({ startSeconds: sentence.endSeconds, endSeconds: sentences[i + 1]!.startSeconds }));
  return { sentences, pauses: [{ startSeconds: 0, endSeconds: 0.5 }, ...pauses, { startSeconds: sentences.at(-1)!.endSeconds, endSeconds: seconds }] };
}

const between = (sentences: { startSeconds: number; endSeconds: number }[], t: number) =>
  sentences.every((sentence) => t <= sentence.startSeconds + 1e-6 || t >= sentence.endSeconds - 1e-6);

function expectApartAndInRange(clips: { startSeconds: number; endSeconds: number }[], min: number, max: number): void {
  const ordered = [...clips].sort((a, b) => a.startSeconds - b.startSeconds);
  for (let i = 0; i < ordered.length; i++) {
    expect(ordered[i]!.endSeconds - ordered[i]!.startSeconds).toBeGreaterThanOrEqual(min - 1e-6);
    expect(ordered[i]!.endSeconds - ordered[i]!.startSeconds).toBeLessThanOrEqual(max + 1e-6);
    if (i > 0) expect(ordered[i]!.startSeconds).toBeGreaterThanOrEqual(ordered[i - 1]!.endSeconds);
  }
}

describe('the count asked for', () => {
  it('gives five clips of a 30-minute single shot with steady audio, spread over it', () => {
    const choice = chooseClips(singleShot(1800), { clipCount: 5, minClipSeconds: 5, maxClipSeconds: 30 });
    expect(choice.clips).toHaveLength(5);
    expect(choice.shortfall).toBeUndefined();
    expectApartAndInRange(choice.clips, 5, 30);
    // Not stacked: the picks reach across most of the video.
    const starts = choice.clips.map((clip) => clip.startSeconds);
    expect(Math.max(...starts) - Math.min(...starts)).toBeGreaterThan(900);
  });

  it('gives three clips of a 60 s single shot with one loud stretch, the loud one first', () => {
    const choice = chooseClips(singleShot(60, { from: 30, to: 42 }), { clipCount: 3, minClipSeconds: 5, maxClipSeconds: 15 });
    expect(choice.clips).toHaveLength(3);
    expectApartAndInRange(choice.clips, 5, 15);
    expect(choice.clips[0]!.startSeconds).toBeGreaterThanOrEqual(27);
    expect(choice.clips[0]!.endSeconds).toBeLessThanOrEqual(45);
    expect(choice.clips[0]!.reasons).toContain('loud audio');
  });

  it('fills a video exactly as long as the clips asked for', () => {
    const choice = chooseClips(singleShot(15), { clipCount: 3, minClipSeconds: 5, maxClipSeconds: 10 });
    expect(choice.clips).toHaveLength(3);
    expectApartAndInRange(choice.clips, 5, 10);
  });

  it('says why when fewer fit', () => {
    const choice = chooseClips(singleShot(12), { clipCount: 3, minClipSeconds: 5, maxClipSeconds: 10 });
    expect(choice.clips.length).toBeLessThan(3);
    expect(choice.shortfall).toMatch(/^3 clips of at least 5 s do not fit in 12\.0 s of video; \d chosen$/);
  });
});

describe('clips on speech', () => {
  it('cuts only in pauses and holds whole sentences, growing toward the longest length', () => {
    const { sentences, pauses } = talk(60, 3.2, 0.8);
    const speech = speechBoundaries(60, pauses, sentences)!;
    expect(speech.source).toBe('transcript');
    const choice = chooseClips(singleShot(60), { clipCount: 3, minClipSeconds: 5, maxClipSeconds: 15, speech });
    expect(choice.boundaries).toBe('transcript');
    expect(choice.clips).toHaveLength(3);
    expectApartAndInRange(choice.clips, 5, 15);
    for (const clip of choice.clips) {
      expect(between(sentences, clip.startSeconds)).toBe(true);
      expect(between(sentences, clip.endSeconds)).toBe(true);
      // Flat signals: a near tie, which the longer stretch wins (three sentences fit in 15 s, not four).
      expect(sentences.filter((s) => s.startSeconds >= clip.startSeconds && s.endSeconds <= clip.endSeconds)).toHaveLength(3);
    }
  });

  it('cuts only after sentence ends when the transcript says where they are', () => {
    // Two phrases per sentence: the first ends without a full stop, with a short breath after it.
    const segments = [
      { startSeconds: 0.5, endSeconds: 3, text: 'When we started' },
      { startSeconds: 3.35, endSeconds: 6, text: 'nothing worked.' },
      { startSeconds: 7, endSeconds: 9.5, text: 'Then one day' },
      { startSeconds: 9.85, endSeconds: 12.5, text: 'it all did.' },
      { startSeconds: 13.5, endSeconds: 19, text: 'That is the story.' },
    ];
    const pauses = [
      { startSeconds: 3, endSeconds: 3.35 },
      { startSeconds: 6, endSeconds: 7 },
      { startSeconds: 9.5, endSeconds: 9.85 },
      { startSeconds: 12.5, endSeconds: 13.5 },
    ];
    const speech = speechBoundaries(20, pauses, segments)!;
    for (const t of [...speech.starts, ...speech.ends]) expect(t < 3 || t > 3.35).toBe(true);
    for (const t of [...speech.starts, ...speech.ends]) expect(t < 9.5 || t > 9.85).toBe(true);
    // Pauses alone cut at the breaths too.
    const audioOnly = speechBoundaries(20, pauses)!;
    expect(audioOnly.source).toBe('pauses');
    expect(audioOnly.starts.some((t) => t > 3 && t < 3.35)).toBe(true);
  });

  it('knows sentence ends in other scripts: a Hindi, Arabic or Amharic transcript cuts where an English one would', () => {
    // Ten sentences of 5.6 s with short breaths (0.4 s) between them: only punctuation tells their ends.
    const pauses = Array.from({ length: 9 }, (_, i) => ({ startSeconds: 6 * i + 5.6, endSeconds: 6 * i + 6 }));
    const transcriptEnding = (end: string) =>
      Array.from({ length: 10 }, (_, i) => ({ startSeconds: 6 * i, endSeconds: 6 * i + 5.6, text: `sentence ${i}${end}` }));
    const english = speechBoundaries(60, pauses, transcriptEnding('.'))!;
    for (const end of ['।', '؟', '።', '。']) {
      const other = speechBoundaries(60, pauses, transcriptEnding(end))!;
      expect([end, other.starts, other.ends]).toEqual([end, english.starts, english.ends]);
    }
    expect(english.starts).toHaveLength(10);
  });

  it('falls back to the pauses when no transcript segment has a usable time span', () => {
    const pauses = [
      { startSeconds: 10, endSeconds: 11 },
      { startSeconds: 30, endSeconds: 31 },
    ];
    const broken = [
      { startSeconds: 5, endSeconds: 5, text: 'Hi.' },
      { startSeconds: Number.NaN, endSeconds: 8, text: 'There.' },
    ];
    expect(speechBoundaries(60, pauses, broken)).toEqual(speechBoundaries(60, pauses));
  });

  it('never cuts inside a segment another one overlaps, and cuts in the pause beside segments that meet', () => {
    const overlapping = [
      { startSeconds: 0, endSeconds: 10, text: 'First long sentence.' },
      { startSeconds: 4, endSeconds: 6, text: 'Inner.' },
      { startSeconds: 12, endSeconds: 15, text: 'Last.' },
    ];
    const speech = speechBoundaries(20, [], overlapping)!;
    for (const t of [...speech.starts, ...speech.ends]) expect([t, t <= 0 || t >= 10]).toEqual([t, true]);
    // Whisper's segments often meet exactly; the sound's pause lies just after the meeting point.
    const meeting = [
      { startSeconds: 0, endSeconds: 5, text: 'Hello there.' },
      { startSeconds: 5, endSeconds: 10, text: 'World.' },
    ];
    const cut = speechBoundaries(10, [{ startSeconds: 5.1, endSeconds: 5.8 }], meeting)!;
    const inner = [...cut.starts, ...cut.ends].filter((t) => t > 0 && t < 10);
    expect(inner.length).toBeGreaterThan(0);
    for (const t of inner) expect([t, t >= 5.1 && t <= 5.8]).toEqual([t, true]);
  });

  it('has no boundaries to offer without pauses (steady music, silence)', () => {
    expect(speechBoundaries(60, [])).toBeNull();
  });
});

describe('the voice-activity pass', () => {
  it('finds the silences of a tone that stops and starts, and none in steady sound', () => {
    const rate = 16_000;
    const pcm = (pattern: [seconds: number, on: boolean][]) => {
      const total = pattern.reduce((sum, [seconds]) => sum + seconds, 0);
      const samples = Buffer.alloc(Math.round(total * rate) * 2);
      let offset = 0;
      for (const [seconds, on] of pattern) {
        for (let i = 0; i < Math.round(seconds * rate); i++, offset += 2) {
          const noise = ((i * 7919) % 13) - 6; // a little background, as a room has
          samples.writeInt16LE(on ? Math.round(8000 * Math.sin((2 * Math.PI * 220 * i) / rate)) : noise, offset);
        }
      }
      return samples;
    };
    const detector = new VoiceActivityDetector(rate);
    const audio = pcm([
      [2, true],
      [0.8, false],
      [1.5, true],
      [0.2, false],
      [1.5, true],
    ]);
    // In odd-sized chunks, as a pipe delivers them.
    for (let at = 0; at < audio.length; at += 3333) detector.push(audio.subarray(at, at + 3333));
    const activity = detector.result();
    expect(activity.pauses).toHaveLength(1);
    expect(activity.pauses[0]!.startSeconds).toBeCloseTo(2, 1);
    expect(activity.pauses[0]!.endSeconds).toBeCloseTo(2.8, 1);
    expect(activity.speechSeconds).toBeCloseTo(5, 0);
    expect(findPauses(new Float32Array(500).fill(-20), 0.02).pauses).toEqual([]);
  });

  it('finds no phrases in steady music with a loud hit every ten seconds', () => {
    // Ten minutes swelling slowly between -25 and -19 dBFS, a 0.3 s hit at -6 every 10 s.
    const levels = Float32Array.from({ length: 30_000 }, (_, i) => (i % 500 < 15 ? -6 : -22 + 3 * Math.sin(i / 200)));
    expect(findPauses(levels, 0.02).pauses).toEqual([]);
  });

  it('finds sparse speech: five seconds of a minute, over digital silence or a steady noise floor', () => {
    for (const floor of [-90, -50]) {
      // 60 s in 20 ms frames; speech from 20 to 22 s and from 40 to 43 s.
      const levels = new Float32Array(3000).fill(floor);
      levels.fill(-20, 1000, 1100);
      levels.fill(-20, 2000, 2150);
      const activity = findPauses(levels, 0.02);
      expect([floor, activity.speechSeconds]).toEqual([floor, 5]);
      expect(activity.pauses).toEqual([
        { startSeconds: 0, endSeconds: 20 },
        { startSeconds: 22, endSeconds: 40 },
        { startSeconds: 43, endSeconds: 60 },
      ]);
    }
  });
});
