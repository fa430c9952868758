/**
 * The dashboard on real Redis with a real BullMQ queue: who may read, who may act, what a
 * foreign page or a password guesser gets, and, for every refused write, that the job in Redis
 * is exactly as it was.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { Queue, Worker } from 'bullmq';
import type { RedisClient } from '@clipline/shared';
import { BreakerBoard, createMetricsRegistry, createRedis, loadConfig, type Config } from '@clipline/shared';
import { createDashboardApp } from '../src/app.js';
import { deleteKeys, keysMatching, REDIS_URL } from '../../../tests/helpers/services.js';

const QUEUE = 'dashboard-clips';
const ADMIN = { user: 'ops', password: 'admin-password-for-tests' };
const VIEWER = { user: 'watcher', password: 'viewer-password-for-tests' };
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const asAdmin = basic(ADMIN.user, ADMIN.password);
const asViewer = basic(VIEWER.user, VIEWER.password);

let config: Config;
let redis: RedisClient;
let queue: Queue;
let server: http.Server;
let ownOrigin: string;
/** Failed jobs made before any test runs, so no retried job can be fetched in their place. */
const failed = { retried: '', cleaned: '', viewerTarget: '', crossOriginTarget: '' };

/** Requests leave from this loopback address, so the throttle sees distinct clients. */
const from = (address: string) => new http.Agent({ localAddress: address });

/** Fails one job for real: fetched by a worker (with no processor) and moved to failed with its lock token. */
async function makeFailedJob(fetcher: Worker, label: string): Promise<string> {
  const added = await queue.add('clip', { label }, { attempts: 1 });
  const token = randomUUID();
  const active = await fetcher.getNextJob(token, { block: false });
  if (!active || active.id !== added.id) throw new Error(`expected to fetch job ${added.id}, got ${active?.id}`);
  await active.moveToFailed(new Error('failed on purpose by the test'), token, false);
  return added.id!;
}

async function stateOf(jobId: string): Promise<string> {
  return queue.getJobState(jobId);
}

/** Failed sign-ins recorded for `address`, summed over every minute window. */
async function failuresOf(address: string): Promise<number> {
  const keys = await keysMatching(redis, `${config.queuePrefix}:auth-fail:dashboard:${address}:*`);
  const values = keys.length ? await redis.mget(...keys) : [];
  return values.reduce((sum, value) => sum + Number(value ?? 0), 0);
}

function expectProblem(res: request.Response, status: number, detail: RegExp) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, title: expect.any(String) });
  expect(res.body.detail).toMatch(detail);
}

beforeAll(async () => {
  config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    REDIS_URL,
    QUEUE_PREFIX: `{test-dash-${randomUUID().slice(0, 8)}}`,
    DASHBOARD_USER: ADMIN.user,
    DASHBOARD_PASSWORD: ADMIN.password,
    DASHBOARD_VIEWER_USER: VIEWER.user,
    DASHBOARD_VIEWER_PASSWORD: VIEWER.password,
    AUTH_FAILURES_PER_MINUTE: '20',
  });
  redis = createRedis(config.redisUrl, 'worker');
  queue = new Queue(QUEUE, { connection: redis, prefix: config.queuePrefix });
  const fetcher = new Worker(QUEUE, null, { connection: redis, prefix: config.queuePrefix, autorun: false });
  try {
    failed.retried = await makeFailedJob(fetcher, 'retried by the admin');
    failed.cleaned = await makeFailedJob(fetcher, 'cleaned by the admin');
    failed.viewerTarget = await makeFailedJob(fetcher, 'poked by the viewer');
    failed.crossOriginTarget = await makeFailedJob(fetcher, 'poked by a foreign page');
  } finally {
    await fetcher.close();
  }

  const app = createDashboardApp({
    config,
    metrics: createMetricsRegistry('dashboard'),
    queues: [queue],
    redis,
    breakers: new BreakerBoard(redis, config.queuePrefix),
  });
  server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ownOrigin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  const problems: unknown[] = [];
  await new Promise<void>((resolve) => server.close(() => resolve())).catch((error) => problems.push(error));
  await queue.close().catch((error) => problems.push(error));
  await deleteKeys(config.redisUrl, `${config.queuePrefix}:*`).catch((error) => problems.push(error));
  await redis.quit().catch((error) => problems.push(error));
  if (problems.length) throw new AggregateError(problems, 'dashboard test cleanup failed');
});

describe('open endpoints', () => {
  it('answers /healthz without credentials', async () => {
    const res = await request(server).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('serves /metrics without credentials, so Prometheus keeps scraping', async () => {
    const res = await request(server).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(new RegExp(`clipline_queue_jobs\\{[^}]*queue="${QUEUE}"[^}]*state="failed"[^}]*\\} 4\n`));
  });

  it('tells the age of the oldest waiting job per queue and the memory of Redis against its limit', async () => {
    const waiting = await queue.add('clip', { label: 'old' }, { attempts: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const res = await request(server).get('/metrics');
    const age = new RegExp(`clipline_queue_oldest_waiting_seconds\\{[^}]*queue="${QUEUE}"[^}]*\\} ([0-9.e+-]+)\n`).exec(res.text);
    expect(Number(age?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(age?.[1])).toBeLessThan(120);
    const used = /clipline_redis_memory_used_bytes\{[^}]*node="[^"]+"[^}]*\} (\d+)\n/.exec(res.text);
    expect(Number(used?.[1])).toBeGreaterThan(100_000);
    expect(res.text).toMatch(/clipline_redis_maxmemory_bytes\{[^}]*node="[^"]+"[^}]*\} \d+\n/);
    await waiting.remove();
    // Scrapes share one reading for a second (any number at once cost Redis one scan).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const after = await request(server).get('/metrics');
    expect(after.text).toMatch(new RegExp(`clipline_queue_oldest_waiting_seconds\\{[^}]*queue="${QUEUE}"[^}]*\\} 0\n`));
  });
});

describe('sign-in', () => {
  const address = '127.0.0.3';

  it('challenges a request without credentials with 401 and does not count it as a failure', async () => {
    for (const path of ['/', '/api/queues', '/status']) {
      const res = await request(server).get(path).agent(from(address));
      expectProblem(res, 401, /credentials required/);
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm="clipline dashboard"/);
    }
    expect(await failuresOf(address)).toBe(0);
  });

  it.each([
    ['a wrong password', basic(ADMIN.user, 'not-the-password')],
    ["the viewer's user with the admin's password", basic(VIEWER.user, ADMIN.password)],
    ['another scheme', { authorization: `Bearer ${ADMIN.password}` }],
    ['a malformed Basic header', { authorization: 'Basic !!!' }],
  ])('refuses %s with 401 and counts one failure', async (_what, headers) => {
    const before = await failuresOf(address);
    const res = await request(server).get('/api/queues').set(headers).agent(from(address));
    expectProblem(res, 401, /not valid/);
    expect(res.headers['www-authenticate']).toMatch(/^Basic/);
    expect(await failuresOf(address)).toBe(before + 1);
  });
});

describe('admin', () => {
  it("loads Bull Board's page and its queue list, with write actions available", async () => {
    const page = await request(server).get('/').set(asAdmin);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);

    const api = await request(server).get('/api/queues').set(asAdmin);
    expect(api.status).toBe(200);
    const listed = api.body.queues.find((q: { name: string }) => q.name === QUEUE);
    expect(listed).toMatchObject({ name: QUEUE, readOnlyMode: false });
    // Bull Board's answers say nothing of what serves them, and are read as the type they say.
    expect([api.headers['x-powered-by'], api.headers['x-content-type-options']]).toEqual([undefined, 'nosniff']);
    // Job data is kept by no cache; nor is the status page.
    const status = await request(server).get('/status').set(asAdmin);
    expect([api.headers['cache-control'], page.headers['cache-control'], status.status, status.headers['cache-control']]).toEqual([
      'no-store',
      'no-store',
      200,
      'no-store',
    ]);
    // Bull Board's own scripts and images, the same for everyone, keep their caching.
    const icon = await request(server).get('/static/favicon-32x32.png').set(asAdmin);
    expect([icon.status, icon.headers['cache-control']]).toEqual([200, 'public, max-age=0']);
  });

  it('retries a failed job through Bull Board, and the job is waiting again in Redis', async () => {
    expect(await stateOf(failed.retried)).toBe('failed');
    const res = await request(server)
      .put(`/api/queues/${QUEUE}/${failed.retried}/retry`)
      .set(asAdmin)
      .set({ origin: ownOrigin, 'sec-fetch-site': 'same-origin' });
    expect(res.status).toBe(204);
    expect(await stateOf(failed.retried)).toBe('waiting');
    const job = await queue.getJob(failed.retried);
    expect(job?.failedReason).toBeFalsy();
  });

  it('cleans a failed job through Bull Board, and the job is gone from Redis', async () => {
    const res = await request(server).put(`/api/queues/${QUEUE}/${failed.cleaned}/clean`).set(asAdmin).set({ origin: ownOrigin });
    expect(res.status).toBe(204);
    expect(await queue.getJob(failed.cleaned)).toBeUndefined();
    expect(await stateOf(failed.cleaned)).toBe('unknown');
  });

  it('renders /status', async () => {
    const res = await request(server).get('/status').set(asAdmin);
    expect(res.status).toBe(200);
    expect(res.text).toContain(`<td>${QUEUE}</td>`);
  });

  it('lets no other site frame a page, Bull Board included', async () => {
    for (const path of ['/status', `/queue/${QUEUE}`, '/api/queues']) {
      const res = await request(server).get(path).set(asAdmin);
      expect([path, res.status, res.headers['x-frame-options'], res.headers['content-security-policy']]).toEqual([
        path,
        200,
        'DENY',
        expect.stringContaining("frame-ancestors 'none'"),
      ]);
    }
  });
});

describe('viewer', () => {
  it("loads Bull Board's page, its queue list (read-only) and a job", async () => {
    const page = await request(server).get('/').set(asViewer);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);

    const api = await request(server).get('/api/queues').set(asViewer);
    expect(api.status).toBe(200);
    expect(api.body.queues.find((q: { name: string }) => q.name === QUEUE)).toMatchObject({ name: QUEUE, readOnlyMode: true });

    const job = await request(server).get(`/api/queues/${QUEUE}/${failed.viewerTarget}`).set(asViewer);
    expect(job.status).toBe(200);
    expect(job.body.job).toMatchObject({ id: failed.viewerTarget });
  });

  it('renders /status', async () => {
    const res = await request(server).get('/status').set(asViewer);
    expect(res.status).toBe(200);
    expect(res.text).toContain(`<td>${QUEUE}</td>`);
  });

  it('is refused 403 on every mutating route, and nothing changes in Redis', async () => {
    const id = failed.viewerTarget;
    const countsBefore = await queue.getJobCounts();
    const writes: [method: 'put' | 'post' | 'patch' | 'delete', path: string][] = [
      ['put', `/api/queues/${QUEUE}/${id}/retry`],
      ['put', `/api/queues/${QUEUE}/${id}/clean`],
      ['put', `/api/queues/${QUEUE}/${id}/promote`],
      ['patch', `/api/queues/${QUEUE}/${id}/update-data`],
      ['patch', `/api/queues/${QUEUE}/${id}/priority`],
      ['put', `/api/queues/${QUEUE}/retry/failed`],
      ['put', `/api/queues/${QUEUE}/clean/failed`],
      ['put', `/api/queues/${QUEUE}/promote`],
      ['put', `/api/queues/${QUEUE}/pause`],
      ['put', `/api/queues/${QUEUE}/resume`],
      ['put', `/api/queues/${QUEUE}/empty`],
      ['put', `/api/queues/${QUEUE}/obliterate`],
      ['put', `/api/queues/${QUEUE}/concurrency`],
      ['post', `/api/queues/${QUEUE}/add`],
      ['put', '/api/queues/pause'],
      ['put', '/api/queues/resume'],
      ['delete', `/api/queues/${QUEUE}`],
    ];
    for (const [method, path] of writes) {
      const res = await request(server)
        [method](path)
        .set(asViewer)
        .set({ origin: ownOrigin })
        .send({ name: 'clip', data: { label: 'x' }, concurrency: 1 });
      expectProblem(res, 403, /viewer account is read-only/);
    }
    expect(await stateOf(id)).toBe('failed');
    expect((await queue.getJob(id))?.data).toEqual({ label: 'poked by the viewer' });
    expect(await queue.isPaused()).toBe(false);
    expect(await queue.getJobCounts()).toEqual(countsBefore);
  });
});

describe('cross-origin writes', () => {
  it.each([
    ['a foreign Origin', { origin: 'https://evil.example' }, /Origin "https:\/\/evil\.example"/],
    ['Origin: null', { origin: 'null' }, /Origin "null"/],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }, /Sec-Fetch-Site is "cross-site"/],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }, /Sec-Fetch-Site is "same-site"/],
  ])('refuses an admin POST and PUT with %s, and the queue is unchanged', async (_what, headers, detail) => {
    const countsBefore = await queue.getJobCounts();
    const add = await request(server)
      .post(`/api/queues/${QUEUE}/add`)
      .set(asAdmin)
      .set(headers)
      .send({ name: 'clip', data: { label: 'forged' } });
    expectProblem(add, 403, detail);
    const retry = await request(server).put(`/api/queues/${QUEUE}/${failed.crossOriginTarget}/retry`).set(asAdmin).set(headers);
    expectProblem(retry, 403, detail);
    expect(await stateOf(failed.crossOriginTarget)).toBe('failed');
    expect(await queue.getJobCounts()).toEqual(countsBefore);
  });

  it('refuses before authentication: a forged write without credentials gets 403, not the 401 challenge', async () => {
    const res = await request(server).put(`/api/queues/${QUEUE}/pause`).set({ origin: 'https://evil.example' });
    expectProblem(res, 403, /cross-origin PUT refused/);
    expect(await queue.isPaused()).toBe(false);
  });

  it('lets a cross-origin GET through to sign-in (reads change nothing)', async () => {
    const res = await request(server).get('/api/queues').set(asAdmin).set({ origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(res.status).toBe(200);
  });
});

describe('failed sign-in throttle', () => {
  it('answers the 21st wrong password in a minute from one address 429 with Retry-After, while another address still gets 401', async () => {
    const guesser = '127.0.0.2';
    // The budget is per wall-clock minute; start early in a minute so all 21 attempts share one.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_500 - intoMinute));

    const wrong = basic(ADMIN.user, 'guess');
    for (let attempt = 1; attempt <= 20; attempt++) {
      const res = await request(server).get('/api/queues').set(wrong).agent(from(guesser));
      expect([attempt, res.status]).toEqual([attempt, 401]);
    }
    expect(await failuresOf(guesser)).toBe(20);

    const throttled = await request(server).get('/api/queues').set(wrong).agent(from(guesser));
    expectProblem(throttled, 429, /too many failed sign-ins/);
    const retryAfter = Number(throttled.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);

    // Throttled means the header is not even read: the right password is refused too, and a
    // refused attempt is not counted again.
    const rightButThrottled = await request(server).get('/api/queues').set(asAdmin).agent(from(guesser));
    expect(rightButThrottled.status).toBe(429);
    expect(await failuresOf(guesser)).toBe(20);

    const otherAddress = await request(server).get('/api/queues').set(wrong).agent(from('127.0.0.4'));
    expectProblem(otherAddress, 401, /not valid/);
    const otherAdmin = await request(server).get('/api/queues').set(asAdmin).agent(from('127.0.0.4'));
    expect(otherAdmin.status).toBe(200);
  });
});
