/**
 * Shutdown of the real processes (built dist) in the middle of work. The producer lets a request
 * in flight when SIGTERM arrives finish, refuses new connections and exits 0. worker-io finishes
 * an active job that ends within its grace period, hands back one that does not (not failed, no
 * attempt spent) and exits 0. A second signal during a shutdown forces the exit at once with
 * 128 + the signal's number. Each process gets free ports; the file gets its own queue prefix,
 * schema and storage.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { jest } from '@jest/globals';
import request from 'supertest';
import { createService, DEV_API_KEY, ingestQueue, JobQueues, REPEATED_SIGNAL_MS, type ServiceContext } from '@clipline/shared';
import type { RedisClient } from '@clipline/shared';
import { buildProducer } from '../../apps/producer/src/producer.js';
import { generateVideo } from '../helpers/media.js';
import { freePort, startApp, stopApp, waitForHttp, type RunningApp } from '../helpers/processes.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../helpers/services.js';

jest.setTimeout(120_000);

let env: TestEnvironment;
let video: Buffer;
const running: RunningApp[] = [];

beforeAll(async () => {
  // SHUTDOWN_TIMEOUT_SECONDS is 5: worker-io gives active jobs max(1, 5 - 3) = 2 s before it hands them back.
  env = await createTestEnvironment({ LOG_LEVEL: 'info', ALLOW_PRIVATE_SOURCES: 'true', API_RATE_LIMIT_PER_MINUTE: '0', SHUTDOWN_TIMEOUT_SECONDS: '5' });
  video = await readFile((await generateVideo({ path: path.join(env.config.storageDir, 'source.mp4'), segments: [1, 1] })).path);
});

afterAll(async () => {
  await Promise.all(running.map((app) => stopApp(app, 'SIGKILL')));
  await env?.cleanup();
});

function start(name: 'producer' | 'worker-io', extra: Record<string, string>, options: { ipc?: boolean } = {}): RunningApp {
  const app = startApp(name, { ...env.env, HOST: '127.0.0.1', ...extra }, options);
  running.push(app);
  return app;
}

/** Connecting to `port` is refused (nothing listens any more). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

const exitOf = (app: RunningApp) => app.exited.then(({ code, signal }) => ({ code, signal, output: code === 0 ? '' : app.output() }));

describe('the producer', () => {
  async function listening(options: { ipc?: boolean } = {}) {
    const port = await freePort();
    const app = start('producer', { PORT: String(port) }, options);
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, app);
    return { port, app };
  }

  /**
   * A submission whose body arrives in two parts: the headers and half the body now, the rest
   * when `finish` is called. Resolves `answer` with the raw HTTP answer.
   */
  async function slowSubmission(port: number) {
    const body = JSON.stringify({ source: 'https://cdn.example.com/slow.mp4', title: `slow-${randomUUID()}` });
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    const answer = new Promise<string>((resolve) => socket.once('close', () => resolve(text)));
    socket.write(
      `POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${DEV_API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
    );
    socket.write(body.slice(0, 20));
    // Another connection answered after these bytes were sent: the server has the request by now.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    return { answer, finish: () => socket.write(body.slice(20)), abandon: () => socket.destroy() };
  }

  it('lets a request in flight at SIGTERM finish, refuses new connections, and exits 0', async () => {
    const { port, app } = await listening();
    const slow = await slowSubmission(port);
    app.child.kill('SIGTERM');
    await waitFor(async () => ((await refused(port)) ? true : undefined), 10_000, 'the producer to stop accepting connections');
    expect(app.child.exitCode).toBeNull();
    slow.finish();
    const answer = await slow.answer;
    expect(answer).toMatch(/^HTTP\/1\.1 202 /);
    const id = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).id as string;
    // The request did its whole work: the video is stored.
    const row = await env.db.selectFrom('videos').select(['id', 'status']).where('id', '=', id).executeTakeFirst();
    expect(row).toEqual({ id, status: 'queued' });
    expect(await exitOf(app)).toEqual({ code: 0, signal: null, output: '' });
  });

  it('exits at once with 130 on SIGINT during a shutdown held up by a request in flight', async () => {
    const { port, app } = await listening();
    const slow = await slowSubmission(port);
    app.child.kill('SIGTERM');
    await waitFor(async () => ((await refused(port)) ? true : undefined), 10_000, 'the producer to start shutting down');
    expect(app.child.exitCode).toBeNull();
    app.child.kill('SIGINT');
    expect(await app.exited).toEqual({ code: 130, signal: null });
    expect(app.output()).toMatch(/second signal: forcing exit/);
    slow.abandon();
  });

  it('takes one Ctrl-C delivered twice at once (by the terminal and forwarded by npm) as one: a graceful stop, exit 0', async () => {
    const { port, app } = await listening();
    // A request in flight holds the shutdown up, so the copy finds it still going.
    const slow = await slowSubmission(port);
    app.child.kill('SIGINT');
    // npm's copy comes a moment later (sent at once, the kernel would merge the two into one).
    await new Promise((resolve) => setTimeout(resolve, 50));
    app.child.kill('SIGINT');
    await waitFor(async () => ((await refused(port)) ? true : undefined), 10_000, 'the producer to stop accepting connections');
    slow.finish();
    expect(await slow.answer).toMatch(/^HTTP\/1\.1 202 /);
    const { code, output } = await exitOf(app);
    expect({ code, forced: /second signal/.test(output) }).toEqual({ code: 0, forced: false });
  });

  it('stops gracefully, exit 0, when the supervisor that started it over an IPC channel goes away', async () => {
    const { app } = await listening({ ipc: true });
    app.child.disconnect();
    expect(await exitOf(app)).toEqual({ code: 0, signal: null, output: '' });
    expect(app.output()).toMatch(/"reason":"supervisor gone".*"msg":"shutting down"/);
  });
});

describe('worker-io', () => {
  let producerService: ServiceContext;
  let producer: ReturnType<typeof buildProducer>;
  let redis: RedisClient;
  let jobs: JobQueues;
  let source: http.Server;
  let sourceBase: string;
  /** Per path: how many requests it got, and whether the rest of the body may go. */
  const paths = new Map<string, { requests: number; release: () => void; released: boolean; waiting: (() => void)[] }>();

  beforeAll(async () => {
    producerService = createService('producer', env.config);
    producer = buildProducer(producerService);
    if (producer.redis.status !== 'ready') await new Promise((resolve) => producer.redis.once('ready', resolve));
    redis = connectRedis(env.config.redisUrl);
    jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
    // A source that sends its headers and first bytes, then holds the rest until released.
    source = http.createServer((req, res) => {
      const gate = paths.get(req.url ?? '');
      if (!gate) return void res.writeHead(404).end();
      gate.requests += 1;
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(video.length) });
      res.write(video.subarray(0, 1024));
      const rest = () => res.end(video.subarray(1024));
      if (gate.released) rest();
      else gate.waiting.push(rest);
    });
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    sourceBase = `http://127.0.0.1:${(source.address() as net.AddressInfo).port}`;
  });

  afterAll(async () => {
    source?.closeAllConnections();
    await new Promise((resolve) => source?.close(resolve));
    await jobs?.close();
    redis?.disconnect();
    await producerService?.shutdown.shutdown('tests done');
  });

  /** A video whose source download starts and then stalls until `release`. */
  async function stalledVideo() {
    const route = `/held-${randomUUID()}.mp4`;
    const gate = {
      requests: 0,
      released: false,
      waiting: [] as (() => void)[],
      release() {
        gate.released = true;
        for (const rest of gate.waiting.splice(0)) rest();
      },
    };
    paths.set(route, gate);
    const res = await request(producer.app)
      .post('/v1/videos')
      .set({ authorization: `Bearer ${DEV_API_KEY}` })
      .send({ source: `${sourceBase}${route}` });
    expect(res.status).toBe(202);
    return { id: res.body.id as string, gate };
  }

  /** A worker; `shutdownSeconds` long enough that a loaded machine still finishes in time, where the test needs that. */
  async function startWorker(shutdownSeconds = 5) {
    const port = await freePort();
    const app = start('worker-io', { WORKER_IO_METRICS_PORT: String(port), SHUTDOWN_TIMEOUT_SECONDS: String(shutdownSeconds) });
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, app);
    return app;
  }

  const ingestEvents = (id: string) =>
    env.db.selectFrom('job_events').select(['status', 'attempt']).where('video_id', '=', id).where('step', '=', 'ingest').orderBy('id').execute();

  async function downloading(id: string, gate: { requests: number }) {
    await waitFor(async () => (gate.requests > 0 ? true : undefined), 30_000, 'the worker to start the download');
    await waitFor(async () => ((await jobs.get(ingestQueue, `${id}-ingest`))?.state === 'active' ? true : undefined), 10_000, 'the ingest job to be active');
  }

  it('finishes an active job that ends within the grace period, then exits 0', async () => {
    const app = await startWorker(15);
    const { id, gate } = await stalledVideo();
    await downloading(id, gate);
    app.child.kill('SIGTERM');
    gate.release();
    expect(await exitOf(app)).toEqual({ code: 0, signal: null, output: '' });
    expect(await ingestEvents(id)).toEqual([
      { status: 'active', attempt: 1 },
      { status: 'completed', attempt: 1 },
    ]);
    expect(await jobs.get(ingestQueue, `${id}-ingest`)).toMatchObject({ state: 'completed', attemptsMade: 1 });
    expect(gate.requests).toBe(1);
  });

  it('hands back a job still running after the grace period, not failed and no attempt spent, exits 0; the next worker finishes it', async () => {
    const first = await startWorker();
    const { id, gate } = await stalledVideo();
    await downloading(id, gate);
    first.child.kill('SIGTERM');
    expect(await exitOf(first)).toEqual({ code: 0, signal: null, output: '' });
    expect(await ingestEvents(id)).toEqual([
      { status: 'active', attempt: 1 },
      { status: 'released', attempt: 1 },
    ]);
    const handedBack = await jobs.get(ingestQueue, `${id}-ingest`);
    expect(['waiting', 'prioritized']).toContain(handedBack?.state);
    expect(handedBack).toMatchObject({ attemptsMade: 0, failedReason: null });
    const videoRow = await env.db.selectFrom('videos').select(['status', 'error']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(videoRow).toEqual({ status: 'processing', error: null });

    gate.release();
    const second = await startWorker();
    await waitFor(
      async () => ((await jobs.get(ingestQueue, `${id}-ingest`))?.state === 'completed' ? true : undefined),
      30_000,
      'the next worker to finish the ingest',
    );
    expect(await ingestEvents(id)).toEqual([
      { status: 'active', attempt: 1 },
      { status: 'released', attempt: 1 },
      { status: 'active', attempt: 1 },
      { status: 'completed', attempt: 1 },
    ]);
    expect(await jobs.get(ingestQueue, `${id}-ingest`)).toMatchObject({ attemptsMade: 1 });
    expect(gate.requests).toBe(2);
    expect(await stopApp(second)).toMatchObject({ code: 0 });
  });

  it('exits at once with 143 on a second SIGTERM while a job holds up the shutdown', async () => {
    const app = await startWorker(15);
    const { id, gate } = await stalledVideo();
    await downloading(id, gate);
    app.child.kill('SIGTERM');
    await waitFor(async () => (/"msg":"shutting down"/.test(app.output()) ? true : undefined), 10_000, 'worker-io to start shutting down');
    expect(app.child.exitCode).toBeNull();
    // Sooner, the same signal counts as the first one delivered twice.
    await new Promise((resolve) => setTimeout(resolve, REPEATED_SIGNAL_MS));
    app.child.kill('SIGTERM');
    expect(await app.exited).toEqual({ code: 143, signal: null });
    expect(app.output()).toMatch(/second signal: forcing exit/);
    gate.release();
  });
});
