/**
 * The typed client against the real producer (in this process) on the real Redis and
 * PostgreSQL: every route that exists today, its errors, and the 503 of a lost Redis.
 */
import { randomUUID } from 'node:crypto';
import { DEV_API_KEY } from '@clipline/shared';
import { ClipLineApiError, createClient, type ClipLineClient, type VideoEvent } from '../src/index.js';
import type { TestEnvironment } from '../../../tests/helpers/services.js';
import { producerUnderTest, startProducer, type ProducerUnderTest, type RunningProducer } from './producer-fixture.js';

let fixture: ProducerUnderTest;
let env: TestEnvironment;
let running: RunningProducer;
let api: ClipLineClient;

beforeAll(async () => {
  fixture = await producerUnderTest();
  ({ env, running, api } = fixture);
});

afterAll(() => fixture?.close());

async function videoCount(): Promise<number> {
  const row = await env.db
    .selectFrom('videos')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function failureOf(promise: Promise<unknown>): Promise<ClipLineApiError> {
  const error = await promise.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(ClipLineApiError);
  return error as ClipLineApiError;
}

describe('videos', () => {
  it('submits a video and reads it back with its steps and options', async () => {
    const accepted = await api.submitVideo({ source: '/srv/media/talk.mp4', title: 'Talk', options: { clipCount: 2, aspect: '9:16' }, priority: 'low' });
    expect(accepted).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'queued',
      links: { self: `/v1/videos/${accepted.id}`, events: `/v1/videos/${accepted.id}/events` },
    });
    const video = await api.getVideo(accepted.id);
    expect(video).toMatchObject({
      id: accepted.id,
      status: 'queued',
      progress: 0,
      title: 'Talk',
      source: '/srv/media/talk.mp4',
      error: null,
      metadata: null,
      scenes: [],
      priority: 'low',
    });
    expect(video.options).toEqual({ clipCount: 2, aspect: '9:16', minClipSeconds: 5, maxClipSeconds: 30, captions: 'off' });
    expect(video.steps.map((step) => step.status)).toEqual(video.steps.map(() => 'pending'));
    expect(video.steps.length).toBeGreaterThanOrEqual(3);
  });

  it('replays a submission repeated with its Idempotency-Key, and refuses the key with another body', async () => {
    const key = `client-test-${randomUUID()}`;
    const before = await videoCount();
    const first = await api.submitVideo({ source: '/srv/media/once.mp4' }, { idempotencyKey: key });
    const again = await api.submitVideo({ source: '/srv/media/once.mp4' }, { idempotencyKey: key });
    expect(again.id).toBe(first.id);
    expect(await videoCount()).toBe(before + 1);
    const error = await failureOf(api.submitVideo({ source: '/srv/media/other.mp4' }, { idempotencyKey: key }));
    expect(error.status).toBe(422);
    expect(error.problem.detail).toMatch(/different request body/);
  });

  it('submits a batch in one request', async () => {
    const batch = await api.submitVideos([
      { source: '/srv/media/b1.mp4' },
      { source: 'https://cdn.example.com/b2.mp4' },
      { source: '/srv/media/b3.mp4', title: 'three' },
    ]);
    expect(batch.videos).toHaveLength(3);
    const titles = await Promise.all(batch.videos.map(async (video) => (await api.getVideo(video.id)).title));
    expect(titles).toEqual([null, null, 'three']);
    const error = await failureOf(api.submitVideos([{ source: '/ok.mp4' }, { source: 'relative.mp4' }]));
    expect(error.status).toBe(400);
    expect(error.problem.errors?.[0]?.path).toMatch(/^videos\.1\.source/);
  });

  it('lists videos page by page, and iterates over all of them without repeats', async () => {
    // Its own videos, newest last, so there are pages to turn whatever ran before.
    const own: string[] = [];
    for (let index = 0; index < 5; index += 1) own.push((await api.submitVideo({ source: `/srv/media/page-${index}.mp4` })).id);
    const total = await videoCount();
    const first = await api.listVideos({ limit: 2 });
    expect(first.items).toHaveLength(2);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await api.listVideos({ limit: 2, cursor: first.nextCursor! });
    expect(second.items[0]!.id).not.toBe(first.items[1]!.id);
    const all: string[] = [];
    for await (const video of api.iterateVideos({ pageSize: 3 })) all.push(video.id);
    expect(all).toHaveLength(total);
    expect(new Set(all).size).toBe(total);
    expect(all.slice(0, 4)).toEqual([...first.items, ...second.items].map((video) => video.id));
    expect(all.filter((id) => own.includes(id))).toEqual([...own].reverse());
    const error = await failureOf(api.listVideos({ limit: 500 }));
    expect(error.problem.detail).toMatch(/limit must be 1-100/);
  });

  it('cancels a queued video once, then answers 409', async () => {
    const { id } = await api.submitVideo({ source: '/srv/media/cancel-me.mp4' });
    expect(await api.cancelVideo(id)).toEqual({ id, status: 'cancelled' });
    expect((await api.getVideo(id)).status).toBe('cancelled');
    const error = await failureOf(api.cancelVideo(id));
    expect(error.status).toBe(409);
    expect(error.problem.detail).toMatch(/already finished/);
    const cancelled: string[] = [];
    for await (const video of api.iterateVideos({ status: 'cancelled' })) cancelled.push(video.id);
    expect(cancelled).toContain(id);
  });
});

describe('watchVideo', () => {
  it('follows a video over the live stream and ends on its terminal event', async () => {
    const { id } = await api.submitVideo({ source: '/srv/media/watched.mp4' });
    const events: VideoEvent[] = [];
    for await (const event of api.watchVideo(id)) {
      events.push(event);
      // The first event is the current state; cancelling makes the next one terminal.
      if (events.length === 1) await api.cancelVideo(id);
    }
    expect(events[0]).toMatchObject({ type: 'progress', video: { id, status: 'queued' } });
    expect(events.at(-1)).toMatchObject({ type: 'cancelled', video: { id, status: 'cancelled' } });
    const ids = events.map((event) => Number(event.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('yields the current state of a finished video once and stops', async () => {
    const { id } = await api.submitVideo({ source: '/srv/media/finished.mp4' });
    await api.cancelVideo(id);
    const events: VideoEvent[] = [];
    for await (const event of api.watchVideo(id)) events.push(event);
    expect(events.map((event) => event.type)).toEqual(['cancelled']);
  });

  it('fails with the 404 problem for an unknown video', async () => {
    const error = await failureOf(
      (async () => {
        for await (const event of api.watchVideo(randomUUID())) void event;
      })(),
    );
    expect(error.status).toBe(404);
  });
});

describe('generic jobs', () => {
  it('submits a public job for its own video and reads its state', async () => {
    const video = await api.submitVideo({ source: '/srv/media/job.mp4' });
    const accepted = await api.submitJob('sync', 'refresh-metadata', { videoId: video.id });
    expect(accepted).toMatchObject({ queue: 'sync', name: 'refresh-metadata', status: 'queued', id: expect.any(String) });
    const job = await api.getJob('sync', accepted.id);
    expect(job).toMatchObject({ id: accepted.id, queue: 'sync', name: 'refresh-metadata', attemptsMade: 0, failedReason: null });
  });

  it('answers 404 for internal steps, an unknown queue, job name or id, and 400 for a payload its schema refuses', async () => {
    expect((await failureOf(api.submitJob('nope', 'x', {}))).problem.detail).toMatch(/no public job "nope\/x"/);
    expect((await failureOf(api.submitJob('ingest', 'ingest-video', { videoId: randomUUID(), source: '/a.mp4' }))).status).toBe(404);
    expect((await failureOf(api.submitJob('sync', 'nope', {}))).problem.detail).toMatch(/no public job "sync\/nope"/);
    expect((await failureOf(api.getJob('sync', 'missing-job'))).status).toBe(404);
    expect((await failureOf(api.submitJob('sync', 'refresh-metadata', { videoId: 'x' }))).status).toBe(400);
  });
});

describe('errors', () => {
  it('turns a refused submission into a ClipLineApiError with the problem and its field errors', async () => {
    const before = await videoCount();
    const error = await failureOf(api.submitVideo({ source: 'relative/path.mp4' }));
    expect(error.status).toBe(400);
    expect(error.problem).toMatchObject({ title: 'Bad Request', status: 400, detail: expect.stringMatching(/absolute file path/) });
    expect(error.problem.errors?.[0]?.path).toBe('source');
    expect(error.message).toMatch(/^POST \/v1\/videos failed with 400 Bad Request: /);
    const unknownField = await failureOf(api.submitVideo({ source: '/a.mp4', colour: 'red' } as never));
    expect(unknownField.problem.detail).toMatch(/Unrecognized key: "colour"/);
    expect(await videoCount()).toBe(before);
  });

  it('answers 404 for an unknown video and 401 for a wrong key, without retrying', async () => {
    expect((await failureOf(api.getVideo(randomUUID()))).status).toBe(404);
    const retries: unknown[] = [];
    const stranger = createClient({
      baseUrl: running.url,
      apiKey: 'cl_000000000000_00000000000000000000000000000000',
      onRetry: (notice) => retries.push(notice),
    });
    const error = await failureOf(stranger.getVideo(randomUUID()));
    expect(error.status).toBe(401);
    expect(error.problem.detail).toBe('API key is not valid');
    expect(retries).toEqual([]);
  });
});

describe('when Redis is unreachable', () => {
  let down: RunningProducer;

  beforeAll(async () => {
    down = await startProducer({ ...env.config, redisUrl: 'redis://127.0.0.1:1' }, { redisReachable: false });
  });

  afterAll(async () => {
    await down?.stop();
  });

  it('refuses a submission with 503 + Retry-After, which the client waits out before giving up', async () => {
    // A video stored while Redis is there, for the read below.
    const stored = await api.submitVideo({ source: '/srv/media/before-the-outage.mp4' });
    const before = await videoCount();
    const once = createClient({ baseUrl: down.url, apiKey: DEV_API_KEY, retry: false });
    const error = await failureOf(once.submitVideo({ source: '/srv/media/a.mp4' }));
    expect(error).toMatchObject({ status: 503, retryAfterMs: 5000 });
    expect(error.problem.detail).toMatch(/Redis\) is unreachable/);

    const retries: number[] = [];
    const patient = createClient({ baseUrl: down.url, apiKey: DEV_API_KEY, retry: { retries: 1 }, onRetry: (notice) => retries.push(notice.delayMs) });
    const started = performance.now();
    await failureOf(patient.submitVideo({ source: '/srv/media/a.mp4' }));
    expect(performance.now() - started).toBeGreaterThanOrEqual(5000);
    expect(retries).toHaveLength(1);
    // Retry-After: 5, plus the client's jitter.
    expect(retries[0]).toBeGreaterThanOrEqual(5000);
    expect(await videoCount()).toBe(before);
    // Reads need only the database, which is still there.
    const listed = await createClient({ baseUrl: down.url, apiKey: DEV_API_KEY }).listVideos({ limit: 1 });
    expect(listed.items).toHaveLength(1);
    expect((await createClient({ baseUrl: down.url, apiKey: DEV_API_KEY }).getVideo(stored.id)).id).toBe(stored.id);
  }, 20_000);
});
