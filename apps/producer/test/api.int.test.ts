import request from 'supertest';
import { Queue } from 'bullmq';
import { createService, DEV_API_KEY, ingestQueue, pipelineQueue, VIDEO_STEPS, type ServiceContext } from '@clipline/shared';
import { buildProducer } from '../src/producer.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

const auth = { authorization: `Bearer ${DEV_API_KEY}` };
let env: TestEnvironment;
let service: ServiceContext;
let app: ReturnType<typeof buildProducer>['app'];
let producer: ReturnType<typeof buildProducer>;

beforeAll(async () => {
  env = await createTestEnvironment();
  service = createService('producer', env.config);
  producer = buildProducer(service);
  app = producer.app;
  await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
});

afterAll(async () => {
  await service.shutdown.shutdown('tests done');
  await env.cleanup();
});

async function videoCount(): Promise<number> {
  const row = await env.db
    .selectFrom('videos')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

function expectProblem(res: request.Response, status: number, detail: RegExp) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, title: expect.any(String) });
  expect(res.body.detail).toMatch(detail);
}

describe('health', () => {
  it('answers /healthz and /readyz', async () => {
    expect((await request(app).get('/healthz')).body).toEqual({ status: 'ok' });
    const ready = await request(app).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', checks: { redis: true, database: true } });
  });

  it('keeps metrics off the public listener; they are exported with event-loop lag on the metrics port', async () => {
    expect((await request(app).get('/metrics')).status).toBe(404);
    expect(await service.metrics.metrics()).toMatch(/nodejs_eventloop_lag_p99_seconds\{service="producer"\}/);
  });
});

describe('authentication', () => {
  it.each([
    [{}, /missing Authorization header/],
    [{ authorization: 'Basic abc' }, /must be "Bearer <api key>"/],
    [{ authorization: 'Bearer wrong-key' }, /API key is not valid/],
  ])('refuses %j', async (headers, detail) => {
    const res = await request(app).get('/v1/videos/00000000-0000-4000-8000-000000000000').set(headers);
    expectProblem(res, 401, detail);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });
});

describe('POST /v1/videos', () => {
  it('accepts a submission, records it and enqueues its flow', async () => {
    const res = await request(app).post('/v1/videos').set(auth).send({ source: '/srv/media/a.mp4', title: 'A' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'queued',
      links: { self: `/v1/videos/${res.body.id}`, events: `/v1/videos/${res.body.id}/events` },
    });
    expect(res.headers.location).toBe(`/v1/videos/${res.body.id}`);

    const video = await request(app).get(`/v1/videos/${res.body.id}`).set(auth);
    expect(video.status).toBe(200);
    expect(video.body).toMatchObject({
      id: res.body.id,
      status: 'queued',
      progress: 0,
      title: 'A',
      error: null,
      metadata: null,
      scenes: [],
      steps: VIDEO_STEPS.map((name) => ({ name, status: 'pending' })),
    });

    const ingest = new Queue(ingestQueue.name, { connection: producer.redis, prefix: env.config.queuePrefix });
    const pipeline = new Queue(pipelineQueue.name, { connection: producer.redis, prefix: env.config.queuePrefix });
    const parent = await pipeline.getJob(`${res.body.id}-pipeline`);
    expect(await parent?.getState()).toBe('waiting-children');
    const first = await ingest.getJob(`${res.body.id}-ingest`);
    // Beside the payload, the id of the request that enqueued it (taken out before validation).
    expect(first?.data).toEqual({ videoId: res.body.id, source: '/srv/media/a.mp4', $requestId: res.headers['x-request-id'] });
    expect(await first?.getState()).toBe('prioritized');
    expect(first?.opts.priority).toBe(21);
    await ingest.close();
    await pipeline.close();
  });

  it.each([
    ['malformed JSON', '{"source": "/a.mp4"', 400, /not valid JSON/],
    ['a missing source', {}, 400, /source: source is required/],
    ['an unknown field', { source: '/a.mp4', colour: 'red' }, 400, /Unrecognized key: "colour"/],
    ['a non-string source', { source: 42 }, 400, /source: source must be a string: a file path/],
    ['a relative path', { source: 'a.mp4' }, 400, /absolute file path/],
    ['an unsupported scheme', { source: 'ftp://example.com/a.mp4' }, 400, /scheme "ftp" is not supported/],
    ['a too-long title', { source: '/a.mp4', title: 'x'.repeat(301) }, 400, /title is longer than 300/],
    // PostgreSQL refuses to store a NUL: refused before it gets there, the same on every engine.
    ['a NUL in the title', { source: '/a.mp4', title: 'a\u0000b' }, 400, /title: title must not contain NUL characters/],
    [
      'a control character in the callback URL',
      { source: '/a.mp4', callbackUrl: 'https://example.com/a\u0000b' },
      400,
      /callbackUrl must not contain control characters/,
    ],
    ['an array body', [{ source: '/a.mp4' }], 400, /expected object/],
    ['a __proto__ key', '{"source":"/a.mp4","__proto__":{"admin":true}}', 400, /Unrecognized key/],
  ])('refuses %s with a 4xx naming the problem and writes nothing', async (_what, body, status, detail) => {
    const before = await videoCount();
    const res = await request(app)
      .post('/v1/videos')
      .set(auth)
      .set('content-type', 'application/json')
      .send(typeof body === 'string' ? body : JSON.stringify(body));
    expectProblem(res, status, detail);
    expect(await videoCount()).toBe(before);
  });

  it('refuses a body that is not JSON (415) and a body that is too large (413)', async () => {
    expectProblem(
      await request(app).post('/v1/videos').set(auth).set('content-type', 'text/plain').send('source=/a.mp4'),
      415,
      /Content-Type: application\/json/,
    );
    expectProblem(
      await request(app)
        .post('/v1/videos')
        .set(auth)
        .send({ source: '/a.mp4', title: 'x'.repeat(1_100_000) }),
      413,
      /too large/,
    );
  });
});

describe('GET /v1/videos/:id', () => {
  it('answers 404 for unknown and malformed ids', async () => {
    expectProblem(await request(app).get('/v1/videos/5d0c9c52-2f57-4a5b-9c55-3b8d0a3c5e11').set(auth), 404, /no video with id/);
    expectProblem(await request(app).get('/v1/videos/not-a-uuid').set(auth), 404, /ids are UUIDs/);
  });

  it('answers 404 problem+json for unknown routes', async () => {
    expectProblem(await request(app).get('/v1/nothing').set(auth), 404, /no route for GET/);
  });
});

describe('when Redis is unreachable', () => {
  it('answers 503 and writes nothing', async () => {
    const downEnv = { ...env.config, redisUrl: 'redis://127.0.0.1:1' };
    const downService = createService('producer', downEnv);
    const down = buildProducer(downService);
    try {
      const before = await videoCount();
      const res = await request(down.app).post('/v1/videos').set(auth).send({ source: '/a.mp4' });
      expectProblem(res, 503, /Redis\) is unreachable/);
      expect(res.headers['retry-after']).toBe('5');
      expect(await videoCount()).toBe(before);
      const ready = await request(down.app).get('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body.checks).toEqual({ redis: false, database: true });
    } finally {
      await downService.shutdown.shutdown('test done');
    }
  });
});
