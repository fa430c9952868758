/**
 * The audio a transcript is made from. An AAC track (what most uploads carry) is copied as it is
 * into an `.m4a`, which the transcription API takes: no decode, no encode, and no second lossy
 * generation. From an MP4 the copy is made in this process ({@link copyAacTrack}); from other
 * containers, or an MP4 whose index the reader leaves alone, by an ffmpeg child process.
 * Anything else, a copy past the upload limit, or a track that starts after the picture (a copy
 * keeps that delay only in its edit list, which decoders drop), is encoded by ffmpeg to mono
 * 16 kHz MP3 at 32 kb/s on the source's clock, so an hour and three quarters fit under the limit;
 * longer speech at a lower rate.
 */
import { spawn } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  cpuTicksOf,
  DEFAULT_STALL_TIMEOUT_MS,
  endSpan,
  followProgress,
  mp4TrackDelaySeconds,
  PermanentJobError,
  readMp4Movie,
  StallWatchdog,
  startChildSpan,
} from '@clipline/shared';
import { copyAacTrack, LATE_START_SECONDS } from './m4a-copy.js';

/** Raised when the source has no audio stream to extract. */
export class NoAudioTrack extends Error {}

/**
 * Mono MP3, LAME quality 7 ("fast, ok quality"): a third less CPU than its default for speech. On
 * the source's clock, as the analysis hears it: a track that starts late begins with that much
 * silence, so the transcript's times are the picture's.
 */
function speechEncoding(rate: SpeechRate): string[] {
  return [
    '-af',
    'aresample=async=1:first_pts=0',
    '-ac',
    '1',
    '-ar',
    String(rate.sampleRate),
    '-c:a',
    'libmp3lame',
    '-b:a',
    `${rate.kbps}k`,
    '-compression_level',
    '7',
  ];
}

interface SpeechRate {
  kbps: number;
  sampleRate: number;
}

/** 32 kb/s at 16 kHz: an hour and three quarters fit under the upload limit. */
const SPEECH_RATE: SpeechRate = { kbps: 32, sampleRate: 16_000 };

/** For speech longer than that, the rates tried next, highest first: 8 kb/s at 8 kHz fits about seven hours. */
const LOWER_SPEECH_RATES: readonly SpeechRate[] = [
  { kbps: 24, sampleRate: 16_000 },
  { kbps: 16, sampleRate: 16_000 },
  { kbps: 8, sampleRate: 8_000 },
];

/** OpenAI's upload limit is 25 MB; the multipart envelope and the other fields need a little of it. */
export const COPY_LIMIT_BYTES = 24 * 1024 * 1024;

/** The first audio stream of the first input, as ffmpeg describes it at level info: `Stream #0:1(und): Audio: aac (LC) …`. */
const INPUT_AUDIO = /^\s*Stream #0:\d+\S*: Audio: ([a-z0-9_]+)/m;

interface Run {
  code: number | null;
  stderr: string;
  /** Set when the run was stopped for making no progress: the limit it passed, in milliseconds. */
  stalledAfterMs?: number;
}

/**
 * One ffmpeg run writing to a file. It reports its progress on stdout (`-progress`, twice a
 * second); a run whose output has not grown (the bytes written, the time reached) and that used
 * next to no CPU for `stallTimeoutMs` (a source on a hung mount), or none for ten minutes while
 * busy, is stopped, as the CPU worker's runs are. Newer ffmpeg reports on schedule even while
 * its read hangs, so a report alone is not progress. An abort kills it (SIGKILL) and waits for it.
 */
function runFfmpeg(ffmpegPath: string, args: string[], options: SpeechOptions): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath, ['-nostdin', '-hide_banner', '-nostats', '-progress', 'pipe:1', '-y', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.signal ? { signal: options.signal, killSignal: 'SIGKILL' as const } : {}),
    });
    const watchdog = new StallWatchdog(
      options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      () => child.kill('SIGKILL'),
      () => cpuTicksOf(child.pid),
    );
    watchdog.waiting();
    followProgress(child.stdout, watchdog, ['total_size', 'out_time_us']);
    let stderr = '';
    // The head names the input's streams; the tail says why a run failed.
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.length > 16_000) stderr = stderr.slice(0, 8000) + stderr.slice(-8000);
    });
    let failure: Error | undefined;
    child.once('error', (error) => {
      // Not started, or aborted (killed): settled once it is gone, so its files can go after it.
      failure = error;
      if (child.pid === undefined) {
        watchdog.stop();
        reject(error);
      }
    });
    child.once('close', (code) => {
      watchdog.stop();
      if (failure) return reject(failure);
      resolve({ code, stderr, ...(watchdog.fired ? { stalledAfterMs: watchdog.limitMs } : {}) });
    });
  });
}

/** Raised when ffmpeg made no progress and was stopped: the machine's condition, tried again. */
function stalled(run: Run): Error | undefined {
  if (run.stalledAfterMs === undefined) return undefined;
  return new Error(`extracting the speech stalled: ffmpeg made no progress for ${run.stalledAfterMs / 1000} s and was stopped`);
}

interface SpeechOptions {
  signal?: AbortSignal | undefined;
  /** Milliseconds an ffmpeg run may go without progress (default a minute). */
  stallTimeoutMs?: number | undefined;
}

/**
 * Writes the speech of `source` into `dir` and returns the file: `speech.m4a` (the AAC track
 * copied) or `speech.mp3` (encoded). Throws {@link NoAudioTrack} when there is no audio stream.
 */
export async function extractSpeech(
  ffmpegPath: string,
  source: string,
  dir: string,
  options: SpeechOptions & { copyLimitBytes?: number } = {},
): Promise<string> {
  const copied = path.join(dir, 'speech.m4a');
  const limit = options.copyLimitBytes ?? COPY_LIMIT_BYTES;
  const span = startChildSpan('m4a copy', { attributes: { 'file.path': source } });
  // A file this process cannot read is ffmpeg's to describe, in the error below.
  const inProcess = await copyAacTrack(source, copied, limit).catch(() => undefined);
  span.setAttribute('clipline.m4a_copy', inProcess ? (inProcess.copied ? 'copied' : inProcess.reason) : 'left to ffmpeg');
  endSpan(span);
  options.signal?.throwIfAborted();
  if (inProcess?.copied) return copied;
  if (inProcess?.reason === 'no audio') throw new NoAudioTrack();
  if (!inProcess) {
    // Bounded just past the limit (-fs): a copy too large is encoded instead, and never fills the scratch disk.
    const bound = String(limit + 1024 * 1024);
    const copy = await runFfmpeg(ffmpegPath, ['-v', 'info', '-i', source, '-map', '0:a:0?', '-vn', '-c:a', 'copy', '-fs', bound, copied], options);
    const stall = stalled(copy);
    if (stall) throw stall;
    if (/does not contain any stream/.test(copy.stderr)) throw new NoAudioTrack();
    const codec = INPUT_AUDIO.exec(copy.stderr)?.[1];
    if (copy.code === 0 && codec === 'aac' && (await stat(copied)).size <= limit && !(await startsLate(copied))) return copied;
    await rm(copied, { force: true });
  }
  return encodeSpeech(ffmpegPath, source, path.join(dir, 'speech.mp3'), limit, options);
}

/** Whether ffmpeg's copy starts late (its edit list opens with the delay): it is encoded instead. */
async function startsLate(copy: string): Promise<boolean> {
  const movie = await readMp4Movie(copy).catch(() => undefined);
  const track = movie?.tracks.find((candidate) => candidate.handler === 'soun');
  return movie !== undefined && track !== undefined && mp4TrackDelaySeconds(movie, track) > LATE_START_SECONDS;
}

/**
 * Encodes the speech to MP3 at {@link SPEECH_RATE}; past the upload limit (long sources), again
 * at the highest lower rate its size says fits. Speech too long even for the lowest is refused
 * with a reason: the clips are then chosen without a transcript.
 */
async function encodeSpeech(ffmpegPath: string, source: string, target: string, limit: number, options: SpeechOptions): Promise<string> {
  const encode = async (rate: SpeechRate) => {
    const run = await runFfmpeg(ffmpegPath, ['-v', 'error', '-i', source, '-map', '0:a:0?', '-vn', ...speechEncoding(rate), target], options);
    const stall = stalled(run);
    if (stall) throw stall;
    if (run.code !== 0) {
      // ffmpeg names the source by its path; the reason reaches API clients, who get its name alone.
      const words = run.stderr.trim().split('\n').at(-1)?.replaceAll(source, path.basename(source));
      throw new PermanentJobError(`audio extraction failed: ${words || `exit ${run.code}`}`);
    }
    return (await stat(target)).size;
  };
  const size = await encode(SPEECH_RATE);
  if (size <= limit) return target;
  // Sizes scale with the rate; a twentieth kept for the frames' headers.
  const fitting = LOWER_SPEECH_RATES.find((rate) => (size * rate.kbps) / SPEECH_RATE.kbps <= limit * 0.95);
  const smaller = fitting ? await encode(fitting) : undefined;
  if (smaller !== undefined && smaller <= limit) return target;
  await rm(target, { force: true });
  const lowest = LOWER_SPEECH_RATES.at(-1)!;
  throw new PermanentJobError(
    `the sound is too long to transcribe in one upload: ${megabytes(size)} as MP3 at ${SPEECH_RATE.kbps} kb/s, ` +
      `about ${megabytes((size * lowest.kbps) / SPEECH_RATE.kbps)} even at ${lowest.kbps} kb/s, over the ${megabytes(limit)} limit`,
  );
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(bytes < 1024 ** 2 ? 3 : 1)} MiB`;
}
