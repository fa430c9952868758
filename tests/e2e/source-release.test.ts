/**
 * A video's source through the real pipeline (worker-io and worker-cpu in this process, real
 * Redis, PostgreSQL and ffmpeg): removed once the video completes, its clips kept; kept when
 * KEEP_SOURCES is set.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  AnalysisRepository,
  createService,
  JobQueues,
  LocalStorage,
  pipelineQueue,
  storageQueue,
  VideoPipelineProducer,
  videoSourceKey,
  VideosRepository,
} from '@clipline/shared';
import { startCpuWorker } from '../../apps/worker-cpu/src/cpu-worker.js';
import { loadCpuWorkerSettings } from '../../apps/worker-cpu/src/cpu-worker-config.js';
import { startIoWorker } from '../../apps/worker-io/src/io-worker.js';
import { loadProviderSettings } from '../../apps/worker-io/src/providers/index.js';
import { generateVideo } from '../helpers/media.js';
import { connectRedis, createTestEnvironment, waitFor } from '../helpers/services.js';

import { jest } from '@jest/globals';

jest.setTimeout(150_000);

/** Runs one generated video through both workers and hands the finished state to `check`. */
async function completeOneVideo(
  overrides: Record<string, string>,
  check: (finished: { id: string; storage: LocalStorage; videos: VideosRepository; analyses: AnalysisRepository; jobs: JobQueues }) => Promise<void>,
) {
  const env = await createTestEnvironment({ CPU_POOL_THREADS: '2', HOST: '127.0.0.1', ...overrides });
  const media = await mkdtemp(path.join(os.tmpdir(), 'clipline-media-'));
  const io = createService('worker-io', env.config);
  const cpu = createService('worker-cpu', env.config);
  const redis = connectRedis(env.config.redisUrl);
  const jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
  const videos = new VideosRepository(env.db);
  const producer = new VideoPipelineProducer({ connection: redis, prefix: env.config.queuePrefix }, videos);
  try {
    // No provider keys: the AI steps are skipped, the rest runs for real.
    await startIoWorker(io, { providers: loadProviderSettings({}), metricsServer: false });
    await startCpuWorker(cpu, { metricsServer: false, settings: loadCpuWorkerSettings({}) });
    const video = await generateVideo({ path: path.join(media, 'talk.mp4'), segments: [3, 3, 3, 3], width: 320, height: 180, fps: 25 });
    const { id } = await producer.submit({ source: video.path, options: { clipCount: 2, minClipSeconds: 2, maxClipSeconds: 4 } });
    // The parent job returns after the completion (and its hooks) went through.
    await waitFor(
      async () => ((await jobs.get(pipelineQueue, `${id}-pipeline`))?.state === 'completed' ? true : undefined),
      120_000,
      `video ${id} to complete`,
    );
    expect((await videos.find(id))!.status).toBe('completed');
    await check({ id, storage: new LocalStorage(env.config.storageDir), videos, analyses: new AnalysisRepository(env.db), jobs });
  } finally {
    await producer.close();
    await jobs.close();
    redis.disconnect();
    await io.shutdown.shutdown('test finished');
    await cpu.shutdown.shutdown('test finished');
    await env.cleanup();
    await rm(media, { recursive: true, force: true });
  }
}

it('removes the source once the video completed, and keeps its clips', async () => {
  await completeOneVideo({}, async ({ id, storage, analyses }) => {
    const source = storage.pathOf(videoSourceKey(id, '.mp4'));
    await waitFor(async () => (!existsSync(source) ? true : undefined), 20_000, 'the source to be removed');
    expect(await analyses.findSourceKey(id)).toBeNull();
    const clips = (await analyses.listClips(id)).filter((clip) => clip.status === 'rendered');
    expect(clips.length).toBeGreaterThan(0);
    for (const clip of clips) {
      expect(existsSync(storage.pathOf(clip.storageKey!))).toBe(true);
      expect(existsSync(storage.pathOf(clip.thumbnailKey!))).toBe(true);
    }
  });
});

it('keeps the source with KEEP_SOURCES=true', async () => {
  await completeOneVideo({ KEEP_SOURCES: 'true' }, async ({ id, storage, analyses, jobs }) => {
    // No release was ever asked for, so waiting would prove nothing: the job must not exist.
    expect(await jobs.get(storageQueue, `${id}-release-source`)).toBeUndefined();
    expect(await analyses.findSourceKey(id)).toBe(videoSourceKey(id, '.mp4'));
    expect(existsSync(storage.pathOf(videoSourceKey(id, '.mp4')))).toBe(true);
  });
});
