/**
 * Autoscaling, simulated end to end: two replicas of the real dashboard (createDashboardApp over
 * every queue of the system, on real Redis, under a queue prefix of this test) are scraped every
 * second by a real `prometheus` process; a backlog is built in the real BullMQ queues (waiting,
 * prioritized, jobs fetched into `active` by a raw Worker, delayed ones, and jobs of queues and
 * states that must not count), and the exact query of each rendered ScaledObject is evaluated
 * through Prometheus's HTTP API. The replicas KEDA's HPA would ask for (AverageValue:
 * ceil(value / threshold) within min and max, zero at the activation threshold when min is zero)
 * follow the backlog up, keep one CPU worker for delayed jobs alone, and return to the minimum
 * once the jobs are finished and removed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type Job, Queue, Worker } from 'bullmq';
import { allQueues, BreakerBoard, type Config, createMetricsRegistry, createRedis, loadConfig, type RedisClient } from '@clipline/shared';
import { createDashboardApp } from '../../apps/dashboard/src/app.js';
import { deleteKeys, REDIS_URL } from '../helpers/services.js';
import { desiredReplicas, prometheusTool, specOf } from './support/keda.js';
import { RENDERS, rendered } from './support/manifests.js';

const WORKERS = ['worker-cpu', 'worker-io'] as const;
type WorkerName = (typeof WORKERS)[number];

let config: Config;
let redis: RedisClient;
let queues: Map<string, Queue>;
const dashboards: http.Server[] = [];
let prometheus: ChildProcess | undefined;
let prometheusUrl: string;
let prometheusLog = '';
let dir: string;
/** Jobs fetched into `active`, with the lock token they were fetched with and the Worker that holds them. */
const fetched: { job: Job; token: string; worker: Worker }[] = [];

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startDashboard(): Promise<string> {
  const metrics = createMetricsRegistry('dashboard');
  const app = createDashboardApp({ config, metrics, queues: [...queues.values()], redis, breakers: new BreakerBoard(redis, config.queuePrefix) });
  const server = http.createServer(app);
  dashboards.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function startPrometheus(targets: string[]): Promise<void> {
  const binary = prometheusTool('prometheus');
  const port = await freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  const scrape = { job_name: 'dashboard', scrape_interval: '1s', scrape_timeout: '900ms', static_configs: [{ targets }] };
  writeFileSync(path.join(dir, 'prometheus.yml'), JSON.stringify({ global: { scrape_interval: '1s' }, scrape_configs: [scrape] }));
  prometheus = spawn(
    binary,
    [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const record = (chunk: Buffer) => (prometheusLog = `${prometheusLog}${chunk}`.slice(-20_000));
  prometheus.stdout!.on('data', record);
  prometheus.stderr!.on('data', record);
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(200)) {
    if (prometheus.exitCode !== null) break;
    const ready = await fetch(`${prometheusUrl}/-/ready`).catch(() => undefined);
    if (ready?.ok) return;
  }
  throw new Error(`prometheus did not become ready:\n${prometheusLog}`);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'clipline-keda-prometheus-'));
  config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', REDIS_URL, QUEUE_PREFIX: `{test-keda-${randomUUID().slice(0, 8)}}` });
  redis = createRedis(config.redisUrl, 'worker');
  queues = new Map(allQueues.map(({ name }) => [name, new Queue(name, { connection: redis, prefix: config.queuePrefix })]));
  // Two replicas scraped, as in production: their identical counts must count once.
  const targets = [await startDashboard(), await startDashboard()];
  await startPrometheus(targets);
}, 60_000);

afterAll(async () => {
  const problems: unknown[] = [];
  for (const worker of new Set(fetched.splice(0).map(({ worker }) => worker))) await worker.close().catch((error) => problems.push(error));
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
    prometheus.kill('SIGTERM');
    const kill = setTimeout(() => prometheus!.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(kill);
  }
  for (const server of dashboards) await new Promise<void>((resolve) => server.close(() => resolve())).catch((error) => problems.push(error));
  for (const queue of queues?.values() ?? []) await queue.close().catch((error) => problems.push(error));
  if (config) await deleteKeys(config.redisUrl, `${config.queuePrefix}:*`).catch((error) => problems.push(error));
  await redis?.quit().catch((error) => problems.push(error));
  rmSync(dir, { recursive: true, force: true });
  if (problems.length) throw new AggregateError(problems, 'autoscaling simulation cleanup failed');
}, 30_000);

const renders = RENDERS.map((render) => ({ render, objects: rendered(render) }));

/** Each render's query for a worker: the exact string KEDA would send. */
const queriesOf = (worker: WorkerName) => new Set(renders.map(({ objects }) => specOf(objects, worker).triggers[0]!.metadata.query));

async function evaluate(query: string): Promise<number | undefined> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query })}`);
  const body = (await response.json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: { metric: object; value: [number, string] }[] };
  };
  if (body.status !== 'success') throw new Error(`prometheus refused ${query}: ${body.error}`);
  expect(body.data!.resultType).toBe('vector');
  if (body.data!.result.length > 1) throw new Error(`${query} returned ${body.data!.result.length} series`);
  const [sample] = body.data!.result;
  return sample ? Number(sample.value[1]) : undefined;
}

/** Waits until every render's query of each worker gives the expected value (the next scrapes see the queues as they are now). */
async function expectValues(expected: Record<WorkerName, number>): Promise<void> {
  const read = async () =>
    Object.fromEntries(await Promise.all(WORKERS.map(async (worker) => [worker, await Promise.all([...queriesOf(worker)].map(evaluate))])));
  let last: Record<string, (number | undefined)[]> = {};
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(250)) {
    last = await read();
    if (WORKERS.every((worker) => last[worker]!.every((value) => value === expected[worker]))) return;
  }
  expect(last).toEqual(Object.fromEntries(WORKERS.map((worker) => [worker, [...queriesOf(worker)].map(() => expected[worker])])));
}

/** The replicas each render's ScaledObject asks for at these values. */
function replicasAt(values: Record<WorkerName, number>): Record<string, Record<WorkerName, number | undefined>> {
  return Object.fromEntries(
    renders.map(({ render, objects }) => [
      render,
      Object.fromEntries(WORKERS.map((worker) => [worker, desiredReplicas(specOf(objects, worker), values[worker])])),
    ]),
  ) as Record<string, Record<WorkerName, number | undefined>>;
}

async function addJobs(queue: string, count: number, options: { priority?: number; delay?: number } = {}): Promise<void> {
  await queues.get(queue)!.addBulk(Array.from({ length: count }, (_, index) => ({ name: 'simulated', data: { index }, opts: options })));
}

/**
 * Moves `count` jobs of a queue to `active`, as a worker fetching them would (no processor runs).
 * The Worker stays open until the jobs are finished: they complete through it.
 */
async function fetchJobs(queue: string, count: number): Promise<void> {
  const worker = new Worker(queue, null, { connection: redis, prefix: config.queuePrefix, autorun: false });
  for (let index = 0; index < count; index += 1) {
    const token = randomUUID();
    const job = await worker.getNextJob(token, { block: false });
    if (!job) throw new Error(`no job to fetch from ${queue}`);
    fetched.push({ job, token, worker });
  }
}

/** Completes every fetched job, then closes the Workers that fetched them. */
async function completeFetched(): Promise<void> {
  const finished = fetched.splice(0);
  for (const { job, token } of finished) await job.moveToCompleted('done', token, false);
  for (const worker of new Set(finished.map(({ worker }) => worker))) await worker.close();
}

it('finds prometheus, or says how to install it', () => {
  expect(prometheusTool('prometheus')).toBe('prometheus');
  expect(prometheusUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
});

describe('the ScaledObjects queried on a real Prometheus scraping two real dashboards', () => {
  it('ask for the minimum while the queues are empty: zero CPU workers, the least I/O workers', async () => {
    // Both dashboards are scraped (the second's first scrape may come a moment after the first's),
    // so every count below is reported twice and must count once.
    let up: number | undefined;
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && up !== 2; await sleep(250)) up = await evaluate('count(up{job="dashboard"} == 1)');
    expect(up).toBe(2);
    await expectValues({ 'worker-cpu': 0, 'worker-io': 0 });
    expect(replicasAt({ 'worker-cpu': 0, 'worker-io': 0 })).toEqual({
      base: { 'worker-cpu': 0, 'worker-io': 1 },
      dev: { 'worker-cpu': 0, 'worker-io': 1 },
      prod: { 'worker-cpu': 0, 'worker-io': 2 },
    });
  });

  it('follow a backlog up: waiting, prioritized and running jobs per replica, delayed ones adding one CPU worker', async () => {
    await addJobs('ingest', 120);
    await fetchJobs('ingest', 5);
    await addJobs('ai-openai', 30, { priority: 3 });
    await addJobs('notify', 10);
    await addJobs('analyze', 5);
    await fetchJobs('analyze', 2);
    await addJobs('render', 3, { priority: 1 });
    await addJobs('accounts', 1);
    await addJobs('render', 4, { delay: 3_600_000 });
    // Not counted: the queues neither ScaledObject follows, and delayed I/O jobs.
    await addJobs('persist', 40);
    await addJobs('notify', 6, { delay: 3_600_000 });
    const values = { 'worker-cpu': 5 + 3 + 1 + 1, 'worker-io': 120 + 30 + 10 };
    await expectValues(values);
    expect(replicasAt(values)).toEqual({
      base: { 'worker-cpu': 5, 'worker-io': 4 },
      dev: { 'worker-cpu': 2, 'worker-io': 2 },
      prod: { 'worker-cpu': 5, 'worker-io': 4 },
    });
  });

  it('keep one CPU worker for delayed jobs alone once the rest is finished or removed, and the I/O workers at their minimum', async () => {
    await completeFetched();
    for (const queue of queues.values()) await queue.drain(false);
    const values = { 'worker-cpu': 1, 'worker-io': 0 };
    await expectValues(values);
    expect(replicasAt(values)).toEqual({
      base: { 'worker-cpu': 1, 'worker-io': 1 },
      dev: { 'worker-cpu': 1, 'worker-io': 1 },
      prod: { 'worker-cpu': 1, 'worker-io': 2 },
    });
  });

  it('return to zero CPU workers once the delayed jobs are gone too', async () => {
    for (const queue of queues.values()) await queue.drain(true);
    await expectValues({ 'worker-cpu': 0, 'worker-io': 0 });
    expect(replicasAt({ 'worker-cpu': 0, 'worker-io': 0 })).toEqual({
      base: { 'worker-cpu': 0, 'worker-io': 1 },
      dev: { 'worker-cpu': 0, 'worker-io': 1 },
      prod: { 'worker-cpu': 0, 'worker-io': 2 },
    });
  });
});
