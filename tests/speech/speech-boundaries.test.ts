/**
 * Pauses and clip boundaries on real speech: sentences spoken by espeak-ng with known silences
 * between them, decoded by the real ffmpeg. The voice-activity pass must find every silence
 * between sentences and no pause inside one; boundaries built from the pauses (and from a
 * transcript's sentences) must all fall between sentences.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { speechBoundaries } from '@clipline/shared';
import { LoudnessReader, type LoudnessTrack } from '../../apps/worker-cpu/src/analysis/audio-loudness.js';
import { sampleFrames } from '../../apps/worker-cpu/src/analysis/frame-sampler.js';
import { TOOLS } from '../helpers/media.js';
import { betweenSentences, generateSpokenVideo, type SpokenVideo } from '../helpers/speech-media.js';

let dir: string;
let video: SpokenVideo;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-speech-test-'));
  video = await generateSpokenVideo({ path: path.join(dir, 'talk.mp4') });
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The loudness and pauses analysis measures: the audio outputs of the frame sampler's ffmpeg. */
async function measured(file: string): Promise<LoudnessTrack> {
  const reader = new LoudnessReader({ speech: true });
  const dropped: string[] = [];
  const audio = {
    log: (chunk: string) => reader.log(chunk),
    pcm: (chunk: Buffer) => reader.pcm(chunk),
    dropped: (reason: string) => void dropped.push(reason),
  };
  for await (const _batch of sampleFrames(TOOLS, { file, fps: 2, width: 32, height: 18, batchFrames: 16, audio }));
  expect(dropped).toEqual([]);
  return reader.result();
}

it('finds every silence between sentences, and no pause inside a sentence', async () => {
  const track = await measured(video.path);
  const pauses = track.speech!.pauses;
  for (let i = 0; i + 1 < video.sentences.length; i++) {
    const gap = { from: video.sentences[i]!.endSeconds, to: video.sentences[i + 1]!.startSeconds };
    expect(pauses.some((pause) => pause.startSeconds < gap.to && pause.endSeconds > gap.from)).toBe(true);
  }
  for (const pause of pauses) {
    const middle = (pause.startSeconds + pause.endSeconds) / 2;
    expect(betweenSentences(video, middle, 0.1)).toBe(true);
  }
  expect(track.speech!.speechSeconds).toBeGreaterThan(video.sentences.reduce((sum, s) => sum + s.endSeconds - s.startSeconds, 0) * 0.6);
});

it('puts every boundary between sentences, from pauses alone and from a transcript', async () => {
  const track = await measured(video.path);
  const fromPauses = speechBoundaries(video.durationSeconds, track.speech!.pauses)!;
  expect(fromPauses.source).toBe('pauses');
  // A transcript whose segments are the sentences, as a speech model would time them.
  const transcript = video.sentences.map((sentence) => ({ startSeconds: sentence.startSeconds, endSeconds: sentence.endSeconds, text: sentence.text }));
  const fromTranscript = speechBoundaries(video.durationSeconds, track.speech!.pauses, transcript)!;
  expect(fromTranscript.source).toBe('transcript');
  for (const boundaries of [fromPauses, fromTranscript]) {
    expect(boundaries.starts.length).toBeGreaterThanOrEqual(video.sentences.length - 1);
    for (const t of [...boundaries.starts, ...boundaries.ends]) expect(betweenSentences(video, t)).toBe(true);
  }
});
