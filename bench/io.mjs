// `npm run bench -- io`: I/O-worker throughput against Little's law, and that worker's
// event-loop lag meanwhile.
//
// Three processes, so none shares an event loop with another: this one (producer and judge),
// the upstream simulator (chat completions answer after a fixed 100 ms), and one worker
// process running a BullMQ Worker at concurrency 50 whose processor calls the OpenAI client
// with its breaker and shared limiter on (the limit set high enough not to bind). With
// 50 calls in flight and 100 ms each, Little's law caps throughput at 50 / 0.1 s = 500 jobs/s.
//
// Two peers run in the same run against the same simulator, so what the law leaves out is
// measured rather than guessed: the same BullMQ worker calling `node:http` directly
// (`io_raw_http_vs_littles_law`: the queue without the client), and 50 loops calling
// `node:http` with no queue at all (`io_http_loop_vs_littles_law`: what the simulator and the
// loopback allow, the ceiling of the other two).
//
// Run directly with `--io-worker`, this file is that worker process.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from './_support.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SIM_MAIN = path.join(ROOT, 'infra/upstream-sim/dist/main.js');
const PROVIDERS = path.join(ROOT, 'apps/worker-io/dist/providers/index.js');
const QUEUE = 'ai-bench';
const JOBS = 3000;
const CONCURRENCY = 50;
const LATENCY_MS = 100;
/** The context run's upstream latency: the same mean, spread evenly. */
const JITTERED_LATENCY = { kind: 'uniform', minMs: LATENCY_MS - 50, maxMs: LATENCY_MS + 50 };
const LAG_RESOLUTION_MS = 1;
/** Completions before and after the steady state: the first and last 10% are warm-up and drain. */
const STEADY_FROM = 0.1;
const STEADY_TO = 0.9;

/** Starts a node child and resolves with it once a stdout JSON line satisfies `ready`. */
function startChild(args, env, ready, what, timeoutMs = 30_000) {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const messages = [];
  const waiters = [];
  const onLine = (line) => {
    if (!line.startsWith('{')) return;
    const message = JSON.parse(line);
    messages.push(message);
    for (const waiter of waiters.splice(0)) waiter();
  };
  let partial = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    lines.forEach(onLine);
  });
  child.stderr.on('data', (chunk) => (output += chunk));
  const waitFor = (predicate, label, ms) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} did not ${label} within ${ms} ms:\n${output}`)), ms);
      const check = () => {
        const found = messages.find(predicate);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else if (child.exitCode !== null) {
          clearTimeout(timer);
          reject(new Error(`${what} exited with ${child.exitCode}:\n${output}`));
        } else {
          waiters.push(check);
        }
      };
      child.once('exit', () => {
        for (const waiter of waiters.splice(0)) waiter();
      });
      check();
    });
  return waitFor(ready, 'start', timeoutMs).then(() => ({ child, waitFor, output: () => output }));
}

function stopChild(child) {
  if (child.exitCode !== null) return Promise.resolve();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  // A profiled process needs time to write its profile.
  const kill = setTimeout(() => child.kill('SIGKILL'), process.env.BENCH_IO_PROF ? 60_000 : 5000);
  return exited.finally(() => clearTimeout(kill));
}

/** What the worker process runs, each against the same simulator. */
const MODES = {
  client: 'BullMQ worker, OpenAI client (breaker, shared limiter, got)',
  'raw-http': 'BullMQ worker, node:http',
  loop: `${CONCURRENCY} loops calling node:http, no queue`,
};

/** Runs JOBS calls in a worker process of the given mode and returns its summary. */
async function drainWith(mode, { redisUrl, prefix, simUrl, log }) {
  const { Queue } = await import('bullmq');
  const queue = new Queue(QUEUE, { connection: { url: redisUrl, maxRetriesPerRequest: null }, prefix });
  let worker;
  try {
    if (mode !== 'loop') {
      log(`enqueuing ${JOBS} jobs under prefix ${prefix}`);
      for (let start = 0; start < JOBS; start += 1000) {
        await queue.addBulk(
          Array.from({ length: Math.min(1000, JOBS - start) }, (_, offset) => ({
            name: 'write-captions',
            data: { clip: start + offset },
            opts: { attempts: 3, backoff: { type: 'exponential', delay: 100 }, removeOnComplete: true, removeOnFail: 1000 },
          })),
        );
      }
    }
    log(`starting the ${mode} worker process (concurrency ${CONCURRENCY})`);
    // BENCH_IO_PROF=<dir>: each worker process writes a CPU profile there.
    const profile = process.env.BENCH_IO_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_IO_PROF}`, `--cpu-prof-name=${mode}.cpuprofile`] : [];
    worker = await startChild(
      [...profile, fileURLToPath(import.meta.url), '--io-worker'],
      { REDIS_URL: redisUrl, PREFIX: prefix, SIM_URL: simUrl, JOBS: String(JOBS), MODE: mode },
      (m) => m.ready === true,
      'the worker process',
    );
    return await worker.waitFor((m) => m.summary === true, 'finish the jobs', 120_000);
  } finally {
    if (worker) await stopChild(worker.child);
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
}

export async function run({ emit, log }) {
  for (const file of [SIM_MAIN, PROVIDERS]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: build first (npm run bench builds; or npx tsc -b)`);
  }
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `bench-io-${randomUUID().slice(0, 8)}`;
  const port = await freePort();
  const simConfig = { endpoints: { 'openai.chat.completions': { latency: { kind: 'fixed', ms: LATENCY_MS } } } };
  log(`starting the upstream simulator on port ${port} (${LATENCY_MS} ms chat completions)`);
  const sim = await startChild(
    [SIM_MAIN],
    { UPSTREAM_SIM_PORT: String(port), UPSTREAM_SIM_CONFIG: JSON.stringify(simConfig) },
    (m) => m.msg === 'listening',
    'the upstream simulator',
  );
  const simUrl = `http://127.0.0.1:${port}`;
  const limit = CONCURRENCY / (LATENCY_MS / 1000);
  const results = {};
  try {
    for (const mode of Object.keys(MODES)) {
      const summary = await drainWith(mode, { redisUrl, prefix: `${prefix}-${mode}`, simUrl, log });
      results[mode] = summary;
      log(
        `${mode} (${MODES[mode]}): completed ${summary.completed}, failed ${summary.failed}; steady state ${summary.steadyJobsPerSecond.toFixed(1)} jobs/s ` +
          `over ${summary.steadyJobs} jobs; whole run ${summary.overallJobsPerSecond.toFixed(1)} jobs/s; simulator answered ${summary.upstreamCalls} calls; ` +
          `worker CPU ${summary.cpuMsPerJob.toFixed(2)} ms a job`,
      );
      if (summary.failed > 0) log(`warning: ${summary.failed} jobs failed: ${summary.firstFailure}`);
    }
    // Context: the client again with the upstream's latency spread evenly over 50-150 ms (the
    // same mean, so the same bound). A fixed latency keeps the 50 calls in lockstep: their answers
    // arrive together and each waits for the others' CPU before it goes out again.
    const configured = await fetch(`${simUrl}/_sim/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ endpoints: { 'openai.chat.completions': { latency: JITTERED_LATENCY } } }),
    });
    if (!configured.ok) throw new Error(`the simulator refused the jittered latency: ${configured.status} ${await configured.text()}`);
    results.jittered = await drainWith('client', { redisUrl, prefix: `${prefix}-jittered`, simUrl, log });
    log(`client with ${LATENCY_MS - 50}-${LATENCY_MS + 50} ms upstream latency: steady state ${results.jittered.steadyJobsPerSecond.toFixed(1)} jobs/s`);
  } finally {
    await stopChild(sim.child);
  }
  const { client, 'raw-http': rawHttp, loop } = results;
  const ratio = (summary) => Number((summary.steadyJobsPerSecond / limit).toFixed(3));
  emit({
    metric: 'io_vs_littles_law',
    value: Number(client.steadyJobsPerSecond.toFixed(1)),
    unit: 'jobs/s',
    baseline: limit,
    ratio: ratio(client),
    target: '>= 0.95',
    jobs: JOBS,
    concurrency: CONCURRENCY,
    latency_ms: LATENCY_MS,
    failed: client.failed,
    worker_cpu_ms_per_job: Number(client.cpuMsPerJob.toFixed(3)),
    peers: { raw_http_ratio: ratio(rawHttp), http_loop_ratio: ratio(loop) },
  });
  for (const [metric, summary, what] of [
    ['io_raw_http_vs_littles_law', rawHttp, MODES['raw-http']],
    ['io_http_loop_vs_littles_law', loop, MODES.loop],
  ]) {
    emit({
      metric,
      value: Number(summary.steadyJobsPerSecond.toFixed(1)),
      unit: 'jobs/s',
      baseline: limit,
      ratio: ratio(summary),
      what,
      worker_cpu_ms_per_job: Number(summary.cpuMsPerJob.toFixed(3)),
      failed: summary.failed,
    });
  }
  emit({
    metric: 'io_jittered_vs_littles_law',
    value: Number(results.jittered.steadyJobsPerSecond.toFixed(1)),
    unit: 'jobs/s',
    baseline: limit,
    ratio: ratio(results.jittered),
    what: `${MODES.client}, upstream latency uniform ${LATENCY_MS - 50}-${LATENCY_MS + 50} ms (same mean)`,
    worker_cpu_ms_per_job: Number(results.jittered.cpuMsPerJob.toFixed(3)),
    failed: results.jittered.failed,
  });
  emit({
    metric: 'event_loop_lag_p99_ms',
    value: Number(client.lagP99Ms.toFixed(2)),
    unit: 'ms',
    baseline: 20,
    ratio: Number((client.lagP99Ms / 20).toFixed(3)),
    process: 'worker (io)',
    sampling_resolution_ms: LAG_RESOLUTION_MS,
    lag_max_ms: Number(client.lagMaxMs.toFixed(2)),
  });
  for (const engine of BATCH_INSERT_ENGINES) await batchInsertSpeedup({ emit, log, engine });
}

/** The PostgreSQL figure is the one the io bench is judged by; the others show the same layer on MariaDB and SQLite. */
const BATCH_INSERT_ENGINES = [
  { engine: 'postgres', metric: 'batch_insert_speedup', url: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  { engine: 'mysql', metric: 'batch_insert_speedup_mysql', url: process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test' },
  { engine: 'sqlite', metric: 'batch_insert_speedup_sqlite', url: `sqlite:${path.join(os.tmpdir(), 'clipline-bench', 'io.db')}` },
];

/**
 * Frame metrics of a 10-minute video at 10 fps (6,000 rows) written the way the CPU workers
 * write them (multi-row INSERTs through AnalysisRepository) against one INSERT per row, in the
 * same run on the same database.
 */
async function batchInsertSpeedup({ emit, log, engine }) {
  const shared = await import('@clipline/shared');
  const settings = { url: engine.url, schema: `bench_io_${randomUUID().slice(0, 8)}`, poolSize: 2 };
  try {
    await shared.ensureDatabaseExists(settings);
  } catch (error) {
    log(`${engine.engine}: skipped, the database is not reachable (${error.message})`);
    return;
  }
  const db = shared.createDatabase(settings);
  try {
    await shared.migrateToLatest(db, settings.schema);
    const repository = new shared.AnalysisRepository(db);
    const videos = new shared.VideosRepository(db);
    const frames = Array.from({ length: 6000 }, (_, i) => ({
      frameIndex: i,
      timeSeconds: i / 10,
      luma: 100 + (i % 50),
      sharpness: 500 + i,
      motion: i % 7,
      contentScore: (i * 13) % 40,
      dhash: ((i * 2654435761) >>> 0).toString(16).padStart(16, '0'),
      histogram: Array.from({ length: 16 }, (_, b) => (b === i % 16 ? 1 : 0)),
    }));
    const newVideo = async () => {
      const id = randomUUID();
      await videos.create({ id, source: '/bench.mp4', title: null, steps: [] });
      return id;
    };
    const batched = async () => {
      const id = await newVideo();
      const started = performance.now();
      await repository.saveFrameMetrics(id, frames);
      return performance.now() - started;
    };
    const rowByRow = async () => {
      const id = await newVideo();
      const started = performance.now();
      for (const frame of frames) await repository.saveFrameMetrics(id, [frame]);
      return performance.now() - started;
    };
    await batched();
    await rowByRow();
    const batchMs = Math.min(await batched(), await batched());
    const rowMs = Math.min(await rowByRow(), await rowByRow());
    log(`${engine.engine}: 6000 frame rows: batched ${batchMs.toFixed(0)} ms, row by row ${rowMs.toFixed(0)} ms`);
    emit({
      metric: engine.metric,
      engine: engine.engine,
      value: Math.round(frames.length / (batchMs / 1000)),
      unit: 'rows/s',
      baseline: Math.round(frames.length / (rowMs / 1000)),
      baseline_unit: 'rows/s (one INSERT per row)',
      ratio: Number((rowMs / batchMs).toFixed(2)),
      rows: frames.length,
      rows_per_statement: repository.rowsPerInsert,
    });
  } finally {
    await db.destroy();
    await shared.dropDatabase(settings).catch(() => {});
  }
}

/** A chat completion through `node:http` alone: the request the client sends, the body read and parsed. */
function rawCaller(simUrl, apiKey) {
  const url = new URL('/v1/chat/completions', simUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const call = (clip) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `caption for clip ${clip}` }] });
      const request = http.request(
        url,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          const chunks = [];
          response.on('data', (chunk) => chunks.push(chunk));
          response.on('end', () => {
            if (response.statusCode !== 200) return reject(new Error(`simulator answered ${response.statusCode}`));
            const reply = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            resolve({ length: reply.choices[0].message.content.length });
          });
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  return { call, close: () => agent.destroy() };
}

/**
 * The worker process: runs the calls of its MODE (see MODES), times completions and samples its
 * own event loop and CPU over the steady state.
 */
async function ioWorker() {
  const { Worker } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const { Registry } = await import('@clipline/shared');
  const { createProviderClients, loadProviderSettings, pauseQueueIfRateLimited, toJobError } = await import(pathToFileURL(PROVIDERS).href);
  const mode = process.env.MODE;
  const expected = Number(process.env.JOBS);
  const redis = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
  const settings = loadProviderSettings({
    UPSTREAM_SIM_URL: process.env.SIM_URL,
    // On, but far above what 50 calls in flight can reach, so it never binds.
    OPENAI_RATE_LIMIT_PER_SECOND: '100000',
    OPENAI_RATE_LIMIT_BURST: '100000',
  });
  const clients = createProviderClients({ settings, redis, keyPrefix: process.env.PREFIX, registry: new Registry() });
  const raw = rawCaller(process.env.SIM_URL, settings.openai.apiKey);
  const callsSoFar = async () =>
    (await fetch(`${process.env.SIM_URL}/_sim/stats`).then((res) => res.json())).endpoints['openai.chat.completions']?.requests ?? 0;
  const callsBefore = await callsSoFar();
  const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  const completedAt = new Float64Array(expected);
  let completed = 0;
  let failed = 0;
  let firstFailure = '';
  let lagP99Ms = 0;
  let lagMaxMs = 0;
  let cpuAtSteady;
  let cpuSteadyMs = 0;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  const settle = () => {
    if (completed === Math.floor(expected * STEADY_FROM)) {
      lag.reset();
      lag.enable();
      cpuAtSteady = process.cpuUsage();
    }
    if (completed === Math.floor(expected * STEADY_TO)) {
      lag.disable();
      lagP99Ms = lag.percentile(99) / 1e6;
      lagMaxMs = lag.max / 1e6;
      const cpu = process.cpuUsage(cpuAtSteady);
      cpuSteadyMs = (cpu.user + cpu.system) / 1000;
    }
    if (completed + failed >= expected) finish();
  };
  const onCompleted = () => {
    completedAt[completed] = performance.now();
    completed += 1;
    settle();
  };
  const onFailed = (error) => {
    failed += 1;
    firstFailure ||= error.message;
    settle();
  };

  let worker;
  if (mode === 'loop') {
    process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < expected) {
          const clip = next++;
          await raw.call(clip).then(onCompleted, onFailed);
        }
      }),
    );
  } else {
    const call =
      mode === 'raw-http'
        ? (job) => raw.call(job.data.clip)
        : async (job) => {
            try {
              const reply = await clients.openai.chatCompletion({ messages: [{ role: 'user', content: `caption for clip ${job.data.clip}` }] });
              return { length: reply.content.length };
            } catch (error) {
              await pauseQueueIfRateLimited(worker, error);
              throw toJobError(error);
            }
          };
    worker = new Worker(QUEUE, call, {
      connection: { url: process.env.REDIS_URL, maxRetriesPerRequest: null },
      prefix: process.env.PREFIX,
      concurrency: CONCURRENCY,
    });
    worker.on('error', (error) => process.stderr.write(`worker error: ${error.message}\n`));
    worker.on('completed', onCompleted);
    worker.on('failed', (job, error) => {
      if (job && job.attemptsMade < (job.opts.attempts ?? 1)) return;
      onFailed(error);
    });
    await worker.waitUntilReady();
    process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  }
  await finished;
  const from = Math.floor(expected * STEADY_FROM);
  const to = Math.floor(expected * STEADY_TO) - 1;
  const steadyJobs = to - from;
  const steadySeconds = (completedAt[to] - completedAt[from]) / 1000;
  const overallSeconds = (completedAt[completed - 1] - completedAt[0]) / 1000;
  process.stdout.write(
    `${JSON.stringify({
      summary: true,
      completed,
      failed,
      firstFailure,
      steadyJobs,
      steadyJobsPerSecond: steadyJobs / steadySeconds,
      overallJobsPerSecond: (completed - 1) / overallSeconds,
      cpuMsPerJob: cpuSteadyMs / (steadyJobs + 1),
      lagP99Ms,
      lagMaxMs,
      upstreamCalls: (await callsSoFar()) - callsBefore,
    })}\n`,
  );
  const stop = async () => {
    await worker?.close();
    clients.close();
    raw.close();
    redis.disconnect();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--io-worker')) await ioWorker();
