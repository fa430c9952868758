import { VoiceActivityDetector, type SpeechActivity } from '@clipline/shared/clips';

/** Short-term loudness (EBU R128, 3 s sliding window) of a video's first audio stream. */
export interface LoudnessTrack {
  /** Seconds between two values. */
  stepSeconds: number;
  /** Value `i` is the loudness of the 3 s ending at `(i + 1) * stepSeconds`, in LUFS (-120.7 is silence). */
  shortTermLufs: number[];
  integratedLufs: number | null;
  loudnessRangeLu: number | null;
  /** Pauses in speech from a voice-activity pass over the same decode; absent when not asked for. */
  speech?: SpeechActivity;
}

/** ebur128 reports every 100 ms of audio. */
const EBUR128_INTERVAL_SECONDS = 0.1;

const FRAME_LINE = /\bt:\s*([0-9.]+)\s+TARGET:.*?\bS:\s*(-?[0-9.]+|-?inf|nan)/;
const INTEGRATED_LINE = /^\s*I:\s*(-?[0-9.]+|-?inf|nan)\s+LUFS/;
const RANGE_LINE = /^\s*LRA:\s*(-?[0-9.]+|-?inf|nan)\s+LU\b/;

/**
 * Reads ffmpeg's ebur128 log line by line (chunks split lines anywhere). Keeps one short-term
 * value every `stepSeconds`, which is all highlight scoring needs of a 3 s window, and the
 * summary's integrated loudness and loudness range.
 */
export class Ebur128Parser {
  private readonly values: number[] = [];
  private integrated: number | null = null;
  private range: number | null = null;
  private inSummary = false;
  private partial = '';
  private readonly ticksPerStep: number;

  constructor(readonly stepSeconds = 0.5) {
    this.ticksPerStep = Math.max(1, Math.round(stepSeconds / EBUR128_INTERVAL_SECONDS));
  }

  push(chunk: string): void {
    const lines = (this.partial + chunk).split(/\r?\n|\r/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  private line(line: string): void {
    if (line.includes('Summary:')) {
      this.inSummary = true;
      return;
    }
    if (this.inSummary) {
      const integrated = INTEGRATED_LINE.exec(line);
      if (integrated) this.integrated = finiteOrNull(integrated[1]);
      const range = RANGE_LINE.exec(line);
      if (range) this.range = finiteOrNull(range[1]);
      return;
    }
    const frame = FRAME_LINE.exec(line);
    if (!frame) return;
    const tick = Math.round(Number(frame[1]) / EBUR128_INTERVAL_SECONDS);
    if (tick <= 0 || tick % this.ticksPerStep !== 0) return;
    const slot = tick / this.ticksPerStep - 1;
    // A gap in the log (it should not happen) repeats the last value rather than shifting time.
    while (this.values.length < slot) this.values.push(this.values.at(-1) ?? SILENCE_LUFS);
    this.values[slot] = finiteOrNull(frame[2]) ?? SILENCE_LUFS;
  }

  result(): LoudnessTrack {
    if (this.partial) this.line(this.partial);
    this.partial = '';
    return { stepSeconds: this.stepSeconds, shortTermLufs: this.values, integratedLufs: this.integrated, loudnessRangeLu: this.range };
  }
}

/** What ebur128 reports for digital silence. */
export const SILENCE_LUFS = -120.7;

function finiteOrNull(text: string | undefined): number | null {
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

/** Sample rate of the PCM the voice-activity pass reads: speech needs no more. */
const SPEECH_SAMPLE_RATE = 16_000;

/**
 * ffmpeg outputs, after its input, measuring the first audio stream: the `ebur128` filter into a
 * null output (its log carries the values), and with `speechTarget` the same decode as 16 kHz mono
 * PCM for the voice-activity pass. `optional` maps the stream with `?`: a null output without it
 * is fine, but a PCM output without it makes ffmpeg refuse to start ("does not contain any stream").
 * `maxSeconds` bounds the PCM's length.
 */
export function loudnessOutputs(speechTarget: string | null, optional = false, maxSeconds?: number): string[] {
  const stream = optional ? '0:a:0?' : '0:a:0';
  const outputs = ['-map', stream, '-vn', '-sn', '-dn', '-af', 'ebur128', '-f', 'null', '-'];
  if (speechTarget) {
    // PCM has no timestamps: its samples are laid on the source's clock (silence before an audio
    // track that starts late, and in its gaps), so a pause found at 4 s is at 4 s in the video.
    // Bounded by the longest source taken: a timestamp that jumps far ahead (a damaged file) is
    // filled with silence only up to there.
    const onSourceClock = ['-af', 'aresample=async=1:first_pts=0', ...(maxSeconds ? ['-t', String(Math.ceil(maxSeconds))] : [])];
    outputs.push('-map', stream, '-vn', '-sn', '-dn', ...onSourceClock, '-ac', '1', '-ar', String(SPEECH_SAMPLE_RATE), '-f', 's16le', speechTarget);
  }
  return outputs;
}

/** Reads what {@link loudnessOutputs} produce: the filter's log lines and, with `speech`, the PCM. */
export class LoudnessReader {
  private readonly parser: Ebur128Parser;
  private readonly voice: VoiceActivityDetector | null;

  constructor(options: { stepSeconds?: number; speech?: boolean } = {}) {
    this.parser = new Ebur128Parser(options.stepSeconds);
    this.voice = options.speech ? new VoiceActivityDetector(SPEECH_SAMPLE_RATE) : null;
  }

  log(chunk: string): void {
    this.parser.push(chunk);
  }

  pcm(chunk: Buffer): void {
    this.voice?.push(chunk);
  }

  result(): LoudnessTrack {
    const track = this.parser.result();
    return this.voice ? { ...track, speech: this.voice.result() } : track;
  }
}
