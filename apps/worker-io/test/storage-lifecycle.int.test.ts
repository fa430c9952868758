/**
 * The storage lifecycle on the real Redis, database and filesystem: sources released when their
 * video finishes, retention purging only what is old and finished, purgeVideo removing every row
 * and file (and refusing unfinished videos), an interrupted purge finished later, and
 * `clipline_storage_bytes` following the bytes on disk.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { utimes, writeFile } from 'node:fs/promises';
import type { RedisClient } from '@clipline/shared';
import {
  AiResultsRepository,
  AnalysisRepository,
  clipStorageKeys,
  ExternalMetadataRepository,
  createDatabase,
  IdempotencyRepository,
  PUBLIC_JOB_RECORD_SECONDS,
  PublicJobsRepository,
  WebhookSecretsRepository,
  JobQueues,
  LocalStorage,
  pipelineQueue,
  purgeFinishedVideos,
  purgeVideo,
  registerStorageBytesGauge,
  removeOrphanedVideoFolders,
  Registry,
  StorageLedger,
  createRedis,
  type storageQueue,
  tenantScope,
  VideoNotFinishedError,
  videoSourceKey,
  VideosRepository,
  WebhooksRepository,
  type Processors,
  type VideoPurgeDependencies,
} from '@clipline/shared';
import { parseKeyring } from '@clipline/shared/crypto';
import { storageProcessors } from '../src/storage/storage-processors.js';
import { connectRedis, createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let redis: RedisClient;
let jobs: JobQueues;
let videos: VideosRepository;
let analyses: AnalysisRepository;
let storage: LocalStorage;
let ledger: StorageLedger;
let deps: VideoPurgeDependencies;

/** Tables holding rows of a video, and the column naming it. */
const VIDEO_TABLES = [
  ['videos', 'id'],
  ['video_steps', 'video_id'],
  ['scenes', 'video_id'],
  ['job_events', 'video_id'],
  ['frame_metrics', 'video_id'],
  ['audio_loudness', 'video_id'],
  ['analyses', 'video_id'],
  ['clips', 'video_id'],
  ['transcripts', 'video_id'],
  ['clip_extras', 'video_id'],
  ['external_metadata', 'video_id'],
  ['webhook_deliveries', 'video_id'],
] as const;

beforeAll(async () => {
  env = await createTestEnvironment();
  redis = connectRedis(env.config.redisUrl);
  jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
  videos = new VideosRepository(env.db);
  analyses = new AnalysisRepository(env.db);
  storage = new LocalStorage(env.config.storageDir);
  ledger = new StorageLedger(redis, env.config.queuePrefix);
  deps = { videos, storage, jobs, ledger };
});

afterAll(async () => {
  await jobs.close();
  redis.disconnect();
  await env.cleanup();
});

const processors = (settings: { keepSources?: boolean; retentionDays?: number } = {}): Processors<typeof storageQueue> =>
  storageProcessors(deps, { keepSources: settings.keepSources ?? false, retentionDays: settings.retentionDays ?? 30 });
/** The warnings a run logged. */
let warnings: { step?: string; message: string }[] = [];
const logger = { warn: (fields: { step?: string }, message: string) => warnings.push({ step: fields.step, message }), info: () => {}, debug: () => {} };
const run = <N extends keyof Processors<typeof storageQueue>>(p: Processors<typeof storageQueue>, name: N, data: object = {}) =>
  p[name]({ data, logger } as never) as Promise<Record<string, unknown>>;

/** Rows of the video in every table that holds some. */
async function rowCounts(videoId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const [table, column] of VIDEO_TABLES) {
    const row = await env.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where(column, '=', videoId)
      .executeTakeFirstOrThrow();
    counts[table] = Number(row.count);
  }
  return counts;
}

/**
 * A video with rows in every table and files in storage (source, a clip, its thumbnail, a
 * voice-over), finished as `status` unless it stays processing. Returns its id and file keys.
 */
async function storedVideo(status: 'completed' | 'failed' | 'cancelled' | 'processing', tenant = 'acme') {
  const id = randomUUID();
  await videos.create({
    id,
    source: '/in/a.mp4',
    title: 't',
    steps: ['ingest', 'render'],
    callbackUrl: 'https://example.com/hook',
    tenantId: tenant,
    youtubeId: 'dQw4w9WgXcQ',
  });
  const source = videoSourceKey(id, '.mp4');
  await writeFile(await storage.prepare(source), Buffer.alloc(3000, 1));
  await videos.setSource(id, { storageKey: source, sizeBytes: 3000 });
  await videos.setStatus(id, 'processing');
  await videos.saveAnalysis(id, { durationSeconds: 10, width: 320, height: 240, fps: 25, hasAudio: true, sizeBytes: 3000, videoCodec: 'h264' }, [
    { startSeconds: 0, endSeconds: 10 },
  ]);
  await videos.recordJobEvent({
    videoId: id,
    queue: 'ingest',
    jobName: 'ingest-video',
    jobId: `${id}-ingest`,
    step: 'ingest',
    status: 'completed',
    attempt: 1,
    reason: null,
  });
  await analyses.saveFrameMetrics(id, [
    { frameIndex: 0, timeSeconds: 0, luma: 1, sharpness: 1, motion: 0, contentScore: 1, dhash: '0123456789abcdef', histogram: [1, 2] },
  ]);
  await analyses.saveAudioLoudness(id, { stepSeconds: 1, shortTermLufs: [-20], integratedLufs: -20, loudnessRangeLu: 1 });
  await analyses.saveCompletedAnalysis(id, 'a'.repeat(64), 'fp', { ok: true });
  const keys = clipStorageKeys(id, 0);
  await writeFile(await storage.prepare(keys.video), Buffer.alloc(2000, 2));
  await writeFile(await storage.prepare(keys.thumbnail), Buffer.alloc(500, 3));
  const voiceover = `videos/${id}/clips/0-voiceover.mp3`;
  await writeFile(await storage.prepare(voiceover), Buffer.alloc(700, 4));
  const clip = await analyses.upsertClip({
    videoId: id,
    clipIndex: 0,
    startSeconds: 0,
    endSeconds: 5,
    score: 50,
    reasons: [],
    aspect: '9:16',
    status: 'rendered',
    storageKey: keys.video,
    thumbnailKey: keys.thumbnail,
  });
  const results = new AiResultsRepository(env.db);
  await results.saveTranscript(id, { text: 'hi', language: 'en', durationSeconds: 10, segments: [] });
  await results.saveClipExtras(id, clip.id, { title: 'x', voiceoverKey: voiceover });
  await new ExternalMetadataRepository(env.db).save(id, 'youtube', 'dQw4w9WgXcQ', { title: 'x' });
  if (status === 'failed') await videos.failVideo(id, 'render', 'render: broken');
  else if (status === 'cancelled') await videos.cancel(id);
  else if (status === 'completed') await videos.setStatus(id, 'completed');
  const [delivery] = await new WebhooksRepository(env.db).forVideo(id);
  if (delivery) await new WebhooksRepository(env.db).recordAttempt(delivery.id, { statusCode: 500, error: 'down', durationMs: 5 }, 'retry');
  return { id, source, files: [source, keys.video, keys.thumbnail, voiceover], bytes: 3000 + 2000 + 500 + 700 };
}

/** Moves a video's finish (and last change) `days` into the past. */
async function age(videoId: string, days: number) {
  const then = new Date(Date.now() - days * 86_400_000);
  await env.db.updateTable('videos').set({ updated_at: then, completed_at: then }).where('id', '=', videoId).where('completed_at', 'is not', null).execute();
  await env.db.updateTable('videos').set({ updated_at: then }).where('id', '=', videoId).execute();
}

describe('release-source', () => {
  it('removes the source of a finished video and forgets its key; clips stay', async () => {
    const video = await storedVideo('completed');
    const result = await run(processors(), 'release-source', { videoId: video.id });
    expect(result).toEqual({ released: video.source, bytes: 3000 });
    expect(existsSync(storage.pathOf(video.source))).toBe(false);
    expect(await analyses.findSourceKey(video.id)).toBeNull();
    for (const key of video.files.slice(1)) expect(existsSync(storage.pathOf(key))).toBe(true);
    // Repeated (a duplicate delivery), it finds nothing to do.
    expect(await run(processors(), 'release-source', { videoId: video.id })).toEqual({ released: null, bytes: 0 });
  });

  it('leaves the source of an unfinished video, and every source with keepSources', async () => {
    const running = await storedVideo('processing');
    expect(await run(processors(), 'release-source', { videoId: running.id })).toEqual({ released: null, bytes: 0 });
    expect(existsSync(storage.pathOf(running.source))).toBe(true);

    const kept = await storedVideo('failed');
    expect(await run(processors({ keepSources: true }), 'release-source', { videoId: kept.id })).toMatchObject({ released: null });
    expect(existsSync(storage.pathOf(kept.source))).toBe(true);
    expect(await analyses.findSourceKey(kept.id)).toBe(kept.source);
  });

  it('is swept up by the retention job when the release job was lost', async () => {
    const video = await storedVideo('cancelled');
    await age(video.id, 1);
    const result = await run(processors({ retentionDays: 30 }), 'purge-expired');
    expect(result.released).toBeGreaterThanOrEqual(1);
    expect(existsSync(storage.pathOf(video.source))).toBe(false);
    expect(await analyses.findSourceKey(video.id)).toBeNull();
    expect((await videos.find(video.id))!.status).toBe('cancelled');
  });
});

describe('retention', () => {
  it('purges only videos finished more than RETENTION_DAYS ago, with their files and rows', async () => {
    const oldCompleted = await storedVideo('completed');
    const oldFailed = await storedVideo('failed');
    const recent = await storedVideo('completed');
    const oldButRunning = await storedVideo('processing');
    await age(oldCompleted.id, 31);
    await age(oldFailed.id, 31);
    await age(recent.id, 29);
    await age(oldButRunning.id, 31);

    const result = await run(processors({ retentionDays: 30, keepSources: true }), 'purge-expired');
    expect(result).toMatchObject({ purged: 2, bytesRemoved: oldCompleted.bytes + oldFailed.bytes });
    for (const gone of [oldCompleted, oldFailed]) {
      expect(Object.values(await rowCounts(gone.id)).every((count) => count === 0)).toBe(true);
      expect(existsSync(storage.pathOf(`videos/${gone.id}`))).toBe(false);
    }
    for (const kept of [recent, oldButRunning]) {
      expect(await rowCounts(kept.id)).toMatchObject({ videos: 1, clips: 1, job_events: 1 });
      for (const key of kept.files) expect(existsSync(storage.pathOf(key))).toBe(true);
    }
    // A second run finds nothing more.
    expect(await run(processors({ retentionDays: 30, keepSources: true }), 'purge-expired')).toMatchObject({ purged: 0 });
  });

  it('deletes idempotency keys past their day and webhook secrets past their rotation, keeping live ones', async () => {
    const keys = new IdempotencyRepository(env.db);
    const secrets = new WebhookSecretsRepository(env.db, parseKeyring(env.config.accountsKeyring));
    const principal = `key:${randomUUID()}`;
    for (const key of ['old', 'live']) {
      const claim = await keys.claim(principal, key, `hash-${key}`);
      if (claim.outcome !== 'claimed') throw new Error('claim refused');
      await keys.complete(principal, key, claim.token, 202, { id: key }, null);
    }
    await env.db
      .updateTable('idempotency_keys')
      .set({ expires_at: new Date(Date.now() - 60_000) })
      .where('principal', '=', principal)
      .where('key', '=', 'old')
      .execute();
    const tenant = `t-${randomUUID()}`;
    await secrets.current(tenant);
    await secrets.rotate(tenant);
    // The replaced secret's overlap over.
    await env.db
      .updateTable('webhook_secrets')
      .set({ expires_at: new Date(Date.now() - 60_000) })
      .where('tenant_id', '=', tenant)
      .where('expires_at', 'is not', null)
      .execute();
    // Public jobs' records: one past the longest a job is kept, one of today.
    const publicJobs = new PublicJobsRepository(env.db);
    const [oldJob, liveJob] = [randomUUID(), randomUUID()];
    for (const id of [oldJob, liveJob]) await publicJobs.record({ id, tenant, queue: 'sync', name: 'refresh-metadata' });
    await env.db
      .updateTable('public_jobs')
      .set({ created_at: new Date(Date.now() - (PUBLIC_JOB_RECORD_SECONDS + 60) * 1000) })
      .where('id', '=', oldJob)
      .execute();
    const expiring = { idempotencyKeys: keys, webhookSecrets: secrets, publicJobs };
    const result = await run(storageProcessors({ ...deps, expiring }, { keepSources: true, retentionDays: 30 }), 'purge-expired');
    expect(result.idempotencyKeys).toBeGreaterThanOrEqual(1);
    expect(result.webhookSecrets).toBeGreaterThanOrEqual(1);
    expect(result.publicJobRecords).toBeGreaterThanOrEqual(1);
    const jobsLeft = await env.db.selectFrom('public_jobs').select('id').where('tenant_id', '=', tenant).execute();
    expect(jobsLeft.map((row) => row.id)).toEqual([liveJob]);
    const left = await env.db.selectFrom('idempotency_keys').select('key').where('principal', '=', principal).execute();
    expect(left.map((row) => row.key)).toEqual(['live']);
    expect(await env.db.selectFrom('webhook_secrets').select('id').where('tenant_id', '=', tenant).execute()).toHaveLength(1);
  });

  it('runs every step when one fails: the expiring records are purged while the videos cannot be read', async () => {
    // The videos' database refuses connections; the expiring records' is up.
    const down = createDatabase({ url: 'postgres://postgres@127.0.0.1:1/test', schema: 'public', poolSize: 1 });
    try {
      const keys = new IdempotencyRepository(env.db);
      const principal = `key:${randomUUID()}`;
      const claim = await keys.claim(principal, 'old', 'hash');
      if (claim.outcome !== 'claimed') throw new Error('claim refused');
      await keys.complete(principal, 'old', claim.token, 202, { id: 'old' }, null);
      await env.db
        .updateTable('idempotency_keys')
        .set({ expires_at: new Date(Date.now() - 60_000) })
        .where('principal', '=', principal)
        .execute();
      const expiring = {
        idempotencyKeys: keys,
        webhookSecrets: new WebhookSecretsRepository(env.db, parseKeyring(env.config.accountsKeyring)),
        publicJobs: new PublicJobsRepository(env.db),
      };
      warnings = [];
      const result = await run(
        storageProcessors({ ...deps, videos: new VideosRepository(down), expiring }, { keepSources: false, retentionDays: 30 }),
        'purge-expired',
      );
      expect(result).toMatchObject({
        releasedError: expect.any(String),
        expiredError: expect.any(String),
        idempotencyKeys: expect.any(Number),
        webhookSecretsResealed: expect.any(Number),
        publicJobRecords: expect.any(Number),
      });
      expect(result.idempotencyKeys).toBeGreaterThanOrEqual(1);
      expect(warnings.map((warning) => warning.step)).toEqual(expect.arrayContaining(['released', 'expired']));
    } finally {
      await down.destroy().catch(() => {});
    }
  });

  it('works through more expired videos than one batch holds, and stops at its bound', async () => {
    const batch = await Promise.all([1, 2, 3, 4, 5].map(() => storedVideo('completed')));
    for (const video of batch) await age(video.id, 400);
    const { purgeExpiredVideos } = await import('@clipline/shared');
    expect(await purgeExpiredVideos(deps, { retentionDays: 365, batchSize: 2, maxBatches: 2 })).toMatchObject({ purged: 4 });
    expect(await purgeExpiredVideos(deps, { retentionDays: 365, batchSize: 2, maxBatches: 2 })).toMatchObject({ purged: 1 });
    for (const video of batch) expect(await videos.status(video.id)).toBeUndefined();
  });

  it('finishes a purge interrupted after its rows were deleted', async () => {
    const video = await storedVideo('completed');
    // The crash: noted and rows deleted, files never removed; the note is over a minute old.
    await ledger.notePurges([video.id]);
    await redis.zadd(`${env.config.queuePrefix}:storage:purging`, Date.now() - 120_000, video.id);
    await videos.deleteFinished([video.id]);
    expect(existsSync(storage.pathOf(video.source))).toBe(true);

    expect(await run(processors(), 'purge-expired')).toMatchObject({ resumed: 1 });
    expect(existsSync(storage.pathOf(`videos/${video.id}`))).toBe(false);
    expect(await ledger.unfinishedPurges(0, 10)).not.toContain(video.id);
  });

  it("leaves another purge's note alone: a purge that finds the rows gone (the other one deleting the files) keeps the record that files remain", async () => {
    const video = await storedVideo('completed');
    // The other purge, part-way: noted, rows deleted, files not yet removed.
    await ledger.notePurges([video.id]);
    await videos.deleteFinished([video.id]);
    expect(await purgeFinishedVideos(deps, [video.id])).toEqual([]);
    // Had the other purge crashed now, the note is what finishes it.
    expect(await ledger.unfinishedPurges(0, 10)).toContain(video.id);
    expect(existsSync(storage.pathOf(video.source))).toBe(true);
    await ledger.forgetPurges([video.id]);
  });
});

describe('folders of videos that no longer exist', () => {
  it('are removed once unchanged for an hour: a file written after its video was purged, not a live video’s', async () => {
    const purged = await storedVideo('completed');
    const live = await storedVideo('completed');
    expect(await purgeVideo(deps, purged.id)).toMatchObject({ outcome: 'purged' });
    // A job still running at the purge writes its result afterwards: the folder is made again.
    const late = `videos/${purged.id}/clips/0-generated.png`;
    await writeFile(await storage.prepare(late), Buffer.alloc(900, 5));
    const fresh = randomUUID();
    await writeFile(await storage.prepare(`videos/${fresh}/clips/0-generated.png`), Buffer.alloc(10, 5));
    const hourAgo = new Date(Date.now() - 2 * 3600_000);
    for (const id of [purged.id, live.id]) await utimes(storage.pathOf(`videos/${id}`), hourAgo, hourAgo);
    await ledger.setBytes(10_000);

    const outcome = await run(processors(), 'purge-expired');
    expect(outcome).toMatchObject({ orphanFolders: 1, orphanBytes: 900 });
    expect(existsSync(storage.pathOf(`videos/${purged.id}`))).toBe(false);
    // A live video's folder stays however old; a folder without a row stays until it is an hour unchanged.
    for (const key of live.files) expect(existsSync(storage.pathOf(key))).toBe(true);
    expect(existsSync(storage.pathOf(`videos/${fresh}`))).toBe(true);
    expect(await ledger.bytes()).toBe(10_000 - 900);
    await storage.remove(`videos/${fresh}`);
  });
});

describe('folders of videos that no longer exist, in a large store', () => {
  it('are all reached over successive runs, each looking at a bounded number of folders', async () => {
    const hourAgo = new Date(Date.now() - 2 * 3600_000);
    const live = await Promise.all([storedVideo('completed'), storedVideo('completed')]);
    const orphans = Array.from({ length: 5 }, () => randomUUID());
    for (const id of orphans) await writeFile(await storage.prepare(`videos/${id}/clips/0-generated.png`), Buffer.alloc(10, 5));
    for (const id of [...orphans, ...live.map((video) => video.id)]) await utimes(storage.pathOf(`videos/${id}`), hourAgo, hourAgo);
    let removed = 0;
    // Seven folders at least (other tests' too), three a run: every orphan goes within a few runs, no live one.
    for (let run = 0; run < 10 && orphans.some((id) => existsSync(storage.pathOf(`videos/${id}`))); run++) {
      const outcome = await removeOrphanedVideoFolders(deps, { limit: 3 });
      expect(outcome.removed).toBeLessThanOrEqual(3);
      removed += outcome.removed;
    }
    expect(orphans.filter((id) => existsSync(storage.pathOf(`videos/${id}`)))).toEqual([]);
    expect(removed).toBeGreaterThanOrEqual(orphans.length);
    for (const video of live) for (const key of video.files) expect(existsSync(storage.pathOf(key))).toBe(true);
  });
});

describe('purgeVideo', () => {
  it('removes every row, file and job of a finished video', async () => {
    const video = await storedVideo('completed');
    await jobs.add(pipelineQueue, 'video-pipeline', { videoId: video.id }, { jobId: `${video.id}-pipeline`, delay: 600_000 });
    const before = await rowCounts(video.id);
    // Every table really held rows, so the zeros below mean something.
    expect(Object.entries(before).filter(([, count]) => count === 0)).toEqual([]);
    const [delivery] = await new WebhooksRepository(env.db).forVideo(video.id);

    expect(await purgeVideo(deps, video.id, tenantScope('acme'))).toEqual({ outcome: 'purged', bytesRemoved: video.bytes });
    expect(Object.values(await rowCounts(video.id)).every((count) => count === 0)).toBe(true);
    const attempts = await env.db.selectFrom('webhook_attempts').select('id').where('delivery_id', '=', delivery!.id).execute();
    expect(attempts).toHaveLength(0);
    expect(existsSync(storage.pathOf(`videos/${video.id}`))).toBe(false);
    expect(await jobs.get(pipelineQueue, `${video.id}-pipeline`)).toBeUndefined();
    // Again: the video is gone.
    expect(await purgeVideo(deps, video.id)).toEqual({ outcome: 'not-found' });
  });

  it('reports a video purged by several purges at once once, and takes its bytes off the ledger once', async () => {
    const video = await storedVideo('completed');
    await ledger.setBytes(100_000_000);
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => purgeVideo(deps, video.id)));
    expect(outcomes.filter((outcome) => outcome.outcome === 'purged')).toEqual([{ outcome: 'purged', bytesRemoved: video.bytes }]);
    expect(outcomes.filter((outcome) => outcome.outcome === 'not-found')).toHaveLength(5);
    expect(await ledger.bytes()).toBe(100_000_000 - video.bytes);
    expect(existsSync(storage.pathOf(`videos/${video.id}`))).toBe(false);
  });

  it('refuses an unfinished video, and does not see another tenant’s', async () => {
    const running = await storedVideo('processing');
    const refusal = purgeVideo(deps, running.id);
    await expect(refusal).rejects.toBeInstanceOf(VideoNotFinishedError);
    await expect(refusal).rejects.toMatchObject({ status: 'processing', message: expect.stringContaining('cancel it first') });
    expect(await rowCounts(running.id)).toMatchObject({ videos: 1, clips: 1 });
    for (const key of running.files) expect(existsSync(storage.pathOf(key))).toBe(true);

    const theirs = await storedVideo('completed', 'other-tenant');
    expect(await purgeVideo(deps, theirs.id, tenantScope('acme'))).toEqual({ outcome: 'not-found' });
    expect(await videos.status(theirs.id)).toBeDefined();
    expect(await purgeVideo(deps, randomUUID())).toEqual({ outcome: 'not-found' });
  });
});

describe('clipline_storage_bytes', () => {
  it('reports the bytes on disk after a measurement, and drops by what a purge removed', async () => {
    const registry = new Registry();
    registerStorageBytesGauge(registry, ledger);
    const gauge = async () => {
      const metric = await registry.getSingleMetric('clipline_storage_bytes')!.get();
      return metric.values[0]?.value;
    };
    const video = await storedVideo('completed');
    const measured = await run(processors(), 'measure-storage');
    const onDisk = await storage.totalSize();
    expect(measured).toEqual({ bytes: onDisk });
    expect(onDisk).toBeGreaterThanOrEqual(video.bytes);
    expect(await gauge()).toBe(onDisk);

    await purgeVideo(deps, video.id);
    expect(await gauge()).toBe(onDisk - video.bytes);
    expect(await storage.totalSize()).toBe(onDisk - video.bytes);
  });

  it('answers a scrape at once while Redis is away, instead of holding it until Redis is back', async () => {
    // A worker connection queues commands while it reconnects, for as long as it takes.
    const away = createRedis('redis://127.0.0.1:1', 'worker');
    try {
      const registry = new Registry();
      registerStorageBytesGauge(registry, new StorageLedger(away, env.config.queuePrefix));
      const started = Date.now();
      const text = await registry.metrics();
      expect(Date.now() - started).toBeLessThan(1500);
      expect(text).toContain('clipline_storage_bytes');
    } finally {
      away.disconnect();
    }
  });
});
