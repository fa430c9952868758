/**
 * Request ids and request logs of the API, the request-duration histogram, and the request id
 * travelling with the jobs a request enqueued into the log lines of the worker that runs them.
 */
import { Writable } from 'node:stream';
import request from 'supertest';
import { Queue } from 'bullmq';
import { z } from 'zod';
import {
  createLogger,
  createService,
  defineQueue,
  DEV_API_KEY,
  ingestQueue,
  JobQueues,
  pipelineQueue,
  REQUEST_ID_KEY,
  runWithRequestId,
  standardRetention,
  startWorker,
  type ServiceContext,
} from '@clipline/shared';
import { buildProducer } from '../src/producer.js';
import { requestIdOf } from '../src/http/request-log.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

const auth = { authorization: `Bearer ${DEV_API_KEY}` };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
let env: TestEnvironment;
let service: ServiceContext;
let producer: ReturnType<typeof buildProducer>;
const logged: Record<string, unknown>[] = [];

/** A log destination keeping each JSON line. */
function lineCollector(into: Record<string, unknown>[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) into.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
}

const requestLines = () => logged.filter((line) => line.msg === 'request completed' || line.msg === 'request failed');

beforeAll(async () => {
  env = await createTestEnvironment({ LOG_LEVEL: 'info' });
  service = createService('producer', env.config, { logDestination: lineCollector(logged) });
  producer = buildProducer(service);
  await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
});

afterAll(async () => {
  await service.shutdown.shutdown('tests done');
  await env.cleanup();
});

describe('request ids', () => {
  it('keeps a sane incoming x-request-id, echoes it and logs it with the route pattern', async () => {
    const res = await request(producer.app).get('/v1/videos/00000000-0000-4000-8000-000000000000').set(auth).set('x-request-id', 'edge-7f3a.42:b');
    expect(res.status).toBe(404);
    expect(res.headers['x-request-id']).toBe('edge-7f3a.42:b');
    const line = await waitFor(async () => requestLines().find((candidate) => candidate.requestId === 'edge-7f3a.42:b'), 2000, 'the request line');
    expect(line).toMatchObject({ method: 'GET', route: '/v1/videos/:id', status: 404, durationMs: expect.any(Number), level: 30 });
  });

  it.each([
    ['too long', 'a'.repeat(129)],
    ['spaces and quotes', 'id with "quotes"'],
    ['markup', '<script>alert(1)</script>'],
    ['a leading dash', '-rf'],
    ['empty', ''],
  ])('mints a fresh id instead of one with %s', async (_what, given) => {
    const res = await request(producer.app).get('/healthz').set('x-request-id', given);
    expect(res.headers['x-request-id']).toMatch(UUID);
    expect(res.headers['x-request-id']).not.toBe(given);
  });

  it('mints one when none is sent, a new one per request', async () => {
    const [a, b] = await Promise.all([request(producer.app).get('/healthz'), request(producer.app).get('/healthz')]);
    expect(a.headers['x-request-id']).toMatch(UUID);
    expect(b.headers['x-request-id']).toMatch(UUID);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
    expect(requestIdOf(['first-of-two', 'second'])).toBe('first-of-two');
  });

  it('puts the id into every job of the flow a submission enqueued', async () => {
    const res = await request(producer.app).post('/v1/videos').set(auth).set('x-request-id', 'submit-0001').send({ source: '/srv/media/r.mp4', title: 'R' });
    expect(res.status).toBe(202);
    const ingest = new Queue(ingestQueue.name, { connection: producer.redis, prefix: env.config.queuePrefix });
    const pipeline = new Queue(pipelineQueue.name, { connection: producer.redis, prefix: env.config.queuePrefix });
    expect((await ingest.getJob(`${res.body.id}-ingest`))?.data).toMatchObject({ videoId: res.body.id, [REQUEST_ID_KEY]: 'submit-0001' });
    expect((await pipeline.getJob(`${res.body.id}-pipeline`))?.data).toMatchObject({ videoId: res.body.id, [REQUEST_ID_KEY]: 'submit-0001' });
    await Promise.all([ingest.close(), pipeline.close()]);
    // The handler's own lines carry it too, not only the request's closing line.
    expect(requestLines().find((line) => line.requestId === 'submit-0001')).toMatchObject({ method: 'POST', route: '/v1/videos', status: 202 });
  });
});

describe('request-duration histogram', () => {
  it('is labelled by route pattern and status, never by the raw path', async () => {
    const ids = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'];
    for (const id of ids) expect((await request(producer.app).get(`/v1/videos/${id}`).set(auth)).status).toBe(404);
    expect((await request(producer.app).get(`/v1/videos/${ids[0]}`)).status).toBe(401);
    expect((await request(producer.app).get('/no/such/page')).status).toBe(404);
    const text = await service.metrics.metrics();
    const count = (labels: string) =>
      Number(new RegExp(`clipline_http_request_duration_seconds_count\\{service="producer",${labels}\\} (\\d+)`).exec(text)?.[1] ?? 0);
    expect(count('method="GET",route="/v1/videos/:id",status_code="404"')).toBeGreaterThanOrEqual(2);
    expect(count('method="GET",route="/v1/\\*",status_code="401"')).toBeGreaterThanOrEqual(1);
    expect(count('method="GET",route="unmatched",status_code="404"')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(
      /clipline_http_request_duration_seconds_bucket\{le="0.005",service="producer",method="GET",route="\/v1\/videos\/:id",status_code="404"\}/,
    );
    for (const id of ids) expect(text).not.toContain(id);
    expect(text).not.toContain('/no/such/page');
  });

  it('labels a mount however its letters are cased as the mount itself: no caller can grow the series', async () => {
    for (const spelling of ['/DOCS/Assets/nothing.js', '/dOcS/aSsEtS/nothing.js', '/V1/Videos/11111111-1111-4111-8111-111111111111']) {
      await request(producer.app).get(spelling).set(auth);
    }
    const text = await service.metrics.metrics();
    const routes = new Set([...text.matchAll(/clipline_http_request_duration_seconds_count\{[^}]*route="([^"]*)"/g)].map((match) => match[1]));
    expect([...routes].filter((route) => /[A-Z]/.test(route!))).toEqual([]);
    expect(routes).toContain('/v1/videos/:id');
  });
});

describe('in the worker', () => {
  const parentQueue = defineQueue({
    name: 'test-request-parent',
    resourceClass: 'io',
    jobs: { parent: z.strictObject({ key: z.string() }) },
    defaultJobOptions: { attempts: 1, ...standardRetention },
  });
  const childQueue = defineQueue({
    name: 'test-request-child',
    resourceClass: 'io',
    jobs: { child: z.strictObject({ key: z.string() }) },
    defaultJobOptions: { attempts: 1, ...standardRetention },
  });

  it('logs the jobs of a request with its id; the strict payloads never see it; jobs they add keep it', async () => {
    const redis = connectRedis(env.config.redisUrl);
    const workerLines: Record<string, unknown>[] = [];
    const logger = createLogger({ name: 'worker-io', level: 'info', destination: lineCollector(workerLines) });
    const seen: unknown[] = [];
    const common = { connection: redis, prefix: env.config.queuePrefix, logger, concurrency: 2 };
    const workers = [
      startWorker(
        parentQueue,
        {
          parent: async (job) => {
            seen.push(job.data);
            job.logger.info('parent working');
            await job.addChildren([{ step: { declaration: childQueue, jobName: 'child', data: { key: job.data.key }, jobId: `${job.data.key}-child` } }]);
            await job.waitForChildren();
          },
        },
        common,
      ),
      startWorker(childQueue, { child: async (job) => void seen.push(job.data) }, common),
    ];
    const jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
    try {
      await runWithRequestId('worker-side-1', () => jobs.add(parentQueue, 'parent', { key: 'k1' }, { jobId: 'k1' }));
      await waitFor(async () => (workerLines.filter((line) => line.msg === 'job completed').length >= 2 ? true : undefined), 15_000, 'both jobs');
      expect(seen).toEqual([{ key: 'k1' }, { key: 'k1' }, { key: 'k1' }].slice(0, seen.length));
      const lines = workerLines.filter((line) => ['parent working', 'job completed'].includes(String(line.msg)));
      expect(lines.length).toBeGreaterThanOrEqual(3);
      for (const line of lines) expect(line).toMatchObject({ requestId: 'worker-side-1' });
      expect(workerLines.find((line) => line.msg === 'job completed' && line.job === 'child')).toMatchObject({ requestId: 'worker-side-1' });
    } finally {
      await Promise.all(workers.map((worker) => worker.close()));
      await jobs.close();
      redis.disconnect();
    }
  });
});

describe('readiness', () => {
  it('logs what /readyz finds when it changes, never a probe as a failed request', async () => {
    const lines: Record<string, unknown>[] = [];
    const own = createService('producer', env.config, { logDestination: lineCollector(lines) });
    const app = buildProducer(own);
    const readiness = () => lines.filter((line) => typeof line.msg === 'string' && /^(not )?ready/.test(line.msg));
    try {
      const readyAgain = async () => ((await request(app.app).get('/readyz')).status === 200 ? true : undefined);
      await new Promise<void>((resolve) => (app.redis.status === 'ready' ? resolve() : app.redis.once('ready', () => resolve())));
      expect((await request(app.app).get('/readyz')).status).toBe(200);
      await request(app.app).get('/readyz');
      // Redis lost: the probe answers 503, one warning says why.
      app.redis.disconnect();
      for (let i = 0; i < 3; i++) expect((await request(app.app).get('/readyz')).status).toBe(503);
      app.redis.connect().catch(() => {});
      await waitFor(readyAgain, 10_000, '/readyz to answer 200 again');
      await waitFor(async () => (lines.some((line) => line.msg === 'ready again') ? true : undefined), 2000, 'the "ready again" line');
      expect(readiness().map((line) => [line.level, line.msg, line.unavailable])).toEqual([
        [30, 'ready', undefined],
        [40, 'not ready: redis unavailable', ['redis']],
        [30, 'ready again', undefined],
      ]);
      expect(lines.filter((line) => line.msg === 'request failed')).toEqual([]);
    } finally {
      await own.shutdown.shutdown('test done');
    }
  });

  it('says what it waits for while a dependency has never answered, at info', async () => {
    const lines: Record<string, unknown>[] = [];
    const own = createService('producer', { ...env.config, redisUrl: 'redis://127.0.0.1:1' }, { logDestination: lineCollector(lines) });
    const app = buildProducer(own);
    try {
      for (let i = 0; i < 3; i++) expect((await request(app.app).get('/readyz')).status).toBe(503);
      await waitFor(async () => (lines.some((line) => line.msg === 'not ready yet: redis unavailable') ? true : undefined), 2000, 'the "not ready yet" line');
      expect(lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('not ready')).map((line) => line.level)).toEqual([30]);
      expect(lines.filter((line) => line.msg === 'request failed')).toEqual([]);
    } finally {
      await own.shutdown.shutdown('test done');
    }
  });
});
