/**
 * The real videos of ../shared/fixtures/video (skipped locally when missing, failing under CI=true): analysis gives identical results
 * on two runs, and every clip it proposes renders into a file that decodes, has the requested
 * aspect and the clip's duration within 0.1 s.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ClipAspect } from '@clipline/shared';
import { jest } from '@jest/globals';

// Two analyses and every clip's render per file: a talking head now gets the clips it asks for.
jest.setTimeout(240_000);
import { analyzeVideo, type AnalysisSettings } from '../src/analysis/analyze-video.js';
import { CpuPool } from '../src/analysis/pool.js';
import { renderClip } from '../src/render/render-clip.js';
import { ffprobeDuration, TOOLS } from '../../../tests/helpers/media.js';
import { describeWithFixtures, fixtures } from '../../../tests/helpers/fixtures.js';

const run = promisify(execFile);
const needed = fixtures('video', ['bbb_h264_aac_60s.mp4', 'bbb_vp8_vorbis_30s.webm', 'bbb_hevc_aac_10s.mp4', 'talking_head_h264_aac_24s.mp4']);
const ASPECTS: [ClipAspect, number][] = [
  ['9:16', 9 / 16],
  ['1:1', 1],
  ['16:9', 16 / 9],
];

let pool: CpuPool;
let settings: AnalysisSettings;
let dir: string;

beforeAll(async () => {
  pool = new CpuPool({ threads: 2 });
  settings = { tools: TOOLS, pool, fps: 10, width: 160, maxSeconds: 4 * 3600 };
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-fixtures-'));
});

afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

describeWithFixtures(needed, 'real videos', () => {
  it.each(needed.files)('%s: identical analyses, and every proposed clip renders to spec', async (file) => {
    const first = await analyzeVideo(settings, { file, sizeBytes: 1 });
    const second = await analyzeVideo(settings, { file, sizeBytes: 1 });
    expect(second).toEqual(first);
    expect(Math.abs(first.metadata.durationSeconds - (await ffprobeDuration(file)))).toBeLessThan(0.1);
    expect(first.clipCandidates.length).toBeGreaterThan(0);
    // Each clip in another aspect, so a video with three clips covers all three.
    for (const [index, clip] of first.clipCandidates.entries()) {
      const [aspect, ratio] = ASPECTS[index % ASPECTS.length]!;
      const videoFile = path.join(dir, `${path.basename(file)}-${index}.mp4`);
      const rendered = await renderClip(
        { tools: settings.tools, pool },
        { source: file, startSeconds: clip.startSeconds, endSeconds: clip.endSeconds, aspect, videoFile, thumbnailFile: `${videoFile}.jpg` },
      );
      const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', videoFile, '-f', 'null', '-']);
      expect(stderr.trim()).toBe('');
      expect(rendered.width / rendered.height).toBeCloseTo(ratio, 10);
      expect(Math.abs((await ffprobeDuration(videoFile)) - (clip.endSeconds - clip.startSeconds))).toBeLessThan(0.1);
      expect(existsSync(`${videoFile}.jpg`)).toBe(true);
    }
  });
});
