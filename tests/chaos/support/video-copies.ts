/**
 * Many small videos at little cost: a few are generated with known cuts (generateBatch), and the
 * rest are stream copies of them (no re-encoding) with a title tag of their own. Every copy has
 * bytes of its own, so no video reuses another's analysis, and the cuts of its original.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { GeneratedVideo } from '../../helpers/media.js';
import { generateBatch } from './video-batch.js';

const run = promisify(execFile);
/** ffmpeg copies made at once: the machine has two cores and other work to do. */
const PARALLEL_COPIES = 2;

async function copyOf(original: GeneratedVideo, file: string, title: string): Promise<GeneratedVideo> {
  await run('ffmpeg', ['-v', 'error', '-y', '-i', original.path, '-map', '0', '-c', 'copy', '-metadata', `title=${title}`, file]);
  return { ...original, path: file };
}

/** `count` distinct videos of about 4-5 s (320x240, two cuts each) in `dir`, from `originals` generated ones. */
export async function generateCopies(dir: string, count: number, originals = 4): Promise<GeneratedVideo[]> {
  const sources = await generateBatch(dir, Math.min(originals, count));
  const videos: GeneratedVideo[] = [...sources];
  let next = videos.length;
  const copyNext = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      videos[index] = await copyOf(sources[index % sources.length]!, path.join(dir, `copy-${index}.mp4`), `chaos copy ${index}`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_COPIES }, copyNext));
  return videos;
}
