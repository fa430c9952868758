import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Validator } from '@seriousme/openapi-schema-validator';
import {
  accountsQueue,
  ApiKeysRepository,
  createService,
  portableSql,
  DEV_API_KEY,
  IdempotencyRepository,
  ingestQueue,
  syncQueue,
  VIDEO_STEPS,
  type ServiceContext,
  type VideoStatus,
} from '@clipline/shared';
import { buildProducer } from '../src/producer.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

const auth = { authorization: `Bearer ${DEV_API_KEY}` };
let env: TestEnvironment;
let service: ServiceContext;
let producer: ReturnType<typeof buildProducer>;

beforeAll(async () => {
  env = await createTestEnvironment({ API_RATE_LIMIT_PER_MINUTE: '0' });
  service = createService('producer', env.config);
  producer = buildProducer(service);
  await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
});

afterAll(async () => {
  await service.shutdown.shutdown('tests done');
  await env.cleanup();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  request(producer.app)
    .post(path)
    .set(auth)
    .set(headers)
    .send(body as object);
const get = (path: string) => request(producer.app).get(path).set(auth);

describe('OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document generated from the request schemas', async () => {
    const res = await request(producer.app).get('/openapi.json');
    expect(res.status).toBe(200);
    const validator = new Validator();
    const result = await validator.validate(res.body);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(res.body.components.schemas.VideoSubmission.required).toEqual(['source']);
    expect(res.body.components.schemas.VideoSubmission.additionalProperties).toBe(false);
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/v1/videos', '/v1/videos:batch', '/v1/videos/{id}', '/v1/videos/{id}/events']));
  });
});

describe('submission options', () => {
  it('records options, callback and priority, and starts a delayed video later', async () => {
    const res = await post('/v1/videos', {
      source: 'https://cdn.example.com/a.mp4',
      options: { clipCount: 4, minClipSeconds: 6, maxClipSeconds: 20, aspect: '1:1' },
      callbackUrl: 'https://hooks.example.com/clipline',
      priority: 'high',
      delaySeconds: 3600,
    });
    expect(res.status).toBe(202);
    const video = await get(`/v1/videos/${res.body.id}`);
    expect(video.body).toMatchObject({
      options: { clipCount: 4, minClipSeconds: 6, maxClipSeconds: 20, aspect: '1:1' },
      callbackUrl: 'https://hooks.example.com/clipline',
      priority: 'high',
    });
    // Pipeline steps are internal: read straight from the queue, not through /v1/jobs.
    expect(await producer.jobs.get(ingestQueue, `${res.body.id}-ingest`)).toMatchObject({ state: 'delayed', name: 'ingest-video' });
    expect((await get(`/v1/jobs/ingest/${res.body.id}-ingest`)).status).toBe(404);
  });

  it.each([
    [{ source: '/a.mp4', options: { clipCount: 0 } }, /options.clipCount/],
    [{ source: '/a.mp4', options: { minClipSeconds: 40, maxClipSeconds: 10 } }, /minClipSeconds must not exceed maxClipSeconds/],
    [{ source: '/a.mp4', options: { aspect: '4:3' } }, /options.aspect/],
    [{ source: '/a.mp4', callbackUrl: 'ftp://x' }, /callbackUrl must be an http\(s\) URL/],
    [{ source: '/a.mp4', priority: 'urgent' }, /priority/],
    [{ source: '/a.mp4', delaySeconds: -1 }, /delaySeconds/],
  ])('refuses %j', async (body, detail) => {
    const res = await post('/v1/videos', body);
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(detail);
  });
});

describe('POST /v1/videos:batch', () => {
  it('accepts many videos in one request, in order', async () => {
    const videos = Array.from({ length: 250 }, (_, i) => ({ source: `/media/batch-${i}.mp4`, title: `b${i}` }));
    const res = await post('/v1/videos:batch', { videos });
    expect(res.status).toBe(202);
    expect(res.body.videos).toHaveLength(250);
    const ids = res.body.videos.map((video: { id: string }) => video.id);
    expect(new Set(ids).size).toBe(250);
    const rows = await env.db.selectFrom('videos').select(['id', 'title']).where('id', 'in', ids).execute();
    expect(rows).toHaveLength(250);
    const last = await get(`/v1/videos/${ids[249]}`);
    expect(last.body.title).toBe('b249');
  });

  it('refuses the whole batch when one submission is bad, naming it, and writes nothing', async () => {
    const before = await env.db
      .selectFrom('videos')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    const res = await post('/v1/videos:batch', { videos: [{ source: '/ok.mp4' }, { source: 'relative.mp4' }] });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/videos\.1\.source/);
    // A NUL, which PostgreSQL would refuse to store, is refused as bad input before any write.
    const nul = await post('/v1/videos:batch', { videos: [{ source: '/ok.mp4' }, { source: '/b.mp4', title: 'b\u0000' }] });
    expect([nul.status, nul.body.detail]).toEqual([400, expect.stringMatching(/videos\.1\.title: title must not contain NUL characters/)]);
    // The in-process producer, which other Node services call without the HTTP schema, refuses it too.
    await expect(producer.pipeline.submitMany([{ submission: { source: '/ok.mp4' } }, { submission: { source: '/b.mp4', title: 'b\u0000' } }])).rejects.toThrow(
      /^videos\.1\.title: title contains a NUL character$/,
    );
    const after = await env.db
      .selectFrom('videos')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
    // Tabs and line breaks are text like any other.
    const multiline = await post('/v1/videos', { source: '/ok.mp4', title: 'Talk\nPart\t2' });
    expect(multiline.status).toBe(202);
    expect((await get(`/v1/videos/${multiline.body.id}`)).body.title).toBe('Talk\nPart\t2');
  });

  it('refuses an empty or oversized batch', async () => {
    expect((await post('/v1/videos:batch', { videos: [] })).body.detail).toMatch(/at least one/);
    const tooMany = Array.from({ length: 1001 }, () => ({ source: '/a.mp4' }));
    expect((await post('/v1/videos:batch', { videos: tooMany })).body.detail).toMatch(/at most 1000/);
  });
});

describe('GET /v1/videos', () => {
  /**
   * Videos of a tenant of their own (so other tests' videos do not interleave), created oldest
   * first one second apart (so no two share a creation time and fall back to id order), with a
   * status each. Statuses are set newest first, so `updated_at` order is the reverse of creation.
   */
  async function videosOfOwnTenant(statuses: readonly VideoStatus[]) {
    const created = await new ApiKeysRepository(env.db).create('listing', { tenant: `listing-${randomUUID().slice(0, 8)}` });
    const headers = { authorization: `Bearer ${created.key}` };
    const ids: string[] = [];
    for (const [index] of statuses.entries()) {
      const res = await request(producer.app)
        .post('/v1/videos')
        .set(headers)
        .send({ source: `/media/listing-${index}.mp4` });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    const clock = portableSql(env.db);
    for (const [index, id] of ids.entries()) {
      await env.db
        .updateTable('videos')
        .set({ created_at: clock.secondsAgo(100 - index) })
        .where('id', '=', id)
        .execute();
    }
    for (let index = ids.length - 1; index >= 0; index -= 1) {
      if (statuses[index] !== 'queued') expect(await producer.videos.setStatus(ids[index]!, statuses[index]!)).toBe(true);
    }
    const list = async (query: string) => {
      const seen: { id: string; status: string }[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await request(producer.app)
          .get(`/v1/videos?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
          .set(headers);
        expect(res.status).toBe(200);
        seen.push(...res.body.items.map((item: { id: string; status: string }) => ({ id: item.id, status: item.status })));
        cursor = res.body.nextCursor;
        pages += 1;
      } while (cursor && pages < 50);
      return { seen, pages };
    };
    return { ids, list };
  }

  const STATUSES: readonly VideoStatus[] = ['queued', 'processing', 'completed', 'failed', 'queued', 'cancelled', 'processing', 'completed'];

  it('pages through every video exactly once, newest first', async () => {
    const { ids, list } = await videosOfOwnTenant(STATUSES);
    const { seen, pages } = await list('limit=3');
    expect(pages).toBe(3);
    expect(seen.map((item) => item.id)).toEqual([...ids].reverse());
    expect(seen.map((item) => item.status)).toEqual([...STATUSES].reverse());
  });

  it('filters by status: only that status, newest first, across pages', async () => {
    const { ids, list } = await videosOfOwnTenant(STATUSES);
    const expected = (status: VideoStatus) => ids.filter((_, index) => STATUSES[index] === status).reverse();
    for (const status of ['queued', 'processing', 'completed', 'failed', 'cancelled'] as const) {
      const { seen } = await list(`status=${status}&limit=1`);
      expect({ status, ids: seen.map((item) => item.id) }).toEqual({ status, ids: expected(status) });
      expect(seen.every((item) => item.status === status)).toBe(true);
    }
  });

  it('refuses a bad limit, status or cursor', async () => {
    expect((await get('/v1/videos?limit=0')).body.detail).toMatch(/limit must be 1-100/);
    for (const limit of ['limit=1&limit=2', 'limit=ten', 'limit=2.5'])
      expect([limit, (await get(`/v1/videos?${limit}`)).body.detail]).toEqual([limit, 'limit: limit must be a whole number 1-100']);
    expect((await get('/v1/videos?status=exploded')).status).toBe(400);
    expect((await get('/v1/videos?cursor=bm9wZQ')).body.detail).toMatch(/cursor is not one this API returned/);
  });
});

describe('DELETE /v1/videos/:id', () => {
  it('cancels a waiting video: its jobs are removed and it cannot be cancelled twice', async () => {
    const { body } = await post('/v1/videos', { source: '/media/cancel-me.mp4' });
    // An id in upper case names the same video, whatever the database engine.
    expect((await get(`/v1/videos/${String(body.id).toUpperCase()}`)).body).toMatchObject({ id: body.id, status: 'queued' });
    const res = await request(producer.app)
      .delete(`/v1/videos/${String(body.id).toUpperCase()}`)
      .set(auth);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ id: body.id, status: 'cancelled' });
    const video = await get(`/v1/videos/${body.id}`);
    expect(video.body.status).toBe('cancelled');
    expect(video.body.steps.map((step: { status: string }) => step.status)).toEqual(VIDEO_STEPS.map(() => 'cancelled'));
    expect((await get(`/v1/jobs/ingest/${body.id}-ingest`)).status).toBe(404);
    expect((await get(`/v1/jobs/pipeline/${body.id}-pipeline`)).status).toBe(404);
    const again = await request(producer.app).delete(`/v1/videos/${body.id}`).set(auth);
    expect(again.status).toBe(409);
    expect(again.body.detail).toMatch(/already finished \(cancelled\)/);
    expect(again.body.videoStatus).toBe('cancelled');
    expect((await request(producer.app).delete('/v1/videos/0b5e1a3c-6d0f-4f7e-8a51-1c2d3e4f5a6b').set(auth)).status).toBe(404);
  });

  it('answers a cancel that races a purge of the video 404 once the video is gone, never a 409 without its status', async () => {
    const answers: { status: number; detail?: string; videoStatus?: string }[] = [];
    for (let round = 0; round < 3; round++) {
      const { body } = await post('/v1/videos', { source: `/media/raced-${round}.mp4` });
      expect((await request(producer.app).delete(`/v1/videos/${body.id}`).set(auth)).status).toBe(202);
      const deletes = [
        ...Array.from({ length: 10 }, () => request(producer.app).delete(`/v1/videos/${body.id}`).set(auth)),
        ...Array.from({ length: 5 }, () => request(producer.app).delete(`/v1/videos/${body.id}?purge=true`).set(auth)),
      ];
      for (const res of await Promise.all(deletes)) answers.push({ status: res.status, detail: res.body.detail, videoStatus: res.body.videoStatus });
    }
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(3);
    const others = answers.filter((answer) => answer.status !== 200);
    expect(others.filter((answer) => ![404, 409].includes(answer.status))).toEqual([]);
    expect(others.filter((answer) => answer.status === 409 && (answer.videoStatus !== 'cancelled' || /undefined/.test(answer.detail ?? '')))).toEqual([]);
  });
});

describe('Idempotency-Key', () => {
  it('replays the first response for the same key and body', async () => {
    const body = { source: '/media/once.mp4', title: 'once' };
    const first = await post('/v1/videos', body, { 'idempotency-key': 'order-1' });
    const second = await post('/v1/videos', { title: 'once', source: '/media/once.mp4' }, { 'idempotency-key': 'order-1' });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(first.headers.location).toBe(`/v1/videos/${first.body.id}`);
    expect(second.headers.location).toBe(first.headers.location);
    const rows = await env.db.selectFrom('videos').select('id').where('source', '=', '/media/once.mp4').execute();
    expect(rows).toHaveLength(1);
  });

  it('replays a retry that spells the route another way express accepts (a trailing slash, capitals)', async () => {
    const body = { source: '/media/spelled.mp4' };
    const first = await post('/v1/videos/', body, { 'idempotency-key': 'spelled-1' });
    expect(first.status).toBe(202);
    for (const path of ['/v1/videos', '/v1/Videos']) {
      const again = await post(path, body, { 'idempotency-key': 'spelled-1' });
      expect([path, again.status, again.body.id, again.headers['idempotent-replayed']]).toEqual([path, 202, first.body.id, 'true']);
    }
    // The same key on another route is another request.
    const other = await post('/v1/videos:batch', { videos: [body] }, { 'idempotency-key': 'spelled-1' });
    expect(other.status).toBe(422);
  });

  it('answers 400 for a body nested past any request the API takes, instead of walking it', async () => {
    const deep = `{"source":"/media/deep.mp4","title":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    for (const path of ['/v1/videos', '/v1/videos:batch']) {
      const res = await request(producer.app).post(path).set(auth).set('content-type', 'application/json').set('idempotency-key', `deep-${path}`).send(deep);
      expect([path, res.status, res.body.detail]).toEqual([path, 400, 'the request body is nested more than 64 levels deep']);
    }
  });

  it('answers 422 for the same key with another body', async () => {
    await post('/v1/videos', { source: '/media/k2.mp4' }, { 'idempotency-key': 'order-2' });
    const res = await post('/v1/videos', { source: '/media/other.mp4' }, { 'idempotency-key': 'order-2' });
    expect(res.status).toBe(422);
    expect(res.body.detail).toMatch(/different request body/);
  });

  it('answers 409 while a request with the same key is still running, and keeps keys per principal', async () => {
    const body = { source: '/media/k3.mp4' };
    expect((await post('/v1/videos', body, { 'idempotency-key': 'order-3' })).status).toBe(202);
    // As if another replica had claimed the key and were still working on it.
    await env.db
      .updateTable('idempotency_keys')
      .set({ state: 'in_progress', response_status: null, response_body: null })
      .where('key', '=', 'order-3')
      .execute();
    const busy = await post('/v1/videos', body, { 'idempotency-key': 'order-3' });
    expect(busy.status).toBe(409);
    expect(busy.headers['retry-after']).toBe('1');
    expect(busy.body.detail).toMatch(/still being processed/);
    // Another key-holder using the same key string is independent of this one.
    await new IdempotencyRepository(env.db).claim('config:someone-else', 'order-3b', 'any-hash');
    expect((await post('/v1/videos', body, { 'idempotency-key': 'order-3b' })).status).toBe(202);
  });

  it('refuses a malformed key', async () => {
    const res = await post('/v1/videos', { source: '/a.mp4' }, { 'idempotency-key': 'x'.repeat(300) });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/Idempotency-Key must be 1-255/);
  });
});

describe('generic jobs', () => {
  it("lists the public catalogue with each job's JSON Schema", async () => {
    const res = await get('/v1/jobs');
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual([
      expect.objectContaining({
        queue: 'sync',
        name: 'refresh-metadata',
        path: '/v1/jobs/sync/refresh-metadata',
        payloadSchema: expect.objectContaining({ type: 'object', required: ['videoId'] }),
      }),
    ]);
  });

  it("enqueues a public job for the caller's own video, validated by its schema, and reads it back", async () => {
    const video = await post('/v1/videos', { source: 'https://cdn.example.com/own.mp4' });
    const res = await post('/v1/jobs/sync/refresh-metadata', { videoId: video.body.id });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ queue: 'sync', name: 'refresh-metadata', status: 'queued' });
    const job = await get(`/v1/jobs/sync/${res.body.id}`);
    expect(job.body).toMatchObject({ id: res.body.id, name: 'refresh-metadata', attemptsMade: 0 });
    expect(await producer.jobs.get(syncQueue, res.body.id)).toMatchObject({ name: 'refresh-metadata' });
    // Ids in upper case name the same video and job (SQLite and MySQL compare stored ids as text).
    const upper = await post('/v1/jobs/sync/refresh-metadata', { videoId: video.body.id.toUpperCase() });
    expect(upper.status).toBe(202);
    const sync = new Queue(syncQueue.name, { connection: producer.redis, prefix: env.config.queuePrefix });
    expect((await sync.getJob(upper.body.id))?.data.videoId).toBe(video.body.id);
    await sync.close();
    expect((await get(`/v1/jobs/sync/${upper.body.id.toUpperCase()}`)).body).toMatchObject({ id: upper.body.id });
  });

  it("shows a failed job's reason with stored files named relative to the storage folder", async () => {
    const video = await post('/v1/videos', { source: 'https://cdn.example.com/failing.mp4' });
    const res = await post('/v1/jobs/sync/refresh-metadata', { videoId: video.body.id });
    const stored = `${env.config.storageDir}/videos/${video.body.id}/metadata.json`;
    const connection = connectRedis(env.config.redisUrl);
    const worker = new Worker(
      syncQueue.name,
      async (job) => {
        if (job.id === res.body.id) throw new UnrecoverableError(`ENOSPC: no space left on device, open '${stored}'`);
      },
      { connection, prefix: env.config.queuePrefix },
    );
    try {
      const failed = await waitFor(
        async () => {
          const job = await get(`/v1/jobs/sync/${res.body.id}`);
          return job.body.state === 'failed' ? job.body : undefined;
        },
        10_000,
        'the job to fail',
      );
      expect(failed.failedReason).toBe(`ENOSPC: no space left on device, open 'videos/${video.body.id}/metadata.json'`);
    } finally {
      await worker.close();
      connection.disconnect();
    }
  });

  it("answers 404 for internal steps, unknown queues and jobs, and videos that are not the caller's; 400 for a bad payload", async () => {
    const videoId = '3f1c2b4a-5d6e-4f70-8a91-b2c3d4e5f601';
    for (const path of [
      '/v1/jobs/ingest/ingest-video',
      '/v1/jobs/render/render-clip',
      '/v1/jobs/analyze/analyze-video',
      '/v1/jobs/notify/deliver-webhook',
      '/v1/jobs/accounts/register-user',
      '/v1/jobs/pipeline/video-pipeline',
      '/v1/jobs/ai-openai/transcribe',
      '/v1/jobs/nope/refresh-metadata',
      '/v1/jobs/sync/nope',
      '/v1/jobs/sync/sync-metadata',
    ]) {
      const res = await post(path, { videoId, source: '/media/x.mp4' });
      expect([path, res.status, res.body.detail]).toEqual([path, 404, expect.stringMatching(/no public job/)]);
    }
    const unknownVideo = await post('/v1/jobs/sync/refresh-metadata', { videoId });
    expect(unknownVideo.status).toBe(404);
    expect(unknownVideo.body.detail).toBe(`no video with id ${videoId}`);
    const bad = await post('/v1/jobs/sync/refresh-metadata', { videoId: 'not-a-uuid' });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/videoId: expected a UUID/);
    expect((await get('/v1/jobs/sync/does-not-exist')).status).toBe(404);
    expect((await get(`/v1/jobs/ingest/${videoId}-ingest`)).status).toBe(404);
  });
});

describe('per-key rate limit', () => {
  it('answers 429 with Retry-After past the limit', async () => {
    const limitedService = createService('producer', { ...env.config, apiRateLimitPerMinute: 3 });
    const limited = buildProducer(limitedService);
    try {
      await new Promise<void>((resolve) => (limited.redis.status === 'ready' ? resolve() : limited.redis.once('ready', () => resolve())));
      // The budget counts per calendar minute: start where the five requests fit in one, or a
      // new minute between the third and the fourth lets the fourth through.
      const intoMinute = Date.now() % 60_000;
      if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 100));
      const statuses: number[] = [];
      let last: request.Response | undefined;
      for (let i = 0; i < 5; i++) {
        last = await request(limited.app).get('/v1/videos?limit=1').set({ authorization: 'Bearer another-key' }).set(auth);
        statuses.push(last.status);
      }
      expect(statuses.slice(0, 3).every((status) => status === 200)).toBe(true);
      expect(statuses[3]).toBe(429);
      expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
      expect(last!.body.detail).toMatch(/limited to 3 requests per minute/);
    } finally {
      await limitedService.shutdown.shutdown('test done');
    }
  });
});

describe('API keys kept in the database', () => {
  it('accepts a created key, and refuses it once revoked', async () => {
    const keys = new ApiKeysRepository(env.db);
    const created = await keys.create('contract test');
    const withKey = { authorization: `Bearer ${created.key}` };
    expect((await request(producer.app).get('/v1/videos?limit=1').set(withKey)).status).toBe(200);
    const submitted = await request(producer.app).post('/v1/videos').set(withKey).send({ source: '/media/by-db-key.mp4' });
    expect(submitted.status).toBe(202);
    const row = await env.db.selectFrom('videos').select('submitted_by').where('id', '=', submitted.body.id).executeTakeFirstOrThrow();
    expect(row.submitted_by).toBe(`key:${created.id}`);
    await keys.revoke(created.id);
    const refused = await request(producer.app).get('/v1/videos?limit=1').set(withKey);
    expect(refused.status).toBe(401);
    expect(refused.body.detail).toBe('API key is not valid');
  });
});

describe('POST /v1/users', () => {
  const strong = 'plum-Lantern-47-overcast-quietly';

  it('accepts a registration, keeps the user pending, and enqueues the password sealed, never in clear', async () => {
    const res = await post('/v1/users', { email: 'Ada@Example.com', password: strong, name: 'Ada' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ id: expect.any(String), status: 'pending', links: { self: `/v1/users/${res.body.id}` } });
    const user = await get(`/v1/users/${res.body.id}`);
    expect(user.body).toMatchObject({ email: 'Ada@Example.com', name: 'Ada', status: 'pending' });
    expect(JSON.stringify(user.body)).not.toMatch(/password|scrypt/i);
    expect(await producer.jobs.get(accountsQueue, `register-${res.body.id}`)).toMatchObject({ name: 'register-user', state: 'waiting' });
    const raw = JSON.stringify(await producer.redis.hgetall(`${env.config.queuePrefix}:accounts:register-${res.body.id}`));
    expect(raw).toMatch(/sealedPassword/);
    expect(raw).not.toContain(strong);
    const row = await env.db.selectFrom('users').selectAll().where('id', '=', res.body.id).executeTakeFirstOrThrow();
    expect(row.password_hash).toBeNull();
    const stored = JSON.stringify(await env.db.selectFrom('idempotency_keys').selectAll().execute());
    expect(stored).not.toContain(strong);
  });

  it('answers 409 for an email already registered, in any case', async () => {
    await post('/v1/users', { email: 'grace@example.com', password: strong });
    const res = await post('/v1/users', { email: 'GRACE@example.com', password: strong });
    expect(res.status).toBe(409);
    expect(res.body.detail).toBe('a user with this email already exists');
  });

  it.each([
    [{ email: 'not-an-email', password: strong }, /email is not a valid address/],
    [{ email: 'a@example.com', password: 'short' }, /at least 10 characters/],
    [{ email: 'a@example.com', password: 'password1234' }, /password is too weak \(strength [0-2] of 4, 3 needed\)/],
    [{ email: 'alan.turing@example.com', password: 'alanturing1912' }, /password is too weak/],
    // Full-width letters are the same password once normalised (as it is hashed): judged as such.
    [{ email: 'a@example.com', password: 'ｐａｓｓｗｏｒｄ１２３' }, /password is too weak \(strength [0-2] of 4, 3 needed\)/],
    [{ email: 'a@example.com', password: strong, role: 'admin' }, /Unrecognized key: "role"/],
    [{ email: 'a@example.com' }, /password is required/],
    [{ email: 'a@example.com', password: 1234567890123 }, /^password: password must be a string$/],
    [{ email: 'a@example.com', password: strong, name: 'Ada\u0000' }, /name must not contain NUL characters/],
  ])('refuses %j with a reason, never echoing the password', async (body, detail) => {
    const res = await post('/v1/users', body);
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(detail);
    if ('password' in body && body.password) expect(JSON.stringify(res.body)).not.toContain(String(body.password));
  });
});

describe('videos linked to YouTube', () => {
  it('records the YouTube id and enqueues its metadata refresh in the same round trip', async () => {
    const res = await post('/v1/videos', { source: '/media/linked.mp4', youtubeId: 'dQw4w9WgXcQ' });
    expect(res.status).toBe(202);
    const video = await get(`/v1/videos/${res.body.id}`);
    expect(video.body).toMatchObject({ youtubeId: 'dQw4w9WgXcQ', youtube: null });
    expect(await producer.jobs.get(syncQueue, `${res.body.id}-sync`)).toMatchObject({ name: 'refresh-metadata', state: 'waiting' });
  });

  it('refuses a YouTube page as source, and a malformed id', async () => {
    const page = await post('/v1/videos', { source: 'https://www.youtube.com/watch?v=dQw4w9WgXcQ' });
    expect(page.status).toBe(400);
    expect(page.body.detail).toMatch(/YouTube pages are not media files/);
    // The host written with the root's dot is the same host.
    const dotted = await post('/v1/videos', { source: 'https://www.YouTube.com./watch?v=dQw4w9WgXcQ' });
    expect([dotted.status, dotted.body.detail]).toEqual([400, page.body.detail]);
    // The field is named as such, whatever the reason's own words hold.
    expect(page.body.errors).toEqual([{ path: 'source', message: page.body.detail }]);
    const share = await post('/v1/videos', { source: 'file://server/share/a.mp4' });
    expect([share.status, share.body.errors?.[0]?.path]).toEqual([400, 'source']);
    expect(share.body.errors[0].message).toMatch(/^source is not a usable file URL: /);
    const nul = await post('/v1/videos', { source: '/a.mp4', title: 'a\u0000b' });
    expect([nul.status, nul.body.errors?.[0]?.path]).toEqual([400, 'title']);
    const inBatch = await post('/v1/videos:batch', { videos: [{ source: '/a.mp4' }, { source: 'https://youtu.be/dQw4w9WgXcQ' }] });
    expect(inBatch.body.errors).toEqual([{ path: 'videos.1.source', message: expect.stringMatching(/^YouTube pages are not media files/) }]);
    const bad = await post('/v1/videos', { source: '/a.mp4', youtubeId: 'short' });
    expect(bad.body.detail).toMatch(/youtubeId must be an 11-character YouTube video id/);
  });
});
