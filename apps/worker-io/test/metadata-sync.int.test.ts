/**
 * YouTube metadata sync as the worker-io app runs it: `startIoWorker` (the app's startup path)
 * registers the job schedulers, with the sync interval taken from the configuration, and the
 * scheduled sync enqueues the refreshes of tracked videos on its own.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import {
  createService,
  ExternalMetadataRepository,
  JobQueues,
  loadConfig,
  notifyQueue,
  pipelineQueue,
  storageQueue,
  syncQueue,
  VideosRepository,
  type QueueDeclaration,
  type ServiceContext,
} from '@clipline/shared';
import type { RedisClient } from '@clipline/shared';
import type { UpstreamSimulator } from '../../../infra/upstream-sim/src/index.js';
import { startIoWorker } from '../src/io-worker.js';
import { loadProviderSettings } from '../src/providers/index.js';
import { waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';
import { startUpstreamFixture, type UpstreamFixture } from './upstream-fixture.js';

const SYNC_INTERVAL_SECONDS = 2;
let fixture: UpstreamFixture;
let env: TestEnvironment;
let sim: UpstreamSimulator;
let redis: RedisClient;
let service: ServiceContext;
let jobs: JobQueues;
let videos: VideosRepository;
let external: ExternalMetadataRepository;

beforeAll(async () => {
  fixture = await startUpstreamFixture();
  ({ env, sim, redis } = fixture);
  const config = loadConfig({ ...env.env, METADATA_SYNC_INTERVAL_SECONDS: String(SYNC_INTERVAL_SECONDS) });
  service = createService('worker-io', config);
  // A cache TTL of one second: the scheduled refresh must revalidate, not reuse the cached copy.
  await startIoWorker(service, { providers: loadProviderSettings({ UPSTREAM_SIM_URL: sim.url, YOUTUBE_CACHE_TTL_SECONDS: '1' }), metricsServer: false });
  jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
  videos = new VideosRepository(env.db);
  external = new ExternalMetadataRepository(env.db);
});

afterAll(async () => {
  await service?.shutdown.shutdown('tests done');
  await jobs?.close();
  await fixture?.close();
});

async function trackedVideo(youtubeId: string | null): Promise<string> {
  const id = randomUUID();
  await videos.create({ id, source: '/media/a.mp4', title: null, steps: [], youtubeId });
  return id;
}

const youtubeStatuses = () => sim.stats().endpoints['youtube.videos.list']?.statuses ?? {};

async function schedulersOf(declaration: QueueDeclaration) {
  const queue = new Queue(declaration.name, { connection: redis, prefix: env.config.queuePrefix });
  try {
    const schedulers = await queue.getJobSchedulers();
    return schedulers
      .map((scheduler) => ({ key: scheduler.key, name: scheduler.name, every: Number(scheduler.every) }))
      .sort((a, b) => a.key.localeCompare(b.key));
  } finally {
    await queue.close();
  }
}

describe('the schedules worker-io registers at startup', () => {
  it('are one per periodic job, with the metadata sync every METADATA_SYNC_INTERVAL_SECONDS', async () => {
    expect(await schedulersOf(syncQueue)).toEqual([{ key: 'sync-sync-metadata', name: 'sync-metadata', every: SYNC_INTERVAL_SECONDS * 1000 }]);
    expect(await schedulersOf(notifyQueue)).toEqual([{ key: 'notify-sweep-webhooks', name: 'sweep-webhooks', every: 30_000 }]);
    expect(await schedulersOf(pipelineQueue)).toEqual([{ key: 'pipeline-reconcile-videos', name: 'reconcile-videos', every: 60_000 }]);
    expect(await schedulersOf(storageQueue)).toEqual([
      { key: 'storage-measure-storage', name: 'measure-storage', every: 5 * 60_000 },
      { key: 'storage-purge-expired', name: 'purge-expired', every: 10 * 60_000 },
    ]);
  });
});

describe('YouTube metadata sync on its schedule', () => {
  it('fetches a tracked video without being asked, then revalidates it with its ETag (304) once it is due again', async () => {
    const before = youtubeStatuses();
    const id = await trackedVideo('dQw4w9WgXcQ');
    // Nothing enqueues a refresh here: only the scheduled sync can.
    const first = await waitFor(() => external.find(id), 20_000, 'the scheduled sync to store the metadata');
    expect(first).toMatchObject({ provider: 'youtube', externalId: 'dQw4w9WgXcQ', data: { videoId: 'dQw4w9WgXcQ', title: expect.any(String) } });
    expect(String(first.data.title).length).toBeGreaterThan(0);
    const syncQueueView = new Queue(syncQueue.name, { connection: redis, prefix: env.config.queuePrefix });
    try {
      const refreshes = (await syncQueueView.getJobs(['completed', 'active', 'waiting', 'delayed'])).filter(
        (job) => job.name === 'refresh-metadata' && job.data.videoId === id,
      );
      expect(refreshes.map((job) => job.id)).toEqual([expect.stringMatching(new RegExp(`^${id}-refresh-\\d+$`))]);
    } finally {
      await syncQueueView.close();
    }
    const fetched = youtubeStatuses();
    expect((fetched['200'] ?? 0) - (before['200'] ?? 0)).toBe(1);

    // Older than the interval: the schedule picks it up again and revalidates.
    await env.db
      .updateTable('external_metadata')
      .set({ fetched_at: new Date(Date.now() - 60_000) })
      .where('video_id', '=', id)
      .execute();
    const second = await waitFor(
      async () => {
        const row = await external.find(id);
        return row && Date.parse(row.fetchedAt) > Date.now() - 30_000 ? row : undefined;
      },
      20_000,
      'the scheduled refresh',
    );
    expect(second.data).toEqual(first.data);
    const after = youtubeStatuses();
    expect((after['304'] ?? 0) - (fetched['304'] ?? 0)).toBeGreaterThanOrEqual(1);
    expect(after['200']).toBe(fetched['200']);
  });

  it('leaves untracked videos alone, and fails a video YouTube does not know with the reason', async () => {
    const untracked = await trackedVideo(null);
    expect(await external.dueForRefresh(1, 100)).not.toContain(untracked);
    const skipped = await jobs.add(syncQueue, 'refresh-metadata', { videoId: untracked });
    const skippedJob = await waitFor(
      async () => {
        const view = await jobs.get(syncQueue, skipped.id);
        return view?.state === 'completed' ? view : undefined;
      },
      10_000,
      'the untracked refresh',
    );
    expect(skippedJob.returnValue).toEqual({ skipped: 'the video is not linked to YouTube' });

    const missing = await trackedVideo('gone0000000');
    const added = await jobs.add(syncQueue, 'refresh-metadata', { videoId: missing });
    const failed = await waitFor(
      async () => {
        const view = await jobs.get(syncQueue, added.id);
        return view?.state === 'failed' ? view : undefined;
      },
      10_000,
      'the refresh of an unknown video to fail',
    );
    expect(failed.failedReason).toMatch(/gone0000000/);
    expect(failed.attemptsMade).toBe(1);
    // What is known of it now is recorded: it goes to the back of the refresh order, not first in every run.
    expect(await external.find(missing)).toMatchObject({ externalId: 'gone0000000', data: { unavailable: expect.stringMatching(/no public video/) } });
    expect(await external.dueForRefresh(3600, 1000)).not.toContain(missing);
    // Nor is a failed or cancelled video refreshed at all.
    const cancelled = await trackedVideo('dQw4w9WgXcQ');
    await videos.setStatus(cancelled, 'cancelled');
    expect(await external.dueForRefresh(1, 1000)).not.toContain(cancelled);
  });
});
