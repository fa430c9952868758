// `npm run bench -- harness`: what clipline's worker runtime costs per job over a bare BullMQ worker.
//  - harness_vs_raw_worker: jobs/s drained by `startWorker` (packages/shared, the runtime every
//    app's worker uses: payload validation, request-id context, per-job logger, abort wiring,
//    error classification, BullMQ metrics, the job counters and timings of job-metrics.ts) with
//    a no-op processor, vs a raw BullMQ `Worker` with a no-op processor. Both at concurrency 50
//    on the ingest queue's declaration (same job
//    options: attempts, backoff, retention), each draining the same number of jobs pre-filled
//    before it starts, in a process of its own. Rounds alternate raw and harness; the medians
//    are compared. Target ≥ 0.9.
//
// Run directly with `--harness-worker <raw|harness> <prefix> <jobs>`, this file is that worker
// process: it starts the worker, waits until the queue is drained, and prints the drain time.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { clearPrefix, median } from './_support.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED = pathToFileURL(path.join(ROOT, 'packages/shared/dist/index.js')).href;
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const JOBS = Number(process.env.BENCH_HARNESS_JOBS ?? 20_000);
// Five rounds: single rounds of one machine ranged 0.66-1.21 on the same build, so a median of
// three moved by more than the gap it measures (docs/PERFORMANCE.md).
const ROUNDS = Number(process.env.BENCH_HARNESS_ROUNDS ?? 5);
const CONCURRENCY = 50;
/** The level the apps run at by default (LOG_LEVEL=info): the runtime's per-job lines are written. */
const LOG_LEVEL = process.env.BENCH_HARNESS_LOG_LEVEL ?? 'info';

/** The apps' log batching (LOG_FLUSH_MS), read the way the apps read their configuration. */
const logFlushMs = (shared) => shared.loadConfig({ LOG_FLUSH_MS: process.env.LOG_FLUSH_MS }).logFlushMs;

/** Waits until nothing of the queue is left to run; polled on a connection of its own. */
async function drained(queue) {
  for (;;) {
    const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'paused');
    if (Object.values(counts).every((count) => count === 0)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function workerProcess(mode, prefix, jobs) {
  const { Queue, Worker } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const shared = await import(SHARED);
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const probe = new Queue(shared.ingestQueue.name, { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix });
  // What an app sets up before its worker starts (the metrics registry's module, the logger) is
  // done before the clock starts, in both modes alike: the drain measures jobs, not start-up.
  const { Registry } = await import('prom-client');
  const logger = mode === 'raw' ? null : shared.createLogger({ name: 'bench-harness', level: LOG_LEVEL, flushMs: logFlushMs(shared) });
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  let stop;
  if (mode === 'raw') {
    const worker = new Worker(shared.ingestQueue.name, async () => null, { connection, prefix, concurrency: CONCURRENCY });
    stop = () => worker.close();
  } else {
    // As the apps start it: a logger at their default level, the process's metrics registry
    // (job counters and timings), the stall limit they configure.
    const options = { connection, prefix, concurrency: CONCURRENCY, logger, metrics: new Registry(), maxStalledCount: 3 };
    const running = shared.startWorker(shared.ingestQueue, { 'ingest-video': async () => null }, options);
    stop = () => running.close();
  }
  await drained(probe);
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const failed = await probe.getJobCountByTypes('failed');
  process.stderr.write(`${JSON.stringify({ mode, ms, jobs, failed, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
  await stop();
  await probe.close();
  connection.disconnect();
  process.exit(0);
}

/** Fills a fresh queue with `jobs` ingest jobs carrying the queue's own job options. */
async function fill(shared, Queue, redis, prefix, jobs) {
  const queue = new Queue(shared.ingestQueue.name, { connection: redis, prefix });
  const options = shared.jobOptions(shared.ingestQueue);
  for (let offset = 0; offset < jobs; offset += 1000) {
    const batch = Array.from({ length: Math.min(1000, jobs - offset) }, () => ({
      name: 'ingest-video',
      data: { videoId: randomUUID(), source: '/media/bench.mp4' },
      opts: options,
    }));
    await queue.addBulk(batch);
  }
  await queue.close();
}

function drain(mode, prefix, jobs) {
  return new Promise((resolve, reject) => {
    // BENCH_HARNESS_PROF=<dir>: each worker process writes a CPU profile there.
    const profile = process.env.BENCH_HARNESS_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_HARNESS_PROF}`, `--cpu-prof-name=${mode}-${prefix}.cpuprofile`]
      : [];
    const child = spawn(process.execPath, [...profile, fileURLToPath(import.meta.url), '--harness-worker', mode, prefix, String(jobs)], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => {
      const line = stderr
        .split('\n')
        .reverse()
        .find((text) => text.startsWith('{"mode"'));
      if (code !== 0 || !line) reject(new Error(`${mode} worker exited with ${code}: ${stderr.slice(-2000)}`));
      else resolve(JSON.parse(line));
    });
  });
}

export async function run({ emit, log }) {
  const { Queue } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const shared = await import(SHARED);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const base = `bench-harness-${randomUUID().slice(0, 8)}`;
  const rates = { raw: [], harness: [] };
  const cpuPerJob = { raw: [], harness: [] };
  const pairs = [];
  try {
    // Round 0 warms Redis and the page cache up and is not counted.
    for (let round = 0; round <= ROUNDS; round++) {
      for (const mode of round % 2 ? ['harness', 'raw'] : ['raw', 'harness']) {
        const prefix = `${base}-${mode}-${round}`;
        const jobs = round === 0 ? Math.min(JOBS, 3000) : JOBS;
        await fill(shared, Queue, redis, prefix, jobs);
        const result = await drain(mode, prefix, jobs);
        await clearPrefix(redis, prefix);
        const rate = jobs / (result.ms / 1000);
        log(
          `round ${round} ${mode}: ${jobs} jobs in ${Math.round(result.ms)} ms (${Math.round(rate)} jobs/s, ${(result.cpuMs / jobs).toFixed(3)} CPU ms/job in the worker, failed ${result.failed})`,
        );
        if (round > 0) {
          rates[mode].push(rate);
          cpuPerJob[mode].push(result.cpuMs / jobs);
        }
      }
      if (round > 0) pairs.push(rates.harness.at(-1) / rates.raw.at(-1));
    }
    const value = median(rates.harness);
    const baseline = median(rates.raw);
    emit({
      metric: 'harness_vs_raw_worker',
      value: Math.round(value),
      unit: 'jobs/s',
      baseline: Math.round(baseline),
      baseline_unit: 'jobs/s (raw BullMQ Worker, no-op processor)',
      ratio: Number((value / baseline).toFixed(3)),
      target: '>= 0.9',
      round_ratios: pairs.map((ratio) => Number(ratio.toFixed(3))),
      worker_cpu_ms_per_job: { harness: Number(median(cpuPerJob.harness).toFixed(3)), raw: Number(median(cpuPerJob.raw).toFixed(3)) },
      jobs: JOBS,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      runs: { harness: rates.harness.map(Math.round), raw: rates.raw.map(Math.round) },
      log_level: LOG_LEVEL,
      log_flush_ms: logFlushMs(shared),
    });
  } finally {
    await clearPrefix(redis, base);
    redis.disconnect();
  }
}

if (process.argv[2] === '--harness-worker') {
  await workerProcess(process.argv[3], process.argv[4], Number(process.argv[5]));
}
