/**
 * The database layer on each engine it supports: the same migrations and repository calls on
 * PostgreSQL, MariaDB and SQLite, each in a schema of its own (a database on MariaDB, a file on
 * SQLite), with the values read back in one shape.
 */
import { randomUUID } from 'node:crypto';
import { NO_MIGRATIONS, type KyselyPlugin } from 'kysely';
import { Registry } from 'prom-client';
import {
  AiResultsRepository,
  AnalysisRepository,
  ApiKeysRepository,
  createMigrator,
  ExternalMetadataRepository,
  IdempotencyRepository,
  migrateToLatest,
  observeQueries,
  portableSql,
  ANY_TENANT,
  InvalidCursorError,
  PublicJobsRepository,
  tenantScope,
  UsersRepository,
  VIDEO_STEPS,
  VideosRepository,
  WebhookSecretsRepository,
  WebhooksRepository,
  type Db,
  type FrameMetricRecord,
} from '@clipline/shared';
import { createTestDatabase, TEST_DATABASE_ENGINES, type TestDatabase } from '../helpers/services.js';

const METADATA = { durationSeconds: 12.5, width: 1280, height: 720, fps: 29.97, hasAudio: true, sizeBytes: 3_000_000_000, videoCodec: 'h264' };

function frames(count: number, luma: number): FrameMetricRecord[] {
  return Array.from({ length: count }, (_, frameIndex) => ({
    frameIndex,
    timeSeconds: frameIndex / 10,
    luma: luma + (frameIndex % 7) / 4,
    sharpness: frameIndex * 1.5,
    motion: (frameIndex % 3) / 8,
    contentScore: frameIndex % 11,
    dhash: frameIndex.toString(16).padStart(16, '0'),
    histogram: Array.from({ length: 16 }, (_, bin) => (bin === frameIndex % 16 ? 0.75 : 0.25 / 15)),
  }));
}

describe.each(TEST_DATABASE_ENGINES)('on $name', ({ url }) => {
  let database: TestDatabase;
  let db: Db;
  let videos: VideosRepository;
  let analyses: AnalysisRepository;

  beforeAll(async () => {
    database = await createTestDatabase(url);
    db = database.db;
    videos = new VideosRepository(db, { stepOrder: VIDEO_STEPS });
    analyses = new AnalysisRepository(db);
  });

  afterAll(async () => {
    await database?.cleanup();
  });

  async function newVideo(fields: { callbackUrl?: string; youtubeId?: string } = {}): Promise<string> {
    const id = randomUUID();
    await videos.create({ id, source: `/media/${id}.mp4`, title: null, steps: ['ingest', 'analyze', 'render'], ...fields });
    return id;
  }

  /**
   * `migrateTo` while other test files create and drop schemas: the migrator's catalog query can
   * fail before any migration ran (no results); that attempt is repeated, as the helpers do.
   */
  async function migrateToWhileOthersDrop(target: Parameters<ReturnType<typeof createMigrator>['migrateTo']>[0]) {
    const migrator = createMigrator(db, database.settings.schema);
    for (let attempt = 1; ; attempt += 1) {
      const outcome = await migrator.migrateTo(target);
      const code = (outcome.error as { code?: string } | undefined)?.code ?? '';
      const raced = outcome.error !== undefined && !outcome.results?.length && ['3F000', '42703', '42P01'].includes(code);
      if (!raced || attempt >= 5) return outcome;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }

  it('migrates down to nothing and up again, and a second run applies nothing', async () => {
    const down = await migrateToWhileOthersDrop(NO_MIGRATIONS);
    expect(down.error).toBeUndefined();
    expect(down.results?.every((result) => result.status === 'Success')).toBe(true);
    const up = await migrateToLatest(db, database.settings.schema);
    expect(up.results?.length).toBeGreaterThanOrEqual(8);
    const again = await migrateToLatest(db, database.settings.schema);
    expect(again.results).toEqual([]);
  });

  it('gives keys made before tenants a tenant of their own, and their videos that tenant', async () => {
    expect((await migrateToWhileOthersDrop('0008-external-metadata')).error).toBeUndefined();
    const raw = db as unknown as Db & { insertInto(table: string): any };
    const key = (name: string) => ({ id: randomUUID(), name, prefix: `cl_${randomUUID().replace(/-/g, '').slice(0, 12)}`, key_hash: Buffer.alloc(32, 1) });
    const [ciOne, ciTwo, unique, legacy] = [key('ci'), key('CI'), key('Media Service'), key('legacy')];
    await raw.insertInto('api_keys').values([ciOne, ciTwo, unique, legacy]).execute();
    const video = (submittedBy: string | null) => ({ id: randomUUID(), status: 'completed', source: '/media/old.mp4', submitted_by: submittedBy });
    const [ofCiOne, ofCiTwo, ofUnique, ofConfig, ofNobody] = [
      video(`key:${ciOne.id}`),
      video(`key:${ciTwo.id}`),
      video(`key:${unique.id}`),
      video('config:0123456789ab'),
      video(null),
    ];
    await raw.insertInto('videos').values([ofCiOne, ofCiTwo, ofUnique, ofConfig, ofNobody]).execute();
    await migrateToLatest(db, database.settings.schema);

    const tenantOfKey = new Map((await db.selectFrom('api_keys').select(['id', 'tenant_id']).execute()).map((row) => [row.id, row.tenant_id]));
    // Two keys of one (folded) name are two tenants; a unique name is the tenant; "legacy" is not taken.
    expect(tenantOfKey.get(ciOne.id)).toBe(`key-${ciOne.id}`);
    expect(tenantOfKey.get(ciTwo.id)).toBe(`key-${ciTwo.id}`);
    expect(tenantOfKey.get(unique.id)).toBe('media-service');
    expect(tenantOfKey.get(legacy.id)).toBe(`key-${legacy.id}`);
    const tenantOfVideo = new Map((await db.selectFrom('videos').select(['id', 'tenant_id']).execute()).map((row) => [row.id, row.tenant_id]));
    expect(tenantOfVideo.get(ofCiOne.id)).toBe(`key-${ciOne.id}`);
    expect(tenantOfVideo.get(ofCiTwo.id)).toBe(`key-${ciTwo.id}`);
    expect(tenantOfVideo.get(ofUnique.id)).toBe('media-service');
    expect(tenantOfVideo.get(ofConfig.id)).toBe('key-0123456789ab');
    expect(tenantOfVideo.get(ofNobody.id)).toBe('legacy');
  });

  it('reads back dates, JSON, booleans, big numbers and any text as they were written', async () => {
    const id = randomUUID();
    const title = '🎬 Café — テスト "quoted" \\ back\'slash';
    await videos.create({
      id,
      source: '/media/ü.mp4',
      title,
      steps: ['ingest'],
      options: { clipCount: 3, aspect: '9:16' },
      callbackUrl: 'https://hooks.test/a',
    });
    await videos.saveAnalysis(id, METADATA, [{ startSeconds: 0, endSeconds: 4.25 }]);
    const view = await videos.find(id);
    expect(view).toMatchObject({
      title,
      source: '/media/ü.mp4',
      options: { clipCount: 3, aspect: '9:16' },
      metadata: METADATA,
      scenes: [{ startSeconds: 0, endSeconds: 4.25 }],
    });
    expect(Date.parse(view!.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(Date.parse(view!.updatedAt)).toBeGreaterThanOrEqual(Date.parse(view!.createdAt));
    await videos.saveAnalysis(id, { ...METADATA, hasAudio: false }, []);
    expect((await videos.find(id))!.metadata!.hasAudio).toBe(false);
    // More scenes than one statement's bind parameters hold on SQLite (four a scene, 32,766 at most).
    const many = Array.from({ length: 9000 }, (_, index) => ({ startSeconds: index * 0.5, endSeconds: (index + 1) * 0.5 }));
    await videos.saveAnalysis(id, METADATA, many);
    const stored = (await videos.find(id))!.scenes;
    expect({ count: stored.length, last: stored.at(-1) }).toEqual({ count: 9000, last: many.at(-1) });

    // Times keep their milliseconds, in UTC, on every engine.
    const when = new Date('2031-02-03T04:05:06.789Z');
    await db.updateTable('videos').set({ updated_at: when }).where('id', '=', id).execute();
    expect((await db.selectFrom('videos').select('updated_at').where('id', '=', id).executeTakeFirstOrThrow()).updated_at).toEqual(when);
  });

  it('stores float arrays and JSON documents, and replaces them on a retried write instead of adding rows', async () => {
    const id = await newVideo();
    await analyses.saveFrameMetrics(id, frames(300, 10));
    await analyses.saveFrameMetrics(id, frames(300, 40));
    expect(await analyses.countFrameMetrics(id)).toBe(300);
    const [frame] = await analyses.listFrameMetrics(id, 17, 1);
    expect(frame!.luma).toBeCloseTo(40 + (17 % 7) / 4, 5);
    expect(frame!.histogram).toHaveLength(16);
    expect(frame!.histogram[1]).toBeCloseTo(0.75, 5);
    expect(frame!.histogram[0]).toBeCloseTo(0.25 / 15, 5);

    await analyses.saveAudioLoudness(id, { stepSeconds: 0.5, shortTermLufs: [-23.5, -20.25, -70], integratedLufs: -21, loudnessRangeLu: null });
    await analyses.saveAudioLoudness(id, { stepSeconds: 0.5, shortTermLufs: [-18, -19], integratedLufs: -18.5, loudnessRangeLu: 3 });
    expect(await analyses.findAudioLoudness(id)).toEqual({ stepSeconds: 0.5, shortTermLufs: [-18, -19], integratedLufs: -18.5, loudnessRangeLu: 3 });

    const result = { clips: [{ start: 1, end: 2, reasons: ['scene cut', 'loud'] }], note: 'ünïcode ✓' };
    await analyses.saveCompletedAnalysis(id, 'a'.repeat(64), '{"fps":10}', result);
    const other = await newVideo();
    expect(await analyses.findCompletedAnalysisByHash('a'.repeat(64), '{"fps":10}', other)).toMatchObject({ videoId: id, result });
    expect(await analyses.findCompletedAnalysisByHash('a'.repeat(64), '{"fps":10}', id)).toBeUndefined();

    // Reuse copies the rows inside the database.
    expect(await analyses.copyAnalysisRows(id, other)).toBe(300);
    expect(await analyses.countFrameMetrics(other)).toBe(300);
    expect(await analyses.findAudioLoudness(other)).toEqual(await analyses.findAudioLoudness(id));
  });

  it('splits a large batch into statements under the engine parameter limit', async () => {
    const id = await newVideo();
    const repository = new AnalysisRepository(db, { rowsPerInsert: 100_000 });
    const statements = await repository.saveFrameMetrics(id, frames(8000, 1));
    expect(repository.rowsPerInsert * 9).toBeLessThanOrEqual(portableSql(db).maxParameters);
    expect(statements).toBe(Math.ceil(8000 / repository.rowsPerInsert));
    expect(await analyses.countFrameMetrics(id)).toBe(8000);
  });

  it('keeps a clip id across upserts and merges partial AI results', async () => {
    const id = await newVideo();
    const clip = { videoId: id, clipIndex: 0, startSeconds: 1, endSeconds: 9, score: 80, reasons: ['scene cut'], aspect: '9:16' as const };
    const first = await analyses.upsertClip({ ...clip, status: 'pending' });
    const second = await analyses.upsertClip({
      ...clip,
      status: 'rendered',
      storageKey: 'clips/a.mp4',
      width: 1080,
      height: 1920,
      durationSeconds: 8,
      reasons: ['scene cut', 'motion'],
    });
    expect(second).toMatchObject({ id: first.id, status: 'rendered', storageKey: 'clips/a.mp4', width: 1080, reasons: ['scene cut', 'motion'] });
    expect(await analyses.listClips(id)).toHaveLength(1);
    expect(await analyses.findClip(first.id)).toMatchObject({ id: first.id, durationSeconds: 8 });

    const results = new AiResultsRepository(db);
    await results.saveClipExtras(id, first.id, { title: 'A title', hashtags: ['#one', '#two'] });
    await results.saveClipExtras(id, first.id, { caption: 'A caption', voiceoverKey: 'voice/a.mp3' });
    expect((await results.clipExtras(id)).get(first.id)).toEqual({
      clipId: first.id,
      title: 'A title',
      caption: 'A caption',
      hashtags: ['#one', '#two'],
      thumbnailKey: null,
      voiceoverKey: 'voice/a.mp3',
    });

    // A transcript larger than MySQL's TEXT (64 KiB) fits.
    const text = 'word '.repeat(30_000);
    const segments = [{ startSeconds: 0, endSeconds: 1.5, text: 'word' }];
    await results.saveTranscript(id, { text: 'draft', language: null, durationSeconds: null, segments: [] });
    await results.saveTranscript(id, { text, language: 'en', durationSeconds: 12.5, segments });
    expect(await results.transcript(id)).toEqual({ text, language: 'en', durationSeconds: 12.5, segments });
  });

  it('writes a multi-table change all or nothing', async () => {
    const id = await newVideo();
    await videos.saveAnalysis(id, METADATA, [{ startSeconds: 0, endSeconds: 3 }]);
    // The second scene ends before it starts: the check constraint refuses it, and the update of
    // the video in the same transaction is rolled back with it.
    await expect(
      videos.saveAnalysis(id, { ...METADATA, durationSeconds: 99 }, [
        { startSeconds: 0, endSeconds: 2 },
        { startSeconds: 5, endSeconds: 1 },
      ]),
    ).rejects.toThrow();
    const view = await videos.find(id);
    expect(view!.metadata!.durationSeconds).toBe(METADATA.durationSeconds);
    expect(view!.scenes).toEqual([{ startSeconds: 0, endSeconds: 3 }]);
  });

  it("reads no row of another tenant's video, its scenes and steps included, so it answers like a missing one", async () => {
    let rowsRead = 0;
    const counting: KyselyPlugin = {
      transformQuery: (args) => args.node,
      transformResult: async (args) => {
        rowsRead += args.result.rows.length;
        return args.result;
      },
    };
    const counted = new VideosRepository(db.withPlugin(counting), { stepOrder: VIDEO_STEPS });
    const owner = `owner-${randomUUID()}`;
    const id = randomUUID();
    await videos.create({ id, source: `/media/${id}.mp4`, title: null, steps: ['ingest', 'analyze', 'render'], tenantId: owner });
    await videos.saveAnalysis(id, METADATA, [
      { startSeconds: 0, endSeconds: 3 },
      { startSeconds: 3, endSeconds: 6 },
    ]);

    expect(await counted.find(id, tenantScope(`other-${randomUUID()}`))).toBeUndefined();
    expect(rowsRead).toBe(0);
    const own = await counted.find(id, tenantScope(owner));
    expect(own?.scenes).toHaveLength(2);
    expect(own?.steps).toHaveLength(3);
    expect(rowsRead).toBeGreaterThanOrEqual(1 + 2 + 3);
  });

  it('deletes a video with everything that hangs off it', async () => {
    const id = await newVideo({ callbackUrl: 'https://hooks.test/b' });
    await videos.saveAnalysis(id, METADATA, [{ startSeconds: 0, endSeconds: 3 }]);
    await analyses.saveFrameMetrics(id, frames(10, 1));
    await analyses.upsertClip({ videoId: id, clipIndex: 0, startSeconds: 0, endSeconds: 2, score: 50, reasons: [], aspect: '1:1', status: 'pending' });
    await videos.cancel(id);
    await videos.remove(id);
    for (const table of ['video_steps', 'scenes', 'frame_metrics', 'clips', 'webhook_deliveries'] as const) {
      const { count } = await db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('video_id', '=', id)
        .executeTakeFirstOrThrow();
      expect({ table, count: Number(count) }).toEqual({ table, count: 0 });
    }
  });

  it('finds finished videos by age, releases a source once, and deletes only finished videos with their job events', async () => {
    const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000);
    const [old, failed, recent, running] = [await newVideo(), await newVideo(), await newVideo(), await newVideo()];
    for (const id of [old, failed, recent, running]) {
      await videos.setSource(id, { storageKey: `videos/${id}/source.mp4`, sizeBytes: 10 });
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
      await videos.setStatus(id, 'processing');
    }
    await videos.setStatus(old, 'completed');
    await videos.failVideo(failed, 'analyze', 'analyze: broken');
    await videos.setStatus(recent, 'completed');
    await db
      .updateTable('videos')
      .set({ completed_at: daysAgo(40), updated_at: daysAgo(40) })
      .where('id', '=', old)
      .execute();
    await db
      .updateTable('videos')
      .set({ updated_at: daysAgo(35) })
      .where('id', 'in', [failed, running])
      .execute();
    // A failed video has no completed_at: its last change counts. The old one comes first.
    expect(await videos.finishedBefore(30 * 86_400, 10)).toEqual([old, failed]);
    expect(await videos.finishedBefore(30 * 86_400, 1)).toEqual([old]);
    expect(await videos.finishedWithSource(600, 10)).toEqual([old, failed]);

    expect(await videos.releaseSource(recent)).toBe(`videos/${recent}/source.mp4`);
    expect(await videos.releaseSource(recent)).toBeNull();
    expect(await videos.releaseSource(running)).toBeNull();
    expect(await analyses.findSourceKey(recent)).toBeNull();
    expect(await analyses.findSourceKey(running)).toBe(`videos/${running}/source.mp4`);

    expect((await videos.deleteFinished([old, running, randomUUID()])).sort()).toEqual([old]);
    expect(await videos.status(old)).toBeUndefined();
    expect(await videos.status(running)).toBeDefined();
    const events = await db.selectFrom('job_events').select('video_id').where('video_id', 'in', [old, running]).execute();
    expect(events.map((event) => event.video_id)).toEqual([running]);
  });

  it('finishes a video once, with its webhook in the outbox and every delivery attempt logged', async () => {
    const id = await newVideo({ callbackUrl: 'https://hooks.test/c' });
    const finished: string[][] = [];
    const hooked = new VideosRepository(db, { stepOrder: VIDEO_STEPS, onFinished: (_video, deliveries) => void finished.push(deliveries) });
    expect(await hooked.setStatus(id, 'processing')).toBe(true);
    await hooked.raiseProgress(id, 40);
    await hooked.raiseProgress(id, 30);
    expect((await hooked.find(id))!.progress).toBe(40);
    await hooked.failVideo(id, 'analyze', 'not a video');
    expect(await hooked.setStatus(id, 'completed')).toBe(false);
    expect(await hooked.cancel(id)).toBe(false);
    const view = await hooked.find(id);
    expect(view).toMatchObject({ status: 'failed', error: 'not a video' });
    expect(view!.steps.map((step) => [step.name, step.status])).toEqual([
      ['ingest', 'cancelled'],
      ['analyze', 'failed'],
      ['render', 'cancelled'],
    ]);

    // A late failure of a step (a job redelivered after its video ended) changes no step of a finished video.
    const done = await newVideo({});
    await videos.setStep(done, 'ingest', 'completed');
    expect(await videos.setStatus(done, 'completed')).toBe(true);
    await videos.failVideo(done, 'ingest', 'ingest: job stalled more than allowable limit');
    expect((await videos.find(done))!.steps.map((step) => [step.name, step.status])).toEqual([
      ['ingest', 'completed'],
      ['analyze', 'pending'],
      ['render', 'pending'],
    ]);

    expect(finished).toHaveLength(1);
    const [deliveryId] = finished[0]!;
    const webhooks = new WebhooksRepository(db);
    expect(await webhooks.find(deliveryId!)).toMatchObject({ videoId: id, event: 'video.failed', url: 'https://hooks.test/c', state: 'pending', attempts: 0 });
    // The first body kept is the one every attempt sends (one larger than MySQL's TEXT holds); it goes once settled.
    const body = JSON.stringify({ id: deliveryId, transcript: 'word '.repeat(40_000) });
    expect(await webhooks.keepBody(deliveryId!, body)).toBe(body);
    expect(await webhooks.keepBody(deliveryId!, '{"a later":"body"}')).toBe(body);
    await webhooks.recordAttempt(deliveryId!, { statusCode: 503, error: 'unavailable', durationMs: 12.4 }, 'retry');
    expect((await webhooks.find(deliveryId!))?.body).toBe(body);
    await webhooks.recordAttempt(deliveryId!, { statusCode: 200, error: null, durationMs: 8 }, 'delivered');
    expect(await webhooks.find(deliveryId!)).toMatchObject({ state: 'delivered', attempts: 2, lastStatus: 200, lastError: null, body: null });
    // A run that read it pending before it was settled keeps no body now, and sends nothing.
    expect(await webhooks.keepBody(deliveryId!, '{"late":"run"}')).toBeUndefined();
    expect((await webhooks.find(deliveryId!))?.body).toBeNull();
    const attempts = await db
      .selectFrom('webhook_attempts')
      .select(['attempt', 'status_code'])
      .where('delivery_id', '=', deliveryId!)
      .orderBy('attempt')
      .execute();
    expect(attempts).toEqual([
      { attempt: 1, status_code: 503 },
      { attempt: 2, status_code: 200 },
    ]);
    // A run ending after the delivery was settled (one job run twice) logs its attempt and leaves
    // the delivery delivered, its delivery time included.
    const deliveredAt = (await db.selectFrom('webhook_deliveries').select('delivered_at').where('id', '=', deliveryId!).executeTakeFirstOrThrow()).delivered_at;
    expect(deliveredAt).not.toBeNull();
    await webhooks.recordAttempt(deliveryId!, { statusCode: 500, error: 'late', durationMs: 5 }, 'failed');
    await webhooks.recordAttempt(deliveryId!, { statusCode: 201, error: null, durationMs: 5 }, 'delivered');
    expect(await webhooks.find(deliveryId!)).toMatchObject({ state: 'delivered', attempts: 4, lastStatus: 201 });
    const after = await db.selectFrom('webhook_deliveries').select('delivered_at').where('id', '=', deliveryId!).executeTakeFirstOrThrow();
    expect(String(after.delivered_at)).toBe(String(deliveredAt));

    // A pending delivery untouched for a while is found by the sweeper, on the database clock.
    const stale = await newVideo({ callbackUrl: 'https://hooks.test/d' });
    await videos.cancel(stale);
    const [pending] = await webhooks.forVideo(stale);
    expect(await webhooks.stalePending(3600)).not.toContain(pending!.id);
    await db
      .updateTable('webhook_deliveries')
      .set({ updated_at: portableSql(db).secondsAgo(7200) })
      .where('id', '=', pending!.id)
      .execute();
    expect(await webhooks.stalePending(3600)).toContain(pending!.id);
  });

  it("stores a step's completion and its completed event together, or neither, and one event a job", async () => {
    const id = await newVideo();
    await videos.setStatus(id, 'processing');
    await videos.setStep(id, 'ingest', 'active', { attempts: 2 });
    const completion = { videoId: id, queue: 'ingest', jobName: 'ingest-video', jobId: `${id}-ingest`, step: 'ingest', attempt: 2 };
    const completedEvents = async () =>
      (await db.selectFrom('job_events').select(['step', 'attempt']).where('video_id', '=', id).where('status', '=', 'completed').execute()).map(
        (event) => `${event.step}#${event.attempt}`,
      );
    const stepOf = async () => (await videos.find(id))!.steps.find((step) => step.name === 'ingest');

    // The event's insert fails (a missing queue breaks a NOT NULL column): the step stays as it was.
    const before = (await videos.find(id))!.version;
    await expect(videos.completeStep({ ...completion, queue: null as unknown as string })).rejects.toThrow();
    expect(await stepOf()).toMatchObject({ status: 'active', attempts: 2 });
    expect(await completedEvents()).toEqual([]);
    expect((await videos.find(id))!.version).toBe(before);

    await videos.completeStep(completion);
    expect(await stepOf()).toMatchObject({ status: 'completed', attempts: 2, reason: null });
    expect(await completedEvents()).toEqual(['ingest#2']);
    expect((await videos.find(id))!.version).toBeGreaterThan(before);

    // The same job completing again (its first commit's answer was lost, so it ran again) keeps one event.
    await videos.setStep(id, 'ingest', 'active', { attempts: 3 });
    await videos.completeStep({ ...completion, attempt: 3 });
    expect(await stepOf()).toMatchObject({ status: 'completed', attempts: 3 });
    expect(await completedEvents()).toEqual(['ingest#2']);
  });

  it('stores text with a NUL from jobs (transcripts, captions, metadata, reasons) with U+FFFD in its place', async () => {
    const id = await newVideo();
    const results = new AiResultsRepository(db);
    const nul = 'a\u0000b';
    const clip = await analyses.upsertClip({
      videoId: id,
      clipIndex: 0,
      startSeconds: 0,
      endSeconds: 5,
      score: 1,
      reasons: [],
      aspect: '9:16',
      status: 'pending',
    });
    await results.saveTranscript(id, { text: nul, language: null, durationSeconds: null, segments: [{ startSeconds: 0, endSeconds: 1, text: nul }] });
    await results.saveClipExtras(id, clip.id, { title: nul, caption: nul, hashtags: [nul, 'c:\\u0000'] });
    await new ExternalMetadataRepository(db).save(id, 'youtube', 'dQw4w9WgXcQ', { title: nul, [nul]: 1 });
    await videos.setStep(id, 'ingest', 'active', { reason: `ingest: ${nul}` });
    await videos.recordJobEvent({
      videoId: id,
      queue: 'ingest',
      jobName: 'ingest-video',
      jobId: `${id}-ingest`,
      step: 'ingest',
      status: 'retrying',
      attempt: 1,
      reason: nul,
    });
    const shown = 'a\ufffdb';
    expect(await results.transcript(id)).toMatchObject({ text: shown, segments: [{ text: shown }] });
    // An escaped backslash before "u0000" is text, kept as it was.
    expect((await results.clipExtras(id)).get(clip.id)).toMatchObject({ title: shown, caption: shown, hashtags: [shown, 'c:\\u0000'] });
    expect((await new ExternalMetadataRepository(db).find(id))?.data).toEqual({ title: shown, [shown]: 1 });
    expect((await videos.find(id))!.steps.find((step) => step.name === 'ingest')?.reason).toBe(`ingest: ${shown}`);
    const [event] = await db.selectFrom('job_events').select('reason').where('video_id', '=', id).execute();
    expect(event?.reason).toBe(shown);
  });

  it('leaves no job event behind a purged video, and fails only a step its job never settled', async () => {
    const id = await newVideo();
    await videos.setStatus(id, 'processing');
    await videos.setStep(id, 'render', 'active');
    await videos.failUnsettledStep(id, 'render', 'render: the job stalled more often than allowed');
    await videos.failUnsettledStep(id, 'ingest', 'ingest: stalled');
    await videos.setStep(id, 'analyze', 'completed');
    await videos.failUnsettledStep(id, 'analyze', 'analyze: stalled');
    const steps = Object.fromEntries((await videos.find(id))!.steps.map((step) => [step.name, step.status]));
    expect(steps).toEqual({ ingest: 'failed', analyze: 'completed', render: 'failed' });

    // A cancelled video keeps its final version: a late analysis write changes nothing.
    await videos.cancel(id);
    const final = (await videos.find(id))!.version;
    await videos.saveAnalysis(id, METADATA, [{ startSeconds: 0, endSeconds: 2 }]);
    expect((await videos.find(id))!).toMatchObject({ version: final, scenes: [] });

    expect(await videos.deleteFinished([id])).toEqual([id]);
    const event = { videoId: id, queue: 'render', jobName: 'render-clip', jobId: `${id}-render`, step: 'render', attempt: 1 };
    await videos.recordJobEvent({ ...event, status: 'cancelled', reason: 'cancelled on request' });
    await videos.completeStep(event);
    expect(await db.selectFrom('job_events').select('id').where('video_id', '=', id).execute()).toEqual([]);
    // Nothing is left to copy from a purged video's analysis.
    expect(await analyses.copyAnalysisRows(id, await newVideo())).toBe(0);
  });

  it('never shows a video as failed or cancelled while the step that ended it still reads active', async () => {
    // Reads race the transaction that ends the video: each view must come from one side of it.
    const torn: string[] = [];
    for (let round = 0; round < 60; round++) {
      const id = await newVideo();
      await videos.setStatus(id, 'processing');
      await videos.setStep(id, 'ingest', 'active', { attempts: 1 });
      const end = round % 2 === 0 ? videos.failVideo(id, 'ingest', 'ingest: not a video') : videos.cancel(id);
      const views = await Promise.all(Array.from({ length: 6 }, () => videos.find(id)));
      await end;
      for (const view of views) {
        const unfinished = view!.steps.filter((step) => step.status === 'active' || step.status === 'pending');
        if (view!.status !== 'processing' && unfinished.length)
          torn.push(`${view!.status} with ${unfinished.map((step) => `${step.name} ${step.status}`).join(', ')}`);
      }
    }
    expect(torn).toEqual([]);
  });

  it('creates a batch of 2,100 videos with all their steps in one transaction, past what one statement could bind', async () => {
    const owner = `key-${randomUUID()}`;
    const ids = Array.from({ length: 2100 }, () => randomUUID());
    // Nine steps each: 18,900 step rows, 75,600 step parameters and 42,000 video parameters in all.
    const steps = [...VIDEO_STEPS, 'extra-step'] as typeof VIDEO_STEPS;
    await videos.createMany(ids.map((id) => ({ id, source: `/media/${id}.mp4`, title: null, steps, tenantId: owner })));
    const counted = await db
      .selectFrom('video_steps')
      .innerJoin('videos', 'videos.id', 'video_steps.video_id')
      .where('videos.tenant_id', '=', owner)
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .executeTakeFirstOrThrow();
    expect(Number(counted.count)).toBe(2100 * steps.length);
    expect((await videos.list({ limit: 1, scope: tenantScope(owner) })).items).toHaveLength(1);
  });

  it('pages through videos created in one transaction without losing or repeating one', async () => {
    const owner = `key-${randomUUID()}`;
    const ids = Array.from({ length: 7 }, () => randomUUID());
    await videos.createMany(ids.map((id) => ({ id, source: `/media/${id}.mp4`, title: null, steps: ['ingest'], tenantId: owner })));
    await videos.createMany(ids.map((id) => ({ id, source: `/media/${id}.mp4`, title: null, steps: ['ingest'], tenantId: owner })));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await videos.list({ limit: 3, scope: tenantScope(owner), ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((item) => item.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toHaveLength(7);
    expect(new Set(seen)).toEqual(new Set(ids));
    // Videos made one by one, within the same millisecond often (PostgreSQL keeps microseconds): a page of one each.
    const single = `key-${randomUUID()}`;
    const oneByOne = Array.from({ length: 6 }, () => randomUUID());
    for (const id of oneByOne) await videos.create({ id, source: `/media/${id}.mp4`, title: null, steps: ['ingest'], tenantId: single });
    const walked: string[] = [];
    let next: string | undefined;
    do {
      const page = await videos.list({ limit: 1, scope: tenantScope(single), ...(next ? { cursor: next } : {}) });
      walked.push(...page.items.map((item) => item.id));
      next = page.nextCursor ?? undefined;
    } while (next);
    // Every video once, in the order one page of them all gives (SQLite keeps milliseconds: videos of
    // the same millisecond are ordered by id there).
    const whole = await videos.list({ limit: 100, scope: tenantScope(single) });
    expect(walked).toEqual(whole.items.map((item) => item.id));
    expect(new Set(walked)).toEqual(new Set(oneByOne));
    // A page's last video deleted (a list-and-purge loop) does not end the walk: its cursor still holds its place.
    const first = await videos.list({ limit: 3, scope: tenantScope(owner) });
    const removed = first.items.at(-1)!.id;
    await videos.remove(removed);
    const rest = await videos.list({ limit: 10, scope: tenantScope(owner), cursor: first.nextCursor! });
    expect(rest.items.map((item) => item.id)).toEqual(seen.slice(3));
    const kept = ids.find((id) => id !== removed)!;
    await videos.setStatus(kept, 'processing');
    expect((await videos.list({ limit: 10, scope: tenantScope(owner), status: 'processing' })).items.map((item) => item.id)).toEqual([kept]);
  });

  it('scopes videos, users and public jobs to their tenant: another tenant finds nothing, not even through a cursor', async () => {
    const [alice, bob] = [`alice-${randomUUID()}`, `bob-${randomUUID()}`];
    const id = randomUUID();
    await videos.create({ id, source: '/media/a.mp4', title: null, steps: ['ingest'], tenantId: alice });
    expect((await videos.find(id, tenantScope(alice)))!.tenant).toBe(alice);
    expect(await videos.find(id, tenantScope(bob))).toBeUndefined();
    expect(await videos.status(id, tenantScope(bob))).toBeUndefined();
    expect(await videos.status(id, ANY_TENANT)).toBe('queued');
    expect((await videos.list({ limit: 10, scope: tenantScope(bob) })).items).toEqual([]);
    const mine = await videos.list({ limit: 10, scope: tenantScope(alice) });
    expect(mine.items.map((item) => item.id)).toEqual([id]);
    await videos.create({ id: randomUUID(), source: '/media/b.mp4', title: null, steps: ['ingest'], tenantId: alice });
    const firstPage = await videos.list({ limit: 1, scope: tenantScope(alice) });
    // Alice's cursor is only a place in the order to Bob: it pages through his videos (none), never hers.
    expect((await videos.list({ limit: 1, scope: tenantScope(bob), cursor: firstPage.nextCursor! })).items).toEqual([]);
    for (const position of ['x', '-999999999999999999', '99999999999999999999']) {
      await expect(
        videos.list({ limit: 1, scope: tenantScope(bob), cursor: Buffer.from(`v2:${id}:${position}`).toString('base64url') }),
      ).rejects.toBeInstanceOf(InvalidCursorError);
    }
    await expect(videos.list({ limit: 1, scope: tenantScope(bob), cursor: Buffer.from(`v2:${id}:x`).toString('base64url') })).rejects.toBeInstanceOf(
      InvalidCursorError,
    );
    expect(await videos.countUnfinished(alice)).toBe(2);
    expect(await videos.countUnfinished(bob)).toBe(0);

    const users = new UsersRepository(db);
    const userId = randomUUID();
    expect(await users.createPending({ id: userId, email: 'same@example.com', name: null, tenantId: alice })).toBe('created');
    // The same address in another tenant is another user; in the same tenant it is a duplicate.
    expect(await users.createPending({ id: randomUUID(), email: 'SAME@example.com', name: null, tenantId: bob })).toBe('created');
    expect(await users.createPending({ id: randomUUID(), email: 'Same@Example.com', name: null, tenantId: alice })).toBe('duplicate');
    expect(await users.find(userId, tenantScope(bob))).toBeUndefined();
    expect((await users.find(userId, tenantScope(alice)))!.email).toBe('same@example.com');
    // An address with capitals beyond ASCII, failed: given back on every engine (SQLite's lower() folds ASCII only).
    const emile = randomUUID();
    expect(await users.createPending({ id: emile, email: 'Émile@example.com', name: null, tenantId: alice })).toBe('created');
    await users.fail(emile, 'could not be opened');
    expect(await users.createPending({ id: randomUUID(), email: 'émile@example.com', name: null, tenantId: alice })).toBe('created');
    // A registration that failed, or stayed pending past the hour, gives its email back; an active or fresh one keeps it.
    await users.fail(userId, 'the sealed password could not be opened');
    const again = randomUUID();
    expect(await users.createPending({ id: again, email: 'Same@example.com', name: null, tenantId: alice })).toBe('created');
    expect(await users.find(userId)).toBeUndefined();
    expect(await users.createPending({ id: randomUUID(), email: 'same@example.com', name: null, tenantId: alice })).toBe('duplicate');
    await db
      .updateTable('users')
      .set({ created_at: new Date(Date.now() - 2 * 3600_000) })
      .where('id', '=', again)
      .execute();
    const third = randomUUID();
    expect(await users.createPending({ id: third, email: 'same@example.com', name: null, tenantId: alice })).toBe('created');
    await users.activate(third, 'scrypt$stand-in');
    await db
      .updateTable('users')
      .set({ created_at: new Date(Date.now() - 2 * 3600_000) })
      .where('id', '=', third)
      .execute();
    expect(await users.createPending({ id: randomUUID(), email: 'same@example.com', name: null, tenantId: alice })).toBe('duplicate');
    expect((await users.find(third))!.status).toBe('active');

    const jobs = new PublicJobsRepository(db);
    const jobId = randomUUID();
    await jobs.record({ id: jobId, tenant: alice, queue: 'sync', name: 'refresh-metadata' });
    await jobs.record({ id: jobId, tenant: alice, queue: 'sync', name: 'refresh-metadata' });
    expect(await jobs.visible(jobId, 'sync', tenantScope(alice))).toBe(true);
    expect(await jobs.visible(jobId, 'sync', tenantScope(bob))).toBe(false);
    expect(await jobs.visible(jobId, 'ingest', tenantScope(alice))).toBe(false);
    expect(await jobs.visible(jobId, 'sync', ANY_TENANT)).toBe(true);
  });

  it('keeps per-tenant webhook secrets sealed, rotates them with an overlap, and never opens them for another tenant', async () => {
    const keyring = { currentKeyId: 'k1', keys: { k1: new Uint8Array(32).fill(3) } };
    const secrets = new WebhookSecretsRepository(db, keyring);
    const tenant = `t-${randomUUID()}`;
    const first = await secrets.current(tenant);
    expect(first.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect((await secrets.current(tenant)).secret).toBe(first.secret);
    expect(await secrets.signing(tenant)).toEqual([first.secret]);
    const stored = await db.selectFrom('webhook_secrets').select('sealed_secret').where('tenant_id', '=', tenant).executeTakeFirstOrThrow();
    expect(stored.sealed_secret).not.toContain(first.secret.slice(6));
    const rotated = await secrets.rotate(tenant);
    expect(rotated.secret).not.toBe(first.secret);
    expect(rotated.previousExpiresAt!.getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
    expect(await secrets.signing(tenant)).toEqual([rotated.secret, first.secret]);
    // A sealed secret moved to another tenant's row does not open there.
    const other = `t-${randomUUID()}`;
    await db.insertInto('webhook_secrets').values({ id: randomUUID(), tenant_id: other, sealed_secret: stored.sealed_secret, expires_at: null }).execute();
    await expect(secrets.current(other)).rejects.toThrow();
    await db
      .updateTable('webhook_secrets')
      .set({ expires_at: portableSql(db).secondsAgo(1) })
      .where('tenant_id', '=', tenant)
      .where('expires_at', 'is not', null)
      .execute();
    expect(await secrets.signing(tenant)).toEqual([rotated.secret]);
    expect(await secrets.purgeExpired()).toBeGreaterThanOrEqual(1);
    // Rotations at once each make their own secret and leave one current, one a rotation answered.
    const answers = await Promise.all(Array.from({ length: 6 }, () => secrets.rotate(tenant)));
    expect(new Set(answers.map((answer) => answer.secret)).size).toBe(6);
    const current = await db.selectFrom('webhook_secrets').select('id').where('tenant_id', '=', tenant).where('expires_at', 'is', null).execute();
    expect(current).toHaveLength(1);
    const signing = await secrets.signing(tenant);
    expect(answers.map((answer) => answer.secret)).toContain(signing[0]);
    // Every answered secret still signs, through its overlap.
    for (const answer of answers) expect(signing).toContain(answer.secret);
    // First uses at once make one secret.
    const fresh = `t-${randomUUID()}`;
    const firsts = await Promise.all(Array.from({ length: 6 }, () => secrets.current(fresh)));
    expect(new Set(firsts.map((first) => first.secret)).size).toBe(1);
    expect(await db.selectFrom('webhook_secrets').select('id').where('tenant_id', '=', fresh).execute()).toHaveLength(1);
  });

  it("moves webhook secrets to the keyring's current key, so an old key can leave; a secret no key opens is rotated out", async () => {
    const k1 = new Uint8Array(32).fill(5);
    const k2 = new Uint8Array(32).fill(6);
    const tenant = `t-${randomUUID()}`;
    const before = await new WebhookSecretsRepository(db, { currentKeyId: 'k1', keys: { k1 } }).current(tenant);
    const rotatedKeyring = new WebhookSecretsRepository(db, { currentKeyId: 'k2', keys: { k2, k1 } });
    const moved = await rotatedKeyring.resealUnderCurrentKey();
    expect(moved.resealed).toBeGreaterThanOrEqual(1);
    expect((await rotatedKeyring.resealUnderCurrentKey()).resealed).toBe(0);
    // k1 gone from the keyring: the secret still opens, and is the same secret.
    const withoutOld = new WebhookSecretsRepository(db, { currentKeyId: 'k2', keys: { k2 } });
    expect((await withoutOld.current(tenant)).secret).toBe(before.secret);
    // A secret sealed under a key no longer held: it cannot open, but its tenant can rotate it out.
    const lost = `t-${randomUUID()}`;
    await new WebhookSecretsRepository(db, { currentKeyId: 'k9', keys: { k9: new Uint8Array(32).fill(9) } }).current(lost);
    expect((await withoutOld.resealUnderCurrentKey()).unopenable).toBeGreaterThanOrEqual(1);
    await expect(withoutOld.current(lost)).rejects.toThrow(/not in the keyring/);
    const fresh = await withoutOld.rotate(lost);
    expect((await withoutOld.current(lost)).secret).toBe(fresh.secret);
    // Deliveries are signed with the new secret at once: the rotated one, which no key opens, signs nothing.
    expect(await withoutOld.signing(lost)).toEqual([fresh.secret]);
  });

  it('claims, replays and refuses idempotency keys; a dead claim is taken over after its lease', async () => {
    const keys = new IdempotencyRepository(db, 3600, 60);
    const principal = randomUUID();
    const claimed = { outcome: 'claimed', token: expect.any(String) };
    const first = await keys.claim(principal, 'Key-1', 'hash-a');
    expect(first).toEqual(claimed);
    // Keys compare exactly: another case is another key.
    expect(await keys.claim(principal, 'key-1', 'hash-a')).toEqual(claimed);
    expect(await keys.claim(principal, 'Key-1', 'hash-a')).toEqual({ outcome: 'in-progress' });
    expect(await keys.claim(principal, 'Key-1', 'hash-b')).toEqual({ outcome: 'mismatch' });
    expect(
      await keys.complete(principal, 'Key-1', (first as { token: string }).token, 202, { id: 'v1', links: { self: '/v1/videos/v1' } }, '/v1/videos/v1'),
    ).toBe(true);
    expect(await keys.claim(principal, 'Key-1', 'hash-a')).toEqual({
      outcome: 'replay',
      status: 202,
      body: { id: 'v1', links: { self: '/v1/videos/v1' } },
      location: '/v1/videos/v1',
    });

    const dialect = portableSql(db);
    await db
      .updateTable('idempotency_keys')
      .set({ created_at: dialect.secondsAgo(120) })
      .where('key', '=', 'key-1')
      .execute();
    expect(await keys.claim(principal, 'key-1', 'hash-a')).toEqual(claimed);

    await db
      .updateTable('idempotency_keys')
      .set({ expires_at: dialect.secondsAgo(1) })
      .where('principal', '=', principal)
      .where('key', '=', 'Key-1')
      .execute();
    expect(await keys.claim(principal, 'Key-1', 'hash-b')).toEqual(claimed);
    await db
      .updateTable('idempotency_keys')
      .set({ expires_at: dialect.secondsAgo(1) })
      .where('principal', '=', principal)
      .execute();
    expect(await keys.purgeExpired()).toBeGreaterThanOrEqual(2);
    // In bounded batches: five expired keys, batches of two, two batches a call.
    const batched = randomUUID();
    for (const key of ['a', 'b', 'c', 'd', 'e']) await keys.claim(batched, key, 'hash');
    await db
      .updateTable('idempotency_keys')
      .set({ expires_at: dialect.secondsAgo(1) })
      .where('principal', '=', batched)
      .execute();
    expect(await keys.purgeExpired(2, 2)).toBe(4);
    expect(await keys.purgeExpired(2, 2)).toBe(1);

    // A stored body that is a bare JSON string, or a string of digits, comes back as that string.
    for (const [key, body] of [
      ['text-body', 'accepted'],
      ['digits-body', '123'],
    ] as const) {
      const claim = (await keys.claim(principal, key, 'hash-a')) as { token: string };
      await keys.complete(principal, key, claim.token, 200, body);
      expect(await keys.claim(principal, key, 'hash-a')).toEqual({ outcome: 'replay', status: 200, body, location: null });
    }
  });

  it('refuses a second user with the same email in another case, and activates and welcomes once', async () => {
    const users = new UsersRepository(db);
    const id = randomUUID();
    expect(await users.createPending({ id, email: 'Ada@Example.com', name: 'Ada' })).toBe('created');
    expect(await users.createPending({ id: randomUUID(), email: 'ada@example.COM', name: null })).toBe('duplicate');
    // Case folding goes beyond ASCII on every engine.
    expect(await users.createPending({ id: randomUUID(), email: 'Émile.Øst@example.com', name: null })).toBe('created');
    expect(await users.createPending({ id: randomUUID(), email: 'émile.øst@example.com', name: null })).toBe('duplicate');
    expect(await users.activate(id, 'scrypt$hash')).toBe(true);
    expect(await users.activate(id, 'scrypt$other')).toBe(false);
    expect(await users.markWelcomed(id)).toBe(true);
    expect(await users.markWelcomed(id)).toBe(false);
    expect(await users.passwordHash(id)).toBe('scrypt$hash');
    expect(await users.find(id)).toMatchObject({ email: 'Ada@Example.com', status: 'active', activatedAt: expect.any(String), welcomedAt: expect.any(String) });
  });

  it('verifies API keys against their stored digest and stops on revocation', async () => {
    const keys = new ApiKeysRepository(db);
    const created = await keys.create('engine test');
    expect(await keys.verify(created.key)).toEqual({ id: created.id, name: 'engine test', tenant: 'engine-test', role: 'tenant' });
    const operator = await keys.create('ops', { tenant: 'acme', admin: true });
    expect(await keys.verify(operator.key)).toEqual({ id: operator.id, name: 'ops', tenant: 'acme', role: 'admin' });
    await expect(keys.create('bad', { tenant: 'Not A Tenant' })).rejects.toThrow(/tenant must be/);
    expect(await keys.verify(`${created.key.slice(0, -1)}${created.key.endsWith('a') ? 'b' : 'a'}`)).toBeNull();
    expect(await keys.revoke(created.prefix)).toBe('revoked');
    expect(await keys.revoke(created.id)).toBe('already-revoked');
    expect(await keys.verify(created.key)).toBeNull();
    const listed = (await keys.list()).find((key) => key.id === created.id);
    expect(listed?.revokedAt).toBeInstanceOf(Date);
    expect(listed?.lastUsedAt).toBeInstanceOf(Date);
  });

  it('lists tracked videos due for a metadata refresh, never fetched first', async () => {
    const external = new ExternalMetadataRepository(db);
    const fresh = await newVideo({ youtubeId: 'fresh000000' });
    const old = await newVideo({ youtubeId: 'old00000000' });
    const never = await newVideo({ youtubeId: 'never000000' });
    await external.save(fresh, 'youtube', 'fresh000000', { title: 'Fresh', tags: ['a'], stats: { views: 12 } });
    await external.save(old, 'youtube', 'old00000000', { title: 'Old' });
    await db
      .updateTable('external_metadata')
      .set({ fetched_at: portableSql(db).secondsAgo(7200) })
      .where('video_id', '=', old)
      .execute();
    const due = await external.dueForRefresh(3600, 1000);
    expect(due.filter((id) => [fresh, old, never].includes(id))).toEqual([never, old]);
    expect(await external.find(fresh)).toMatchObject({
      provider: 'youtube',
      externalId: 'fresh000000',
      data: { title: 'Fresh', tags: ['a'], stats: { views: 12 } },
    });
  });

  it('times each named query, failures included', async () => {
    const registry = new Registry();
    observeQueries(db, registry);
    const repository = new VideosRepository(db);
    const id = randomUUID();
    await repository.create({ id, source: '/media/t.mp4', title: null, steps: ['ingest'] });
    await expect(repository.saveAnalysis(id, METADATA, [{ startSeconds: 4, endSeconds: 1 }])).rejects.toThrow();
    const { values } = await registry.getSingleMetric('clipline_db_query_duration_seconds')!.get();
    const count = (query: string, outcome: string) =>
      values.find((value) => value.metricName?.endsWith('_count') && value.labels.query === query && value.labels.outcome === outcome)?.value;
    expect(count('videos.create', 'ok')).toBe(1);
    expect(count('videos.saveAnalysis', 'error')).toBe(1);
  });
});
