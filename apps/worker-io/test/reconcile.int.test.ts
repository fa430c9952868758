import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@clipline/shared';
import { AnalysisRepository, JobQueues, pipelineQueue, VideosRepository } from '@clipline/shared';
import { pipelineProcessors } from '../src/io-worker.js';
import { connectRedis, createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let redis: RedisClient;
let jobs: JobQueues;

beforeAll(async () => {
  env = await createTestEnvironment();
  redis = connectRedis(env.config.redisUrl);
  jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
});

afterAll(async () => {
  await jobs.close();
  redis.disconnect();
  await env.cleanup();
});

it('fails videos whose flow vanished or failed unnoticed, and leaves live ones alone', async () => {
  const videos = new VideosRepository(env.db);
  const processors = pipelineProcessors(videos, new AnalysisRepository(env.db), jobs);
  const make = async () => {
    const id = randomUUID();
    await videos.create({ id, source: '/a.mp4', title: null, steps: ['ingest'] });
    await videos.setStatus(id, 'processing');
    return id;
  };
  const lost = await make();
  const alive = await make();
  const recent = await make();
  await jobs.add(pipelineQueue, 'video-pipeline', { videoId: alive }, { jobId: `${alive}-pipeline`, delay: 60_000 });
  await env.db
    .updateTable('videos')
    .set({ updated_at: new Date(Date.now() - 10 * 60_000) })
    .where('id', 'in', [lost, alive])
    .execute();

  const result = await processors['reconcile-videos']({ data: {} } as never);
  expect(result).toEqual({ checked: 2, settled: 1 });
  expect(await videos.find(lost)).toMatchObject({ status: 'failed', error: 'pipeline: its jobs were lost from the queue' });
  expect((await videos.find(alive))!.status).toBe('processing');
  expect((await videos.find(recent))!.status).toBe('processing');
});

it('reaches a lost video behind a page of live ones older than it, on a later run', async () => {
  const videos = new VideosRepository(env.db);
  const processors = pipelineProcessors(videos, new AnalysisRepository(env.db), jobs);
  // A page (200) of live videos untouched for 20 minutes, and a lost one untouched for 10.
  const live = Array.from({ length: 200 }, () => randomUUID());
  await videos.createMany(live.map((id) => ({ id, source: '/a.mp4', title: null, steps: ['ingest'] })));
  await Promise.all(live.map((id) => jobs.add(pipelineQueue, 'video-pipeline', { videoId: id }, { jobId: `${id}-pipeline`, delay: 60_000 })));
  const lost = randomUUID();
  await videos.create({ id: lost, source: '/a.mp4', title: null, steps: ['ingest'] });
  await env.db
    .updateTable('videos')
    .set({ updated_at: new Date(Date.now() - 20 * 60_000) })
    .where('id', 'in', live)
    .execute();
  await env.db
    .updateTable('videos')
    .set({ updated_at: new Date(Date.now() - 10 * 60_000) })
    .where('id', '=', lost)
    .execute();

  const first = (await processors['reconcile-videos']({ data: {} } as never)) as { checked: number; settled: number };
  const second = (await processors['reconcile-videos']({ data: {} } as never)) as { checked: number; settled: number };
  expect(first.checked).toBe(200);
  expect(first.settled + second.settled).toBe(1);
  expect(await videos.find(lost)).toMatchObject({ status: 'failed', error: 'pipeline: its jobs were lost from the queue' });
  expect(new Set((await env.db.selectFrom('videos').select('status').where('id', 'in', live).execute()).map((row) => row.status))).toEqual(new Set(['queued']));
});
