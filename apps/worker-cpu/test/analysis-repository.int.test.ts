import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { AnalysisRepository, portableSql, VideosRepository, type FrameMetricRecord } from '@clipline/shared';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let analyses: AnalysisRepository;
let videos: VideosRepository;

beforeAll(async () => {
  env = await createTestEnvironment();
  analyses = new AnalysisRepository(env.db);
  videos = new VideosRepository(env.db);
});

afterAll(async () => {
  await env.cleanup();
});

async function newVideo(): Promise<string> {
  const id = randomUUID();
  await videos.create({ id, source: `/videos/${id}.mp4`, title: null, steps: ['ingest', 'analyze', 'persist'] });
  return id;
}

function frames(count: number, luma = 10): FrameMetricRecord[] {
  return Array.from({ length: count }, (_, frameIndex) => ({
    frameIndex,
    timeSeconds: frameIndex / 10,
    luma: luma + (frameIndex % 7),
    sharpness: frameIndex * 1.5,
    motion: frameIndex % 3,
    contentScore: frameIndex % 11,
    dhash: frameIndex.toString(16).padStart(16, '0'),
    histogram: Array.from({ length: 16 }, (_, bin) => (bin === frameIndex % 16 ? 1 : 0)),
  }));
}

describe('AnalysisRepository frame metrics', () => {
  it('writes more rows than one statement can bind, in chunks under the parameter limit', async () => {
    const id = await newVideo();
    // 9 columns a row: 10 000 rows would need 90 000 parameters in one statement.
    const repository = new AnalysisRepository(env.db, { rowsPerInsert: 100_000 });
    const statements = await repository.saveFrameMetrics(id, frames(10_000));
    const maxParameters = portableSql(env.db).maxParameters;
    expect(repository.rowsPerInsert * 9).toBeLessThanOrEqual(maxParameters);
    expect(statements).toBe(Math.ceil(10_000 / Math.floor(maxParameters / 9)));
    expect(await analyses.countFrameMetrics(id)).toBe(10_000);
    const [first] = await analyses.listFrameMetrics(id, 4321, 1);
    expect(first).toMatchObject({ frameIndex: 4321, timeSeconds: 432.1, dhash: (4321).toString(16).padStart(16, '0') });
    expect(first!.histogram).toHaveLength(16);
  });

  it('is idempotent: writing the same frames again replaces them, and trimming drops a longer attempt tail', async () => {
    const id = await newVideo();
    await analyses.saveFrameMetrics(id, frames(500, 10));
    await analyses.saveFrameMetrics(id, frames(400, 99));
    await analyses.trimFrameMetrics(id, 400);
    expect(await analyses.countFrameMetrics(id)).toBe(400);
    const rows = await analyses.listFrameMetrics(id);
    expect(rows.map((row) => row.frameIndex)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(rows[0]!.luma).toBe(99);
  });
});

describe('AnalysisRepository analyses and reuse', () => {
  it('finds a finished analysis by content hash and settings, never the asking video itself', async () => {
    const [first, second, third] = [await newVideo(), await newVideo(), await newVideo()];
    const sha = 'a'.repeat(64);
    await analyses.setContentHash(first, sha);
    await analyses.saveCompletedAnalysis(first, sha, 'settings-1', { scenes: 3 });
    await analyses.saveCompletedAnalysis(third, sha, 'settings-1', { scenes: 4 });
    const found = await analyses.findCompletedAnalysisByHash<{ scenes: number }>(sha, 'settings-1', second);
    expect(found).toMatchObject({ videoId: first, result: { scenes: 3 } });
    expect(await analyses.findCompletedAnalysisByHash(sha, 'settings-1', first)).toMatchObject({ videoId: third });
    expect(await analyses.findCompletedAnalysisByHash(sha, 'settings-2', second)).toBeUndefined();
    expect(await analyses.findCompletedAnalysisByHash('b'.repeat(64), 'settings-1')).toBeUndefined();
    const { rows } = await sql<{ content_sha256: string }>`select content_sha256 from videos where id = ${first}`.execute(env.db);
    expect(rows[0]!.content_sha256).toBe(sha);
  });

  it('copies frame metrics and loudness from one video to another inside the database, repeatably', async () => {
    const [from, to] = [await newVideo(), await newVideo()];
    await analyses.saveFrameMetrics(from, frames(250));
    await analyses.saveAudioLoudness(from, { stepSeconds: 0.5, shortTermLufs: [-20, -18.5, -120.7], integratedLufs: -21, loudnessRangeLu: 5 });
    await analyses.copyAnalysisRows(from, to);
    expect(await analyses.copyAnalysisRows(from, to)).toBe(250);
    expect(await analyses.countFrameMetrics(to)).toBe(250);
    expect(await analyses.listFrameMetrics(to)).toEqual(await analyses.listFrameMetrics(from));
    expect(await analyses.findAudioLoudness(to)).toEqual({ stepSeconds: 0.5, shortTermLufs: [-20, -18.5, -120.7], integratedLufs: -21, loudnessRangeLu: 5 });
  });
});

describe('AnalysisRepository clips', () => {
  it('upserts by (video, clip index) keeping the clip id, and lists clips in order', async () => {
    const id = await newVideo();
    const chosen = { videoId: id, startSeconds: 4, endSeconds: 12.5, score: 81, reasons: ['strong motion'], aspect: '9:16' as const };
    const pending = await analyses.upsertClip({ ...chosen, clipIndex: 1, status: 'pending' });
    await analyses.upsertClip({ ...chosen, clipIndex: 0, startSeconds: 20, endSeconds: 30, status: 'pending' });
    const rendered = await analyses.upsertClip({
      ...chosen,
      clipIndex: 1,
      status: 'rendered',
      storageKey: `videos/${id}/clips/1.mp4`,
      thumbnailKey: `videos/${id}/clips/1.jpg`,
      width: 396,
      height: 704,
      durationSeconds: 8.5,
    });
    expect(rendered.id).toBe(pending.id);
    const clips = await analyses.listClips(id);
    expect(clips.map((clip) => [clip.clipIndex, clip.status])).toEqual([
      [0, 'pending'],
      [1, 'rendered'],
    ]);
    expect(clips[1]).toMatchObject({ reasons: ['strong motion'], storageKey: `videos/${id}/clips/1.mp4`, width: 396, durationSeconds: 8.5, error: null });
    expect(await analyses.findClip(pending.id)).toMatchObject({ clipIndex: 1, status: 'rendered' });
    await analyses.failClip({ ...chosen, clipIndex: 0 }, 'rendering the clip failed');
    expect((await analyses.listClips(id))[0]).toMatchObject({ status: 'failed', error: 'rendering the clip failed', storageKey: null });
  });

  it('rejects a clip that ends before it starts', async () => {
    const id = await newVideo();
    await expect(
      analyses.upsertClip({ videoId: id, clipIndex: 0, startSeconds: 5, endSeconds: 5, score: 10, reasons: [], aspect: '1:1', status: 'pending' }),
    ).rejects.toThrow(/clips_ordered/);
  });

  it('reports where the source of a video is stored', async () => {
    const id = await newVideo();
    expect(await analyses.findSourceKey(id)).toBeNull();
    await videos.setSource(id, { storageKey: `videos/${id}/source.mp4`, sizeBytes: 10 });
    expect(await analyses.findSourceKey(id)).toBe(`videos/${id}/source.mp4`);
    expect(await analyses.findSourceKey(randomUUID())).toBeUndefined();
  });
});
