/**
 * The overview on real Redis and PostgreSQL: what it reads (counts, throughput from the workers'
 * metrics, timings, workers, failures by reason, videos, audit), and who may act from it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { type Job, Queue, Worker } from 'bullmq';
import {
  BreakerBoard,
  createDatabase,
  createMetricsRegistry,
  createRedis,
  type Db,
  QueueActionsRepository,
  QueueOperations,
  VideosRepository,
  type RedisClient,
} from '@clipline/shared';
import { PrivateRedis } from '../../../tests/chaos/support/redis-server.js';
import { createDashboardApp } from '../src/app.js';
import { oldestWaitingAge } from '../src/overview/overview-data.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

const ADMIN = { user: 'ops', password: 'admin-password-for-overview' };
const VIEWER = { user: 'watcher', password: 'viewer-password-for-overview' };
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const asAdmin = basic(ADMIN.user, ADMIN.password);
const asViewer = basic(VIEWER.user, VIEWER.password);

let env: TestEnvironment;
let redis: RedisClient;
let queue: Queue;
let server: http.Server;
let origin: string;

/** Runs jobs through a worker with metrics on: the odd ones fail with their reason. */
async function runJobs(count: number): Promise<void> {
  await queue.addBulk(Array.from({ length: count }, (_, index) => ({ name: 'step', data: { index }, opts: { attempts: 1 } })));
  const connection = connectRedis();
  const worker = new Worker(
    'ingest',
    async (job) => {
      if (job.data.index % 2 === 1) throw new Error(job.data.index % 4 === 1 ? 'source unreachable: 503' : 'probe failed: no video stream');
      return 'ok';
    },
    { connection, prefix: env.config.queuePrefix, metrics: { maxDataPoints: 60 }, name: 'test-host:4242' },
  );
  try {
    await waitFor(async () => ((await queue.getCompletedCount()) + (await queue.getFailedCount()) >= count ? true : undefined), 20_000, 'jobs ran');
  } finally {
    await worker.close();
    connection.disconnect();
  }
}

/** The dashboard over the queue, reading and writing the audit in `db`. */
function dashboardOn(db: Db): ReturnType<typeof createDashboardApp> {
  const audit = new QueueActionsRepository(db);
  return createDashboardApp({
    config: env.config,
    metrics: createMetricsRegistry('dashboard'),
    queues: [queue],
    redis,
    breakers: new BreakerBoard(redis, env.config.queuePrefix),
    overview: { videos: new VideosRepository(db), audit, operations: new QueueOperations([queue], audit) },
  });
}

/** A dashboard whose queue and Redis are `connection` (a Redis of the test's own), with the audit in the test database. */
function dashboardOver(connection: RedisClient): { app: ReturnType<typeof createDashboardApp>; queue: Queue; audit: QueueActionsRepository } {
  const own = new Queue('ingest', { connection, prefix: env.config.queuePrefix });
  own.on('error', () => {});
  const audit = new QueueActionsRepository(env.db);
  const app = createDashboardApp({
    config: env.config,
    metrics: createMetricsRegistry('dashboard'),
    queues: [own],
    redis: connection,
    breakers: new BreakerBoard(connection, env.config.queuePrefix),
    overview: { videos: new VideosRepository(env.db), audit, operations: new QueueOperations([own], audit) },
  });
  return { app, queue: own, audit };
}

beforeAll(async () => {
  env = await createTestEnvironment({
    DASHBOARD_USER: ADMIN.user,
    DASHBOARD_PASSWORD: ADMIN.password,
    DASHBOARD_VIEWER_USER: VIEWER.user,
    DASHBOARD_VIEWER_PASSWORD: VIEWER.password,
  });
  redis = connectRedis();
  queue = new Queue('ingest', { connection: redis, prefix: env.config.queuePrefix });
  server = http.createServer(dashboardOn(env.db));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await runJobs(8);
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await queue.close();
  redis.disconnect();
  await env.cleanup();
});

describe('overview', () => {
  it('is the landing page, loads its script and uPlot from this origin, and links Bull Board', async () => {
    const res = await request(server).get('/').set(asAdmin);
    expect(res.status).toBe(200);
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.text).toContain('<script src="/overview/assets/uplot/uPlot.iife.min.js"></script>');
    expect(res.text).toContain('<script src="/overview/assets/overview.js"></script>');
    expect(res.text).toContain('<a href="/queue/ingest" id="bull-board-link">');
    const uplot = await request(server).get('/overview/assets/uplot/uPlot.iife.min.js').set(asAdmin);
    expect(uplot.status).toBe(200);
    expect(uplot.text).toContain('uPlot');
    const script = await request(server).get('/overview/assets/overview.js').set(asAdmin);
    expect(script.status).toBe(200);
    expect(script.text).toContain('/overview.json');
    expect(() => new Function(script.text)).not.toThrow();
    // Bull Board stays on its own paths.
    expect((await request(server).get('/queue/ingest').set(asAdmin)).status).toBe(200);
  });

  it('reports counts, per-minute throughput, timings, workers and failures grouped by reason', async () => {
    const res = await request(server).get('/overview.json').set(asAdmin);
    expect(res.status).toBe(200);
    const [ingest] = res.body.queues;
    expect(ingest).toMatchObject({ name: 'ingest', paused: false, counts: { failed: 4, completed: 4, waiting: 0 } });
    expect(ingest.throughput.minutes).toHaveLength(60);
    expect(ingest.throughput.minutes.at(-1)).toBe(Math.floor(Date.now() / 60_000) * 60);
    expect(ingest.throughput.completed.at(-1) + ingest.throughput.completed.at(-2)).toBe(4);
    expect(ingest.throughput.failed.at(-1) + ingest.throughput.failed.at(-2)).toBe(4);
    expect(ingest.waitMs.p50).toEqual(expect.any(Number));
    expect(ingest.processingMs.p95).toBeGreaterThanOrEqual(ingest.processingMs.p50);
    expect(res.body.failures.map((f: { reason: string; count: number }) => [f.reason, f.count]).sort()).toEqual([
      ['probe failed: no video stream', 2],
      ['source unreachable: 503', 2],
    ]);
    expect(res.body.videos).toEqual({ queued: 0, processing: 0, completed: 0, failed: 0, cancelled: 0 });
    expect(res.body.role).toBe('admin');
  });

  it('lists connected workers by process and the age of the oldest waiting job', async () => {
    const connection = connectRedis();
    await queue.pause();
    await queue.add('step', { index: 0 }, { timestamp: Date.now() - 90_000 });
    const worker = new Worker('ingest', async () => 'never runs: the queue is paused', { connection, prefix: env.config.queuePrefix, name: 'box-1:777' });
    try {
      await waitFor(async () => ((await queue.getWorkers()).length > 0 ? true : undefined), 10_000, 'worker connected');
      // The overview serves one reading for a second: poll until it shows the new worker.
      const res = await waitFor(
        async () => {
          const read = await request(server).get('/overview.json').set(asViewer);
          return read.body.queues[0].workers.length ? read : undefined;
        },
        5_000,
        'the overview shows the worker',
      );
      expect(res.body.role).toBe('viewer');
      expect(res.body.queues[0].workers).toEqual([{ process: 'box-1:777', connections: 1 }]);
      expect(res.body.queues[0].oldestWaitingAgeMs).toBeGreaterThanOrEqual(90_000);
    } finally {
      await queue.obliterate({ force: true });
      await worker.close();
      connection.disconnect();
    }
  });
});

describe('requests that cannot be read', () => {
  it('answers a body that is not JSON, one too large and a path that does not decode with a 4xx problem, no stack trace', async () => {
    const broken = await request(server).post('/overview/queues/ingest/actions').set(asAdmin).set('origin', origin).type('json').send('{bad');
    expect(broken.status).toBe(400);
    expect(broken.type).toBe('application/problem+json');
    expect(broken.body.detail).toBe('the body is not valid JSON');
    const large = await request(server)
      .post('/overview/queues/ingest/actions')
      .set(asAdmin)
      .set('origin', origin)
      .send({ action: 'retry-failed', reason: 'x'.repeat(20_000) });
    expect(large.status).toBe(413);
    expect(large.type).toBe('application/problem+json');
    expect(large.body.detail).toMatch(/^the body is larger than the \d+ bytes accepted$/);
    const undecodable = await request(server).get('/queue/%E0%A4%A').set(asAdmin);
    expect(undecodable.status).toBe(400);
    expect(undecodable.type).toBe('application/problem+json');
    for (const res of [broken, large, undecodable]) expect(res.text).not.toMatch(/node_modules|\bat \w+ \(/);
  });
});

describe('the oldest waiting job', () => {
  it('is the earliest arrival among prioritized jobs, not the first of the highest priority or the last of the lowest', async () => {
    await queue.pause();
    try {
      const now = Date.now();
      // Added first and of the lowest priority: it waits behind everything added after it.
      await queue.add('step', { index: 0 }, { priority: 10, timestamp: now - 300_000 });
      await queue.add('step', { index: 1 }, { priority: 5, timestamp: now - 20_000 });
      await queue.add('step', { index: 2 }, { priority: 10, timestamp: now - 1_000 });
      await queue.add('step', { index: 3 }, { priority: 1, timestamp: now - 5_000 });
      const age = await oldestWaitingAge(queue, now);
      expect(age).toBe(300_000);
      // A job BullMQ put back (rate limited, or handed back at a shutdown) has counter 0 whatever
      // its age: it is judged by its own time, older here than every other.
      const putBack = await queue.add('step', { index: 4 }, { priority: 3, timestamp: now - 600_000 });
      await redis.zadd(`${env.config.queuePrefix}:ingest:prioritized`, 3 * 2 ** 32, putBack.id!);
      // And one put back that is young changes nothing.
      const young = await queue.add('step', { index: 5 }, { priority: 3, timestamp: now - 2_000 });
      await redis.zadd(`${env.config.queuePrefix}:ingest:prioritized`, 3 * 2 ** 32, young.id!);
      expect(await oldestWaitingAge(queue, now)).toBe(600_000);
      const metrics = await request(server).get('/metrics').set(asViewer);
      const gauge = /clipline_queue_oldest_waiting_seconds\{[^}]*queue="ingest"[^}]*\} ([0-9.e+-]+)\n/.exec(metrics.text);
      expect(Number(gauge?.[1])).toBeGreaterThanOrEqual(600);
    } finally {
      await queue.obliterate({ force: true });
    }
  });
});

describe('the oldest waiting job, when jobs ran before or were delayed', () => {
  it('is judged from when each became ready: a retry from its last run, a delayed job from its delay, not from creation', async () => {
    await queue.pause();
    try {
      const now = Date.now();
      // Created five minutes ago, last run two seconds ago: waiting again for two seconds.
      const retried = await queue.add('step', { index: 0 }, { timestamp: now - 300_000 });
      await redis.hset(`${env.config.queuePrefix}:ingest:${retried.id}`, 'processedOn', String(now - 2_000));
      // Created a minute ago with a delay of 55 s: ready for five.
      const delayed = await queue.add('step', { index: 1 }, { timestamp: now - 60_000 });
      await redis.hset(`${env.config.queuePrefix}:ingest:${delayed.id}`, 'delay', '55000');
      expect(await oldestWaitingAge(queue, now)).toBe(5_000);
      // The same through the prioritized set.
      const prioritized = await queue.add('step', { index: 2 }, { priority: 4, timestamp: now - 400_000 });
      await redis.hset(`${env.config.queuePrefix}:ingest:${prioritized.id}`, 'processedOn', String(now - 7_000));
      expect(await oldestWaitingAge(queue, now)).toBe(7_000);
      // A retry: its last run started 20 s ago and its backoff (kept as its delay) was 15 s.
      const backedOff = await queue.add('step', { index: 3 }, { timestamp: now - 900_000 });
      await redis.hset(`${env.config.queuePrefix}:ingest:${backedOff.id}`, 'processedOn', String(now - 20_000), 'delay', '15000');
      expect(await oldestWaitingAge(queue, now)).toBe(7_000);
    } finally {
      await queue.obliterate({ force: true });
    }
  });
});

describe('queue actions from the overview', () => {
  it('refuses the viewer with 403 and changes nothing', async () => {
    await runJobs(4);
    const failedBefore = await queue.getFailedCount();
    const res = await request(server).post('/overview/queues/ingest/actions').set(asViewer).set('origin', origin).send({ action: 'retry-failed' });
    expect(res.status).toBe(403);
    expect(await queue.getFailedCount()).toBe(failedBefore);
    expect(await new QueueActionsRepository(env.db).recent()).toEqual([]);
  });

  it('lets the admin retry the failed jobs of one reason and writes the audit row', async () => {
    const res = await request(server)
      .post('/overview/queues/ingest/actions')
      .set(asAdmin)
      .set('origin', origin)
      .send({ action: 'retry-failed', reason: 'source unreachable' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ action: 'retry-failed', affected: 1, reasonFilter: 'source unreachable' });
    expect(await queue.getWaitingCount()).toBe(1);
    const [row] = await new QueueActionsRepository(env.db).recent();
    expect(row).toMatchObject({ actor: ADMIN.user, actorKind: 'dashboard', tenant: null, action: 'retry-failed', queue: 'ingest', affected: 1, error: null });
    expect(row?.finishedAt).toBeInstanceOf(Date);
    const overview = await request(server).get('/overview.json').set(asViewer);
    expect(overview.body.audit[0]).toMatchObject({ actor: ADMIN.user, action: 'retry-failed', reasonFilter: 'source unreachable', affected: 1, error: null });
    expect(Date.parse(overview.body.audit[0].finishedAt)).toBeGreaterThanOrEqual(Date.parse(overview.body.audit[0].createdAt));
  });

  it('refuses a cross-origin action, an unknown action and an unknown queue', async () => {
    const post = (path: string, body: object, from = origin) => request(server).post(path).set(asAdmin).set('origin', from).send(body);
    expect((await post('/overview/queues/ingest/actions', { action: 'pause' }, 'https://evil.example')).status).toBe(403);
    expect((await post('/overview/queues/ingest/actions', { action: 'obliterate' })).status).toBe(400);
    expect((await post('/overview/queues/nope/actions', { action: 'pause' })).status).toBe(404);
    expect(await queue.isPaused()).toBe(false);
  });

  it('with Redis away, answers the overview and a queue action with 503 at once, before the action starts', async () => {
    // A Redis of the test's own, which goes away once the dashboard's fail-fast connection (as its main makes it) is up.
    const server = await PrivateRedis.start();
    const away = createRedis(server.url, 'producer');
    const { app, queue: awayQueue, audit } = dashboardOver(away);
    await awayQueue.waitUntilReady();
    await server.kill();
    try {
      const overview = await request(app).get('/overview.json').set(asAdmin);
      expect(overview.status).toBe(503);
      expect(overview.headers['retry-after']).toBe('5');
      expect(overview.body.detail).toBe('Redis is unreachable; the overview and queue actions come back with it');
      const before = await audit.recent(100);
      const paused = await request(app).post('/overview/queues/ingest/actions').set(asAdmin).send({ action: 'pause' });
      expect(paused.status).toBe(503);
      // Refused before it started: nothing to audit, nothing left to run when Redis comes back.
      expect(await audit.recent(100)).toEqual(before);
      // Bull Board's own actions and the breaker list likewise.
      expect((await request(app).put('/api/queues/ingest/pause').set(asAdmin)).status).toBe(503);
      expect((await request(app).get('/breakers').set(asAdmin)).status).toBe(503);
    } finally {
      away.disconnect();
      await awayQueue.close().catch(() => {});
      await server.destroy();
    }
  });

  it('with Redis connected but not answering, answers the overview 503 and /metrics within the command timeout, never hangs', async () => {
    const server = await PrivateRedis.start();
    const stalled = createRedis(server.url, 'producer', { commandTimeoutMs: 1000 });
    const { app, queue: stalledQueue } = dashboardOver(stalled);
    await stalledQueue.waitUntilReady();
    const admin = createRedis(server.url, 'worker');
    await admin.ping();
    try {
      // The server stays up and connected, and answers nothing for 5 s.
      await admin.call('CLIENT', 'PAUSE', '5000', 'ALL');
      const started = Date.now();
      const overview = await request(app).get('/overview.json').set(asAdmin);
      expect(overview.status).toBe(503);
      expect(overview.type).toBe('application/problem+json');
      const metrics = await request(app).get('/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.text).toContain('process_cpu_seconds_total');
      expect(Date.now() - started).toBeLessThan(4500);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE').catch(() => {});
      admin.disconnect();
      stalled.disconnect();
      await stalledQueue.close().catch(() => {});
      await server.destroy();
    }
  });

  it('serves /metrics at once when Redis was never reached, without the deployment-wide series', async () => {
    const never = createRedis('redis://127.0.0.1:1', 'producer');
    const { app, queue: neverQueue } = dashboardOver(never);
    try {
      const started = Date.now();
      const metrics = await request(app).get('/metrics');
      expect(metrics.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(metrics.text).toContain('process_cpu_seconds_total');
      expect(metrics.text).not.toMatch(/^clipline_queue_jobs\{/m);
    } finally {
      never.disconnect();
      await neverQueue.close().catch(() => {});
    }
  });

  it('with the database away, shows the queues and says the video counts and the audit are unavailable, not empty', async () => {
    const away = createDatabase({ url: 'postgres://postgres@127.0.0.1:1/test', schema: 'public', poolSize: 1 });
    try {
      const res = await request(dashboardOn(away)).get('/overview.json').set(asAdmin);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ database: 'unavailable', videos: null, audit: [] });
      expect(res.body.queues.map((q: { name: string }) => q.name)).toEqual(['ingest']);
      expect((await request(server).get('/overview.json').set(asAdmin)).body.database).toBe('ok');
    } finally {
      await away.destroy().catch(() => {});
    }
  });

  it('runs no action the audit cannot record: with the database away, a pause is a 503 and the queue goes on', async () => {
    const away = createDatabase({ url: 'postgres://postgres@127.0.0.1:1/test', schema: 'public', poolSize: 1 });
    try {
      const res = await request(dashboardOn(away)).post('/overview/queues/ingest/actions').set(asAdmin).send({ action: 'pause' });
      expect(res.status).toBe(503);
      expect(res.body.detail).toMatch(/^the queue action could not run: .*; retry shortly$/);
      expect(await queue.isPaused()).toBe(false);
    } finally {
      await away.destroy().catch(() => {});
    }
  });
});

describe('the failure groups’ buttons', () => {
  it('act on their own group alone: not on a group containing its words, and on the failures without a reason', async () => {
    await queue.obliterate({ force: true });
    // A reason whose first line is empty is grouped by its first line with words in it.
    const reasons = ['timeout', 'upload timeout after 30s', 'upload timeout after 30s', '', '', '\n  EPIPE on write\nstack'];
    await queue.addBulk(reasons.map((reason, index) => ({ name: 'step', data: { reason }, opts: { attempts: 1, jobId: `group-${index}` } })));
    const connection = connectRedis();
    const worker = new Worker(
      'ingest',
      async (job) => {
        throw new Error(job.data.reason);
      },
      { connection, prefix: env.config.queuePrefix },
    );
    try {
      await waitFor(async () => ((await queue.getFailedCount()) === reasons.length ? true : undefined), 20_000, 'the jobs to fail');
      await worker.close();
      const listed = await waitFor(
        async () => {
          const read = await request(server).get('/overview.json').set(asAdmin);
          return read.body.failures.length === 4 ? read.body.failures : undefined;
        },
        5_000,
        'the overview to list four groups',
      );
      const groups = Object.fromEntries(listed.map((f: { reason: string; count: number }) => [f.reason, f.count]));
      expect(groups).toEqual({ timeout: 1, 'upload timeout after 30s': 2, 'no reason recorded': 2, 'EPIPE on write': 1 });
      const act = (reason: string, action: string) =>
        request(server).post('/overview/queues/ingest/actions').set(asAdmin).set('origin', origin).send({ action, reason, match: 'group' });
      const timeout = await act('timeout', 'discard-failed');
      expect(timeout.body).toMatchObject({ affected: 1, reasonFilter: 'timeout', reasonMatch: 'group' });
      const unexplained = await act('no reason recorded', 'retry-failed');
      expect(unexplained.body).toMatchObject({ affected: 2 });
      const left = ((await queue.getFailed()) as Job[]).map((job) => job.id).sort();
      expect(left).toEqual(['group-1', 'group-2', 'group-5']);
      const [latest] = await new QueueActionsRepository(env.db).recent(1);
      expect(latest).toMatchObject({ action: 'retry-failed', reasonFilter: 'no reason recorded', reasonMatch: 'group', affected: 2 });
      // An empty group is none: refused, rather than taken for every failed job.
      const empty = await act('', 'discard-failed');
      expect([empty.status, empty.body.detail]).toEqual([400, expect.stringMatching(/^match "group" needs the group as reason/)]);
      expect((await act('EPIPE on write', 'discard-failed')).body).toMatchObject({ affected: 1 });
      expect(((await queue.getFailed()) as Job[]).map((job) => job.id).sort()).toEqual(['group-1', 'group-2']);
      expect((await act('x', 'bogus-match')).status).toBe(400);
      const badMatch = await request(server)
        .post('/overview/queues/ingest/actions')
        .set(asAdmin)
        .set('origin', origin)
        .send({ action: 'retry-failed', reason: 'x', match: 'regex' });
      expect(badMatch.status).toBe(400);
      expect(badMatch.body.detail).toMatch(/^match must be "contains"/);
    } finally {
      await worker.close();
      connection.disconnect();
      await queue.obliterate({ force: true });
    }
  });
});

describe("Bull Board's own actions", () => {
  it('are written to the audit before they run and completed with their answer; with the database away they do not run', async () => {
    const paused = await request(server).put('/api/queues/ingest/pause').set(asAdmin).set('origin', origin);
    expect(paused.status).toBe(200);
    expect(await queue.isPaused()).toBe(true);
    // The row is completed once the answer is sent: read it when it is.
    const finished = () =>
      waitFor(
        async () => {
          const [latest] = await new QueueActionsRepository(env.db).recent(1);
          return latest?.finishedAt ? latest : undefined;
        },
        5_000,
        'the audit row to be completed',
      );
    const row = await finished();
    expect(row).toMatchObject({
      actor: ADMIN.user,
      actorKind: 'dashboard',
      action: 'board',
      queue: 'ingest',
      detail: 'PUT /api/queues/ingest/pause',
      error: null,
    });
    expect(row!.finishedAt).toBeInstanceOf(Date);
    const missing = await request(server).put('/api/queues/ingest/no-such-job/retry/failed').set(asAdmin).set('origin', origin);
    expect(missing.status).toBeGreaterThanOrEqual(400);
    const refused = await finished();
    expect(refused).toMatchObject({
      action: 'board',
      detail: 'PUT /api/queues/ingest/no-such-job/retry/failed',
      error: `Bull Board answered ${missing.status}`,
    });
    // The path's case does not matter to Bull Board's routes, nor to the audit.
    const shouted = await request(server).put('/API/Queues/ingest/pause').set(asAdmin).set('origin', origin);
    expect(shouted.status).toBe(200);
    expect(await finished()).toMatchObject({ action: 'board', queue: 'ingest', detail: 'PUT /API/Queues/ingest/pause', error: null });
    await queue.resume();
    // Pausing and resuming every queue names none: not a queue called "pause".
    for (const all of ['pause', 'resume']) {
      expect((await request(server).put(`/api/queues/${all}`).set(asAdmin).set('origin', origin)).status).toBe(200);
      expect(await finished()).toMatchObject({ action: 'board', queue: '*', detail: `PUT /api/queues/${all}`, error: null });
    }
    expect(await queue.isPaused()).toBe(false);

    const away = createDatabase({ url: 'postgres://postgres@127.0.0.1:1/test', schema: 'public', poolSize: 1 });
    try {
      const unrecorded = await request(dashboardOn(away)).put('/api/queues/ingest/pause').set(asAdmin);
      expect(unrecorded.status).toBe(503);
      expect(unrecorded.body.detail).toMatch(/the action was not run/);
      expect(await queue.isPaused()).toBe(false);
    } finally {
      await away.destroy().catch(() => {});
    }
  });
});
