import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  createLogger,
  ExternalMetadataRepository,
  JobQueues,
  Registry,
  startWorker,
  syncQueue,
  VideosRepository,
  type RunningWorker,
} from '@clipline/shared';
import type { UpstreamSimulator } from '../../../infra/upstream-sim/src/index.js';
import { createProviderClients, loadProviderSettings, type ProviderClients } from '../src/providers/index.js';
import { syncProcessors } from '../src/sync/metadata-sync.js';
import { waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';
import { startUpstreamFixture, type UpstreamFixture } from './upstream-fixture.js';

let fixture: UpstreamFixture;
let env: TestEnvironment;
let sim: UpstreamSimulator;
let redis: Redis;
let providers: ProviderClients;
let jobs: JobQueues;
let worker: RunningWorker;
let videos: VideosRepository;
let external: ExternalMetadataRepository;

beforeAll(async () => {
  fixture = await startUpstreamFixture();
  ({ env, sim, redis } = fixture);
  // A cache TTL of one second: the scheduled refresh must revalidate, not reuse the cached copy.
  const settings = loadProviderSettings({ UPSTREAM_SIM_URL: sim.url, YOUTUBE_CACHE_TTL_SECONDS: '1' });
  providers = createProviderClients({ settings, redis, keyPrefix: env.config.queuePrefix, registry: new Registry() });
  jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
  videos = new VideosRepository(env.db);
  external = new ExternalMetadataRepository(env.db);
  worker = startWorker(syncQueue, syncProcessors({ providers, external, jobs, intervalMs: 2000 }), {
    connection: redis,
    prefix: env.config.queuePrefix,
    concurrency: 5,
    logger: createLogger({ name: 'test', level: 'silent' }),
  });
});

afterAll(async () => {
  await worker.close();
  await jobs.close();
  providers.close();
  await fixture.close();
});

async function trackedVideo(youtubeId: string | null): Promise<string> {
  const id = randomUUID();
  await videos.create({ id, source: '/media/a.mp4', title: null, steps: [], youtubeId });
  return id;
}

const youtubeStatuses = () => sim.stats().endpoints['youtube.videos.list']?.statuses ?? {};

describe('YouTube metadata sync', () => {
  it('fetches a tracked video, then the schedule revalidates it with its ETag (304)', async () => {
    const id = await trackedVideo('dQw4w9WgXcQ');
    await jobs.add(syncQueue, 'refresh-metadata', { videoId: id });
    const first = await waitFor(() => external.find(id), 10_000, 'the metadata to be stored');
    expect(first).toMatchObject({ provider: 'youtube', externalId: 'dQw4w9WgXcQ', data: { videoId: 'dQw4w9WgXcQ', title: expect.any(String) } });
    expect(String(first.data.title).length).toBeGreaterThan(0);
    const before = youtubeStatuses();

    // Older than the interval: the scheduled job picks it up again.
    await env.db.updateTable('external_metadata').set({ fetched_at: new Date(Date.now() - 60_000) }).where('video_id', '=', id).execute();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await jobs.add(syncQueue, 'sync-metadata', {});
    const second = await waitFor(
      async () => {
        const row = await external.find(id);
        return row && Date.parse(row.fetchedAt) > Date.now() - 10_000 ? row : undefined;
      },
      10_000,
      'the scheduled refresh',
    );
    expect(second.data).toEqual(first.data);
    const after = youtubeStatuses();
    expect((after['304'] ?? 0) - (before['304'] ?? 0)).toBe(1);
    expect(after['200']).toBe(before['200']);
  });

  it('leaves untracked videos alone, and fails a video YouTube does not know with the reason', async () => {
    const untracked = await trackedVideo(null);
    expect(await external.dueForRefresh(1, 100)).not.toContain(untracked);
    const skipped = await jobs.add(syncQueue, 'refresh-metadata', { videoId: untracked });
    const skippedJob = await waitFor(async () => {
      const view = await jobs.get(syncQueue, skipped.id);
      return view?.state === 'completed' ? view : undefined;
    }, 5_000, 'the untracked refresh');
    expect(skippedJob.returnValue).toEqual({ skipped: 'the video is not linked to YouTube' });

    const missing = await trackedVideo('gone0000000');
    const added = await jobs.add(syncQueue, 'refresh-metadata', { videoId: missing });
    const failed = await waitFor(async () => {
      const view = await jobs.get(syncQueue, added.id);
      return view?.state === 'failed' ? view : undefined;
    }, 5_000, 'the refresh of an unknown video to fail');
    expect(failed.failedReason).toMatch(/gone0000000/);
    expect(failed.attemptsMade).toBe(1);
    expect(await external.find(missing)).toBeUndefined();
  });

  it('runs on a job scheduler', async () => {
    await jobs.schedule(syncQueue, 'sync-metadata', {}, { every: 2000 });
    const schedulers = await redis.keys(`${env.config.queuePrefix}:sync:repeat*`);
    expect(schedulers.length).toBeGreaterThan(0);
  });
});
