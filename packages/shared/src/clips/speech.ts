/**
 * Where speech pauses: a voice-activity pass over decoded audio (16-bit mono PCM), and the clip
 * boundaries that follow from pauses and, when there is one, a timed transcript. Clips start and
 * end inside pauses, so they never cut into a word. Pure code: it runs in worker-cpu (during the
 * loudness decode) and in worker-io (when clips are chosen), and in unit tests.
 */

/** A stretch without speech, in seconds. */
export interface Pause {
  startSeconds: number;
  endSeconds: number;
}

/** What the voice-activity pass found in a whole track. */
export interface SpeechActivity {
  /** Pauses of at least {@link MIN_PAUSE_SECONDS}, in order; the track's silent start and end included. */
  pauses: Pause[];
  /** Seconds judged to be speech (or other foreground sound). */
  speechSeconds: number;
  /** The level (dBFS) that separated speech from background in this track. */
  thresholdDb: number;
}

/** A stretch of transcript: a segment or a word, in seconds. */
export interface TimedText {
  startSeconds: number;
  endSeconds: number;
  text: string;
}

/** Shortest silence that counts as a pause between phrases. */
export const MIN_PAUSE_SECONDS = 0.3;
/** Energy is measured over frames this long. */
const FRAME_SECONDS = 0.02;
/** Quieter than this (dBFS) is silence whatever the track; keeps digital silence finite. */
const FLOOR_DB = -90;
/** The background is this percentile of frame levels, the speech level that one. */
const BACKGROUND_PERCENTILE = 0.1;
const FOREGROUND_PERCENTILE = 0.9;
/**
 * The speech level of a track where speech is sparse (under a tenth of it: a few remarks, a long
 * silent intro), whose 90th percentile is still background: then speech needs only a fiftieth.
 * Only over a quiet background (below {@link SPARSE_BACKGROUND_MAX_DB}: silence, a room): steady
 * music with a few loud hits is not sparse speech, and its hits are no phrases.
 */
const SPARSE_FOREGROUND_PERCENTILE = 0.98;
const SPARSE_BACKGROUND_MAX_DB = -40;
/** Where between background and speech level the threshold sits. */
const THRESHOLD_SHARE = 0.4;
/** A track whose speech stands less than this above its background has no pauses to find (steady music, noise). */
const MIN_CONTRAST_DB = 12;
/** A clip starts at most this long before speech resumes and ends at most this long after it stops. */
const EDGE_SECONDS = 0.3;
/**
 * Sentence-ending punctuation at the end of a transcript segment or word, in any script
 * (Unicode's Sentence_Terminal: `.!?。！？`, the danda `।`, Arabic `؟`, Ethiopic `።`, …), then closing quotes or brackets.
 */
const SENTENCE_END = /[\p{Sentence_Terminal}…]["'”’»」』)\]]*\s*$/u;

/**
 * Streams 16-bit little-endian mono PCM and finds pauses. Frame levels are kept (4 bytes per
 * 20 ms), so the threshold can adapt to the whole track: its background noise and speech level.
 */
export class VoiceActivityDetector {
  private readonly frameSamples: number;
  private levels = new Float32Array(4096);
  private frames = 0;
  private sum = 0;
  private count = 0;
  private carry: Buffer | null = null;

  constructor(private readonly sampleRate = 16_000) {
    this.frameSamples = Math.max(1, Math.round(sampleRate * FRAME_SECONDS));
  }

  push(chunk: Buffer): void {
    let bytes = chunk;
    if (this.carry) {
      bytes = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    const whole = bytes.length - (bytes.length % 2);
    for (let offset = 0; offset < whole; offset += 2) {
      const sample = bytes.readInt16LE(offset) / 32768;
      this.sum += sample * sample;
      if (++this.count === this.frameSamples) this.closeFrame();
    }
    if (whole < bytes.length) this.carry = bytes.subarray(whole);
  }

  private closeFrame(): void {
    if (this.frames === this.levels.length) {
      const grown = new Float32Array(this.levels.length * 2);
      grown.set(this.levels);
      this.levels = grown;
    }
    const meanSquare = this.sum / Math.max(1, this.count);
    this.levels[this.frames++] = Math.max(FLOOR_DB, 10 * Math.log10(meanSquare || 1e-12));
    this.sum = 0;
    this.count = 0;
  }

  result(): SpeechActivity {
    if (this.count > 0) this.closeFrame();
    return findPauses(this.levels.subarray(0, this.frames), this.frameSamples / this.sampleRate);
  }
}

/** Pauses from frame levels (dBFS), with a threshold set from the track's own levels. */
export function findPauses(levels: Float32Array, frameSeconds: number): SpeechActivity {
  if (levels.length === 0) return { pauses: [], speechSeconds: 0, thresholdDb: FLOOR_DB };
  const sorted = Float32Array.from(levels).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.round(q * (sorted.length - 1)))]!;
  const background = at(BACKGROUND_PERCENTILE);
  const common = at(FOREGROUND_PERCENTILE);
  const sparse = common - background < MIN_CONTRAST_DB && common <= SPARSE_BACKGROUND_MAX_DB;
  const foreground = sparse ? at(SPARSE_FOREGROUND_PERCENTILE) : common;
  const total = levels.length * frameSeconds;
  if (foreground - background < MIN_CONTRAST_DB) {
    // Nothing stands out: all silence, or sound without gaps. Either way, no phrase structure.
    const silent = foreground <= FLOOR_DB + MIN_CONTRAST_DB;
    return { pauses: [], speechSeconds: silent ? 0 : round3(total), thresholdDb: round1(background) };
  }
  const threshold = background + THRESHOLD_SHARE * (foreground - background);
  const pauses: Pause[] = [];
  let quietFrom = -1;
  let speechFrames = 0;
  for (let i = 0; i <= levels.length; i++) {
    const quiet = i < levels.length && levels[i]! < threshold;
    if (i < levels.length && !quiet) speechFrames++;
    if (quiet && quietFrom < 0) quietFrom = i;
    if (!quiet && quietFrom >= 0) {
      if ((i - quietFrom) * frameSeconds >= MIN_PAUSE_SECONDS - 1e-9) {
        pauses.push({ startSeconds: round3(quietFrom * frameSeconds), endSeconds: round3(Math.min(total, i * frameSeconds)) });
      }
      quietFrom = -1;
    }
  }
  return { pauses, speechSeconds: round3(speechFrames * frameSeconds), thresholdDb: round1(threshold) };
}

/** Where clips may start and end, and what they were found from. */
export interface SpeechBoundaries {
  /** Times a clip may start at: just before speech resumes after a pause (or the video's start). */
  starts: number[];
  /** Times a clip may end at: just after a phrase or sentence stops (or the video's end). */
  ends: number[];
  source: 'transcript' | 'pauses';
}

/**
 * Clip boundaries from speech. With transcript segments, a boundary sits in each gap after a
 * segment that ends a sentence, placed inside the audio pause there when one was found; without
 * a transcript, every pause is one. Returns null when there is no phrase structure to follow.
 */
export function speechBoundaries(durationSeconds: number, pauses: readonly Pause[], transcript?: readonly TimedText[]): SpeechBoundaries | null {
  // Segments without a usable time span say nothing of where speech is: without any, the pauses decide.
  const timed = (transcript ?? []).filter(
    (segment) => Number.isFinite(segment.startSeconds) && Number.isFinite(segment.endSeconds) && segment.endSeconds > segment.startSeconds,
  );
  const gaps = timed.length ? sentenceGaps(durationSeconds, timed, pauses) : [...pauses];
  const inner = gaps.filter((gap) => gap.endSeconds > 0.05 && gap.startSeconds < durationSeconds - 0.05);
  if (inner.length === 0) return null;
  const starts = new Set<number>([0]);
  const ends = new Set<number>([round3(durationSeconds)]);
  for (const gap of inner) {
    const edge = Math.min(EDGE_SECONDS, (gap.endSeconds - gap.startSeconds) / 2);
    if (gap.endSeconds < durationSeconds - 0.05) starts.add(round3(Math.max(0, gap.endSeconds - edge)));
    if (gap.startSeconds > 0.05) ends.add(round3(Math.min(durationSeconds, gap.startSeconds + edge)));
  }
  // A track that starts or ends in silence: its first start and last end sit next to the speech.
  if (inner[0]!.startSeconds <= 0.05) starts.delete(0);
  if (inner.at(-1)!.endSeconds >= durationSeconds - 0.05) ends.delete(round3(durationSeconds));
  return {
    starts: [...starts].sort((a, b) => a - b),
    ends: [...ends].sort((a, b) => a - b),
    source: timed.length ? 'transcript' : 'pauses',
  };
}

/**
 * The silences after sentence ends in a transcript: between a segment ending a sentence and the
 * next segment, narrowed to the audio pause inside that gap when there is one. A segment that
 * does not end a sentence still ends one when a long pause follows it (speech without punctuation).
 */
function sentenceGaps(durationSeconds: number, segments: readonly TimedText[], pauses: readonly Pause[]): Pause[] {
  const ordered = [...segments].sort((a, b) => a.startSeconds - b.startSeconds);
  const gaps: Pause[] = [];
  if (ordered.length && ordered[0]!.startSeconds > 0.05) gaps.push({ startSeconds: 0, endSeconds: ordered[0]!.startSeconds });
  // Segments may overlap: speech goes on until the latest end so far, not the current segment's.
  let spokenUntil = 0;
  for (let i = 0; i < ordered.length; i++) {
    const segment = ordered[i]!;
    spokenUntil = Math.max(spokenUntil, segment.endSeconds);
    const next = ordered[i + 1];
    if (next && next.startSeconds < spokenUntil) continue;
    const gapEnd = next ? next.startSeconds : durationSeconds;
    const gap = { startSeconds: spokenUntil, endSeconds: Math.max(spokenUntil, gapEnd) };
    const audio = pauses.find((pause) => pause.startSeconds < gap.endSeconds + 0.15 && pause.endSeconds > gap.startSeconds - 0.15);
    const endsSentence = SENTENCE_END.test(segment.text) || (audio !== undefined && audio.endSeconds - audio.startSeconds >= 2 * MIN_PAUSE_SECONDS);
    if (!endsSentence && next) continue;
    // Inside the audio pause where it overlaps the gap. Segments often meet with no gap at all
    // (one ends where the next starts) while the sound has its pause just beside: the measured
    // silence is then the boundary, since cutting inside it cuts no word. Else the gap itself.
    const narrowed = audio ? { startSeconds: Math.max(gap.startSeconds, audio.startSeconds), endSeconds: Math.min(gap.endSeconds, audio.endSeconds) } : gap;
    if (narrowed.endSeconds > narrowed.startSeconds) gaps.push(narrowed);
    else gaps.push(audio && gap.endSeconds - gap.startSeconds < 0.05 ? { startSeconds: audio.startSeconds, endSeconds: audio.endSeconds } : gap);
  }
  return gaps;
}

/** Whether a time falls inside one of the pauses (with a tolerance in seconds). */
export function insidePause(seconds: number, pauses: readonly Pause[], tolerance = 0.05): boolean {
  return pauses.some((pause) => seconds >= pause.startSeconds - tolerance && seconds <= pause.endSeconds + tolerance);
}

/** The transcript's words (or segments) spoken inside [from, to], joined. */
export function textBetween(items: readonly TimedText[], from: number, to: number): string {
  return items
    .filter((item) => (item.startSeconds + item.endSeconds) / 2 >= from && (item.startSeconds + item.endSeconds) / 2 <= to)
    .map((item) => item.text.trim())
    .filter(Boolean)
    .join(' ');
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
