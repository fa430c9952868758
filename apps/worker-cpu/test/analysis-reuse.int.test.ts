import { createHash, randomUUID } from 'node:crypto';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { AnalysisRepository, VideosRepository } from '@clipline/shared';
import { analyzeWithReuse } from '../src/analysis/analysis-reuse.js';
import type { AnalysisSettings } from '../src/analysis/analyze-video.js';
import { CpuPool } from '../src/analysis/pool.js';
import { generateVideo, TOOLS } from '../../../tests/helpers/media.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let pool: CpuPool;
let settings: AnalysisSettings;
let analyses: AnalysisRepository;
let videos: VideosRepository;
let source: string;

beforeAll(async () => {
  env = await createTestEnvironment();
  pool = new CpuPool({ threads: 2 });
  settings = { tools: TOOLS, pool, fps: 10, width: 160, maxSeconds: 3600 };
  analyses = new AnalysisRepository(env.db);
  videos = new VideosRepository(env.db);
  source = (await generateVideo({ path: path.join(env.config.storageDir, 'first.mp4'), segments: [3, 4, 3, 5] })).path;
});

afterAll(async () => {
  await pool.close();
  await env.cleanup();
});

async function newVideo(): Promise<string> {
  const id = randomUUID();
  await videos.create({ id, source: 'test', title: null, steps: ['ingest', 'analyze', 'persist'] });
  return id;
}

async function storedHash(id: string): Promise<string | null> {
  const { rows } = await sql<{ content_sha256: string | null }>`select content_sha256 from videos where id = ${id}`.execute(env.db);
  return rows[0]?.content_sha256 ?? null;
}

describe('analyzeWithReuse', () => {
  let firstId: string;
  let first: Awaited<ReturnType<typeof analyzeWithReuse>>;

  beforeAll(async () => {
    firstId = await newVideo();
    first = await analyzeWithReuse(settings, analyses, { videoId: firstId, file: source, sizeBytes: 123 });
  });

  it('stores the content hash, every frame metric and the loudness of a fresh analysis', async () => {
    const sha = createHash('sha256')
      .update(await readFile(source))
      .digest('hex');
    expect(first).toMatchObject({ contentSha256: sha, reusedFrom: null });
    expect(await storedHash(firstId)).toBe(sha);
    expect(await analyses.countFrameMetrics(firstId)).toBe(first.sampledFrames);
    expect(first.sampledFrames).toBe(150);
    const loudness = await analyses.findAudioLoudness(firstId);
    expect(loudness!.shortTermLufs.length).toBeGreaterThan(25);
    expect(first.cutSeconds).toEqual([3, 7, 10]);
  });

  it('leaves the same rows when the analysis of a video is retried', async () => {
    const again = await analyzeWithReuse(settings, analyses, { videoId: firstId, file: source, sizeBytes: 123 });
    expect(again).toEqual(first);
    expect(await analyses.countFrameMetrics(firstId)).toBe(150);
  });

  it('reuses the finished analysis for the same bytes without decoding them again', async () => {
    const copy = path.join(env.config.storageDir, 'second.mp4');
    await copyFile(source, copy);
    const secondId = await newVideo();
    // No ffmpeg at all: the only way to succeed is to reuse.
    const noDecoder: AnalysisSettings = { ...settings, tools: { ffmpegPath: '/nonexistent/ffmpeg', ffprobePath: '/nonexistent/ffprobe' } };
    const progress: number[] = [];
    const second = await analyzeWithReuse(noDecoder, analyses, { videoId: secondId, file: copy, sizeBytes: 456 }, { onProgress: (f) => void progress.push(f) });
    expect(second.reusedFrom).toBe(firstId);
    expect({ ...second, reusedFrom: null, metadata: { ...second.metadata, sizeBytes: 123 } }).toEqual(first);
    expect(second.metadata.sizeBytes).toBe(456);
    expect(await storedHash(secondId)).toBe(first.contentSha256);
    expect(await analyses.countFrameMetrics(secondId)).toBe(150);
    expect(await analyses.findAudioLoudness(secondId)).toEqual(await analyses.findAudioLoudness(firstId));
    expect(progress.length).toBeGreaterThan(0);
  });

  it('analyses again when the clip options differ, or the bytes do', async () => {
    const otherOptions = await analyzeWithReuse(settings, analyses, { videoId: await newVideo(), file: source, sizeBytes: 1, clipOptions: { clipCount: 1 } });
    expect(otherOptions.reusedFrom).toBeNull();
    expect(otherOptions.clipCandidates.length).toBeLessThanOrEqual(1);
    const other = await generateVideo({ path: path.join(env.config.storageDir, 'other.mp4'), segments: [3, 3] });
    const otherBytes = await analyzeWithReuse(settings, analyses, { videoId: await newVideo(), file: other.path, sizeBytes: 1 });
    expect(otherBytes.reusedFrom).toBeNull();
    expect(otherBytes.contentSha256).not.toBe(first.contentSha256);
  });
});
