/**
 * Spoken test media: sentences synthesised by espeak-ng, trimmed to their sound with sox, joined
 * with silences of known length, over a talking-head-like picture (one shot, little motion).
 * The sentences' spans are the ground truth: a clip boundary must fall between them.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Eight sentences with no commas (espeak pauses at commas): each a whole thought. */
export const SPOKEN_SENTENCES = [
  'Welcome to the show where we talk about building things that last.',
  'Today I want to tell you about the worst outage we ever had.',
  'It started on a quiet Sunday morning with a single alert.',
  'Nobody expected that one full disk would take down every service.',
  'We spent six hours chasing the wrong database before we found it.',
  'The fix took two minutes once we knew where to look.',
  'So here is the lesson that I want you to remember from this story.',
  'Watch your disks before they watch you and keep your alerts honest.',
] as const;

export interface SpokenVideo {
  path: string;
  durationSeconds: number;
  /** Where each sentence is heard, in seconds. */
  sentences: { text: string; startSeconds: number; endSeconds: number }[];
}

export interface SpokenVideoSpec {
  path: string;
  sentences?: readonly string[];
  /** Silence between sentences. @defaultValue 1 */
  pauseSeconds?: number;
  /** Silence before the first and after the last sentence. @defaultValue 0.5 */
  edgeSeconds?: number;
  /** Words per minute of the voice. @defaultValue 150 */
  wordsPerMinute?: number;
}

const SAMPLE_RATE = 22_050;

async function seconds(file: string): Promise<number> {
  const { stdout } = await run('soxi', ['-D', file]);
  return Number.parseFloat(stdout.trim());
}

/** Makes the video; needs espeak-ng, sox and ffmpeg (installed by `.ci/run`). */
export async function generateSpokenVideo(spec: SpokenVideoSpec): Promise<SpokenVideo> {
  const texts = spec.sentences ?? SPOKEN_SENTENCES;
  const pause = spec.pauseSeconds ?? 1;
  const edge = spec.edgeSeconds ?? 0.5;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-speech-'));
  try {
    const pieces: string[] = [];
    const silence = async (name: string, length: number) => {
      const file = path.join(dir, name);
      await run('sox', ['-n', '-r', String(SAMPLE_RATE), '-c', '1', '-b', '16', file, 'trim', '0', String(length)]);
      return file;
    };
    const gap = await silence('gap.wav', pause);
    const rim = await silence('edge.wav', edge);
    const sentences: SpokenVideo['sentences'] = [];
    let at = edge;
    pieces.push(rim);
    for (const [index, text] of texts.entries()) {
      const raw = path.join(dir, `raw-${index}.wav`);
      const spoken = path.join(dir, `sentence-${index}.wav`);
      await run('espeak-ng', ['-v', 'en-us', '-s', String(spec.wordsPerMinute ?? 150), '-w', raw, text]);
      // Trimmed to the voice: leading and trailing silence would blur the ground truth.
      await run('sox', [
        raw,
        '-r',
        String(SAMPLE_RATE),
        '-c',
        '1',
        '-b',
        '16',
        spoken,
        'silence',
        '1',
        '0.02',
        '0.5%',
        'reverse',
        'silence',
        '1',
        '0.02',
        '0.5%',
        'reverse',
      ]);
      const length = await seconds(spoken);
      sentences.push({ text, startSeconds: at, endSeconds: at + length });
      at += length;
      pieces.push(spoken);
      if (index < texts.length - 1) {
        pieces.push(gap);
        at += pause;
      }
    }
    pieces.push(rim);
    at += edge;
    const speech = path.join(dir, 'speech.wav');
    await run('sox', [...pieces, speech]);
    await run('ffmpeg', [
      '-nostdin',
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x180:rate=15',
      '-i',
      speech,
      '-map',
      '0:v',
      '-map',
      '1:a',
      '-t',
      String(at),
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-pix_fmt',
      'yuv420p',
      '-c:a',
      'aac',
      '-b:a',
      '96k',
      spec.path,
    ]);
    return { path: spec.path, durationSeconds: at, sentences };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Whether a time falls between sentences (in silence), with a tolerance in seconds. */
export function betweenSentences(video: SpokenVideo, seconds: number, tolerance = 0.05): boolean {
  return video.sentences.every((sentence) => seconds <= sentence.startSeconds + tolerance || seconds >= sentence.endSeconds - tolerance);
}
