/**
 * The clip sampler's failures, with real ffmpeg: a source that cannot be decoded fails for good,
 * a full disk for the clip's sound is the machine's condition and is tried again.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PermanentJobError } from '@clipline/shared';
import { sampleClip, type ClipSampling } from '../src/render/clip-sampler.js';
import { generateVideo, TOOLS } from '../../../tests/helpers/media.js';

let dir: string;
let video: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-clip-sampler-'));
  video = (await generateVideo({ path: path.join(dir, 'talk.mp4'), segments: [2, 2], width: 160, height: 90 })).path;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function outcome(options: Partial<ClipSampling>): Promise<{ frames: number } | { error: Error }> {
  let frames = 0;
  try {
    for await (const batch of sampleClip(TOOLS, {
      file: video,
      startSeconds: 0.5,
      durationSeconds: 2,
      fps: 10,
      width: 32,
      height: 18,
      batchFrames: 4,
      ...options,
    })) {
      frames += batch.count;
      batch.recycle?.(batch.frames);
    }
    return { frames };
  } catch (error) {
    return { error: error as Error };
  }
}

it('samples the span and writes its sound', async () => {
  expect(await outcome({ audioTarget: path.join(dir, 'sound.mp4') })).toEqual({ frames: 20 });
});

it('tries again when the sound cannot be written for want of space, and fails for good on a file that is no video', async () => {
  const full = await outcome({ audioTarget: '/dev/full' });
  expect('error' in full && full.error.message).toMatch(/^decoding the clip failed \(ffmpeg: .*No space left on device/s);
  expect('error' in full && full.error instanceof PermanentJobError).toBe(false);

  const junk = path.join(dir, 'junk.mp4');
  await writeFile(junk, 'not a video at all');
  const broken = await outcome({ file: junk });
  expect('error' in broken && broken.error).toBeInstanceOf(PermanentJobError);
});
