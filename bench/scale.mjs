// `npm run bench -- scale`: what more worker processes add, on one Redis and one database.
//
// - io: the same I/O-bound workload drained by 1, 2 and 4 real worker-io processes
//   (apps/worker-io/dist/main.js, WORKER_IO_CONCURRENCY=25 each). The work is the public job
//   `sync/refresh-metadata`: each job reads its video, asks the upstream simulator's YouTube API
//   (fixed 200 ms latency, set through POST /_sim/config) through the breaker, the shared Redis
//   rate limiter (on, set far above what can be reached) and the ETag response cache, and
//   upserts the answer. Little's law caps one process at 25 / 0.2 s = 125 jobs/s.
//   io_scaling_efficiency_4 = throughput at 4 processes / (4 × throughput at 1); target ≥ 0.9.
// - cpu: the same analyses (analyze-video jobs on distinct generated videos) run by real
//   worker-cpu processes (apps/worker-cpu/dist/main.js) as 1 process × 2 pool threads and as
//   2 processes × 1 thread; cpu_process_vs_thread = videos/s of the processes / videos/s of
//   the threads; target ≥ 0.9. Samples alternate and the best of each counts.
//
// Every phase has its own queue prefix, and every CPU sample its own schema (a finished analysis
// of the same bytes would be reused otherwise). Redis is a redis-server of the bench's own
// (BENCH_REDIS_URL names another). Throughputs count the jobs finished between the first and
// last tenth of each run (job.finishedOn), so start-up and drain are left out.
//
// Waiting is not free: each io line carries the CPU milliseconds one job cost the workers, the
// simulator, Redis and the workers' PostgreSQL backends (found by their application name), the
// rate the machine's cores could sustain at that cost (cpu_ceiling_jobs_per_s), the share of the
// whole machine that was busy (every process of every user) and the load average, so a shortfall
// can be told apart: a design that stops scaling, or a machine out of CPU.
//
// BENCH_SCALE_PROFILE_DIR=<dir> runs every worker with --cpu-prof, its profile written there.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import {
  analyzeQueue,
  createDatabase,
  dropDatabase,
  ensureDatabaseExists,
  migrateToLatest,
  syncQueue,
  VideosRepository,
} from '../packages/shared/dist/index.js';
import { clearPrefix, freePort, processTreeCpu, stopNode } from './_support.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = {
  sim: path.join(ROOT, 'infra/upstream-sim/dist/main.js'),
  io: path.join(ROOT, 'apps/worker-io/dist/main.js'),
  cpu: path.join(ROOT, 'apps/worker-cpu/dist/main.js'),
};
/** A Redis to use instead of a private redis-server of the bench's own. */
const SHARED_REDIS_URL = process.env.BENCH_REDIS_URL;
const REDIS_SERVER = '/usr/bin/redis-server';
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const IO_PROCESSES = (process.env.BENCH_SCALE_IO_PROCESSES ?? '1,2,4').split(',').map(Number);
const IO_CONCURRENCY = 25;
const UPSTREAM_LATENCY_MS = 200;
/** Jobs per worker-io process in a phase: about 12 s of work at the Little's-law rate. */
const JOBS_PER_PROCESS = Number(process.env.BENCH_SCALE_JOBS_PER_PROCESS ?? 1500);
/** Linked videos the jobs refresh, round robin (enough that concurrent jobs rarely share one). */
const LINKED_VIDEOS = 2000;
const CPU_CONFIGURATIONS = [
  { label: '1 process x 2 threads', processes: 1, threads: 2 },
  { label: '2 processes x 1 thread', processes: 2, threads: 1 },
];
const CPU_VIDEOS = Number(process.env.BENCH_SCALE_CPU_VIDEOS ?? 8);
const CPU_SAMPLES = 2;
/** Completions before and after the steady state: the first and last 10% are warm-up and drain. */
const STEADY_FROM = 0.1;
const STEADY_TO = 0.9;

const execFileAsync = promisify(execFile);
const round = (value, places = 3) => Math.round(value * 10 ** places) / 10 ** places;
const loadAverage = () => os.loadavg().map((value) => round(value, 2));

/** CPU seconds a process used so far, its children (ffmpeg, the spawner) included; 0 once it is gone. */
function cpuSeconds(pid) {
  const { own, children } = processTreeCpu(pid);
  return own + children;
}

/** A node child with the given environment; keeps the tail of its output for error messages. */
function startNode(main, env) {
  const profile = process.env.BENCH_SCALE_PROFILE_DIR && main !== MAIN.sim ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_SCALE_PROFILE_DIR}`] : [];
  const child = spawn(process.execPath, [...profile, main], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk) => (output = (output + chunk).slice(-20_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { child, exited, output: () => output };
}

async function waitForHttp(url, started, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (started.child.exitCode !== null) throw new Error(`${what} exited with ${started.child.exitCode}:\n${started.output()}`);
    const ok = await fetch(url).then(
      (res) => res.ok,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${what} did not answer ${url} within ${timeoutMs} ms:\n${started.output()}`);
}

/** Starts `count` instances of an app and waits for each one's /healthz. */
async function startWorkers(app, count, env) {
  const variable = app === 'io' ? 'WORKER_IO_METRICS_PORT' : 'WORKER_CPU_METRICS_PORT';
  const workers = [];
  try {
    for (let index = 0; index < count; index++) {
      const port = await freePort();
      const worker = startNode(MAIN[app], { ...env, [variable]: String(port) });
      workers.push(worker);
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, worker, `worker-${app} #${index + 1}`);
    }
  } catch (error) {
    await Promise.all(workers.map(stopNode));
    throw error;
  }
  return workers;
}

/** A fresh migrated schema; `drop()` removes it. */
async function freshSchema(name) {
  const settings = { url: DATABASE_URL, schema: `bench_scale_${name}_${randomUUID().slice(0, 8)}`, poolSize: 4 };
  await ensureDatabaseExists(settings);
  const db = createDatabase(settings);
  await migrateToLatest(db, settings.schema);
  return {
    db,
    schema: settings.schema,
    drop: async () => {
      await db.destroy();
      await dropDatabase(settings).catch(() => {});
    },
  };
}

/** Waits until `count` jobs of the queue are completed or failed; returns the completed jobs. */
async function drained(queue, count, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await queue.getJobCounts('completed', 'failed');
    if (counts.failed > 0) {
      const [failed] = await queue.getJobs(['failed'], 0, 0);
      throw new Error(`${counts.failed} ${queue.name} jobs failed, e.g. ${failed?.id}: ${failed?.failedReason}`);
    }
    if (counts.completed >= count) break;
    if (Date.now() > deadline) throw new Error(`${queue.name}: ${counts.completed} of ${count} jobs completed after ${timeoutMs} ms`);
    await sleep(200);
  }
  return queue.getJobs(['completed'], 0, -1);
}

/** Jobs per second between the first and last tenth of the completions. */
function steadyRate(jobs) {
  const finished = jobs.map((job) => job.finishedOn).sort((a, b) => a - b);
  const from = Math.floor(finished.length * STEADY_FROM);
  const to = Math.floor(finished.length * STEADY_TO) - 1;
  return { rate: (to - from) / ((finished[to] - finished[from]) / 1000), jobs: to - from, seconds: (finished[to] - finished[from]) / 1000 };
}

/** The simulator, with YouTube answering after a fixed delay (set through its config API). */
async function startSimulator(log) {
  const port = await freePort();
  const sim = startNode(MAIN.sim, { UPSTREAM_SIM_PORT: String(port), LOG_LEVEL: 'warn' });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/_sim/config`, sim, 'the upstream simulator');
  const latency = { kind: 'fixed', ms: UPSTREAM_LATENCY_MS };
  const answer = await fetch(`${url}/_sim/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ endpoints: { 'youtube.videos.list': { latency } } }),
  });
  if (!answer.ok) throw new Error(`POST /_sim/config answered ${answer.status}: ${await answer.text()}`);
  log(`upstream simulator on port ${port}: YouTube answers after ${UPSTREAM_LATENCY_MS} ms`);
  return { sim, url };
}

async function youtubeRequests(simUrl) {
  const stats = await fetch(`${simUrl}/_sim/stats`).then((res) => res.json());
  return stats.endpoints['youtube.videos.list']?.requests ?? 0;
}

/**
 * Linked videos whose metadata was fetched just now, so the hourly sync schedule, which each
 * worker-io upserts at start, finds nothing due and adds no jobs of its own to the phase.
 */
async function seedLinkedVideos(db) {
  const ids = Array.from({ length: LINKED_VIDEOS }, () => randomUUID());
  const videos = new VideosRepository(db);
  for (let start = 0; start < ids.length; start += 500) {
    const chunk = ids.slice(start, start + 500);
    await videos.createMany(chunk.map((id, offset) => ({ id, source: '/bench.mp4', title: null, steps: [], youtubeId: youtubeIdOf(start + offset) })));
    await db
      .insertInto('external_metadata')
      .values(chunk.map((id, offset) => ({ video_id: id, provider: 'youtube', external_id: youtubeIdOf(start + offset), data: '{}' })))
      .execute();
  }
  return ids;
}

function youtubeIdOf(index) {
  return `bench${String(index).padStart(6, '0')}`;
}

/** Redis's own CPU seconds (INFO cpu): all of its clients', so a shared server counts others' load too. */
async function redisCpuSeconds(client) {
  const info = await client.info('cpu');
  const field = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** The application name of the workers' PostgreSQL sessions (PGAPPNAME). */
const POSTGRES_APPLICATION = 'clipline-bench-scale';

/** CPU seconds so far of each PostgreSQL backend serving the workers, by process id. */
async function postgresBackendCpu(db) {
  const { rows } = await sql`select pid from pg_stat_activity where application_name = ${POSTGRES_APPLICATION}`.execute(db);
  return new Map(rows.map((row) => [row.pid, cpuSeconds(row.pid)]));
}

/** Busy and total CPU time of the whole machine so far (/proc/stat), every process of every user included. */
function machineCpu() {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const total = ticks.reduce((sum, value) => sum + value, 0);
  // idle and iowait are the 4th and 5th counters.
  return { busy: total - ticks[3] - ticks[4], total };
}

/** CPU seconds used from now on by the workers, the simulator, Redis and the workers' database backends, and the machine's busy share. */
async function cpuMeter({ workers, simulator, redis, db }) {
  const workerStart = workers.map((worker) => cpuSeconds(worker.child.pid));
  const simStart = cpuSeconds(simulator.child.pid);
  const redisStart = await redisCpuSeconds(redis.client);
  const postgresStart = await postgresBackendCpu(db);
  const machineStart = machineCpu();
  return async () => {
    const postgresEnd = await postgresBackendCpu(db);
    const machineEnd = machineCpu();
    return {
      workers: workers.map((worker, index) => cpuSeconds(worker.child.pid) - workerStart[index]),
      simulator: cpuSeconds(simulator.child.pid) - simStart,
      redis: (await redisCpuSeconds(redis.client)) - redisStart,
      postgres: [...postgresEnd].reduce((sum, [pid, seconds]) => sum + seconds - (postgresStart.get(pid) ?? 0), 0),
      machineBusy: (machineEnd.busy - machineStart.busy) / (machineEnd.total - machineStart.total),
    };
  };
}

function refreshJobs(videoIds, count) {
  return Array.from({ length: count }, (_, index) => ({
    name: 'refresh-metadata',
    data: { videoId: videoIds[index % videoIds.length] },
    opts: { ...syncQueue.defaultJobOptions, jobId: `bench-${index}` },
  }));
}

/** One io phase: `processes` worker-io processes drain JOBS_PER_PROCESS × processes refreshes. */
async function ioPhase({ processes, videoIds, database, simulator, redis, log }) {
  const prefix = `{bench-scale-${randomUUID().slice(0, 8)}}`;
  const env = {
    REDIS_URL: redis.url,
    // Names the workers' database sessions, so the bench finds their backends and counts their CPU.
    PGAPPNAME: POSTGRES_APPLICATION,
    DATABASE_URL,
    DATABASE_SCHEMA: database.schema,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    STORAGE_DIR: path.join(os.tmpdir(), 'clipline-bench', 'scale-io-storage'),
    WORKER_IO_CONCURRENCY: String(IO_CONCURRENCY),
    METADATA_SYNC_INTERVAL_SECONDS: '86400',
    UPSTREAM_SIM_URL: simulator.url,
    // On, as in production, but far above what 100 calls in flight can reach, so it never binds.
    YOUTUBE_RATE_LIMIT_PER_SECOND: '100000',
    YOUTUBE_RATE_LIMIT_BURST: '100000',
  };
  const jobs = refreshJobs(videoIds, JOBS_PER_PROCESS * processes);
  const queue = new Queue(syncQueue.name, { connection: redis.client, prefix });
  const workers = await startWorkers('io', processes, env);
  try {
    log(`io: ${processes} worker-io process(es), ${jobs.length} refresh-metadata jobs`);
    const requestsBefore = await youtubeRequests(simulator.url);
    const cpuUsed = await cpuMeter({ workers, simulator: simulator.sim, redis, db: database.db });
    for (let start = 0; start < jobs.length; start += 1000) await queue.addBulk(jobs.slice(start, start + 1000));
    const steady = steadyRate(await drained(queue, jobs.length, 180_000));
    const cpu = await cpuUsed();
    const upstreamCalls = (await youtubeRequests(simulator.url)) - requestsBefore;
    log(
      `io ${processes}: ${steady.rate.toFixed(1)} jobs/s steady (${steady.jobs} jobs in ${steady.seconds.toFixed(1)} s); ` +
        `CPU s: workers ${cpu.workers.map((seconds) => seconds.toFixed(1)).join(' + ')}, simulator ${cpu.simulator.toFixed(1)}, redis ${cpu.redis.toFixed(1)}, ` +
        `postgres ${cpu.postgres.toFixed(1)}; machine ${Math.round(cpu.machineBusy * 100)}% busy; ` +
        `${upstreamCalls} upstream calls; load ${loadAverage().join(' ')}`,
    );
    return { processes, jobs: jobs.length, rate: steady.rate, cpu, upstreamCalls, load: loadAverage() };
  } finally {
    await Promise.all(workers.map(stopNode));
    await queue.close();
    await clearPrefix(redis.client, prefix);
  }
}

/**
 * CPU milliseconds one job cost each party in a phase, and the rate this machine's cores could
 * sustain at that cost if nothing else ran: the ceiling the CPU puts on the throughput.
 */
function cpuPerJob(phase) {
  const perJob = (seconds) => round((seconds * 1000) / phase.jobs, 2);
  const cost = {
    workers: perJob(phase.cpu.workers.reduce((sum, seconds) => sum + seconds, 0)),
    simulator: perJob(phase.cpu.simulator),
    redis: perJob(phase.cpu.redis),
    postgres: perJob(phase.cpu.postgres),
  };
  const total = cost.workers + cost.simulator + cost.redis + cost.postgres;
  return { cost, ceiling: Math.round((os.availableParallelism() * 1000) / total) };
}

function emitIoResults(emit, phases) {
  const one = phases[0];
  for (const phase of phases) {
    const limit = (phase.processes * IO_CONCURRENCY * 1000) / UPSTREAM_LATENCY_MS;
    const { cost, ceiling } = cpuPerJob(phase);
    emit({
      metric: `io_throughput_${phase.processes}`,
      value: round(phase.rate, 1),
      unit: 'jobs/s',
      baseline: limit,
      baseline_unit: "jobs/s (Little's law: processes x concurrency / latency)",
      ratio: round(phase.rate / limit),
      processes: phase.processes,
      concurrency: IO_CONCURRENCY,
      latency_ms: UPSTREAM_LATENCY_MS,
      jobs: phase.jobs,
      upstream_calls: phase.upstreamCalls,
      cpu_ms_per_job: cost,
      cpu_ceiling_jobs_per_s: ceiling,
      machine_cpu_busy: round(phase.cpu.machineBusy, 2),
      load: phase.load,
    });
  }
  for (const phase of phases.slice(1)) {
    emit({
      metric: `io_scaling_efficiency_${phase.processes}`,
      value: round(phase.rate, 1),
      unit: 'jobs/s',
      baseline: round(phase.processes * one.rate, 1),
      baseline_unit: `jobs/s (${phase.processes} x one process)`,
      ratio: round(phase.rate / (phase.processes * one.rate)),
      target: 0.9,
      load: phase.load,
    });
  }
}

async function ioScaling({ emit, log, redis }) {
  const simulator = await startSimulator(log);
  const database = await freshSchema('io');
  try {
    const videoIds = await seedLinkedVideos(database.db);
    const phases = [];
    for (const processes of IO_PROCESSES) phases.push(await ioPhase({ processes, videoIds, database, simulator, redis, log }));
    emitIoResults(emit, phases);
  } finally {
    await stopNode(simulator.sim);
    await database.drop();
  }
}

/**
 * CPU_VIDEOS videos of 20 s at 640x360 with sound, generated once and cached; the hue differs per
 * video, so no two share bytes and no analysis is reused.
 */
async function cpuVideos(log) {
  const dir = path.join(os.tmpdir(), 'clipline-bench');
  await mkdir(dir, { recursive: true });
  const files = [];
  for (let index = 0; index < CPU_VIDEOS; index++) {
    const file = path.join(dir, `scale-cpu-${index}.mp4`);
    files.push(file);
    if (existsSync(file)) continue;
    log(`generating ${file} (once)`);
    const partial = `${file}.part.mp4`;
    const source = `testsrc2=size=640x360:rate=30:duration=20`;
    const audio = `sine=frequency=${220 + 20 * index}:sample_rate=48000:duration=20`;
    const filter = `hue=H=${(0.7 * index).toFixed(2)}+2*PI*floor(t/5)/4,format=yuv420p`;
    const inputs = ['-f', 'lavfi', '-i', source, '-f', 'lavfi', '-i', audio];
    await execFileAsync('ffmpeg', [
      '-v',
      'error',
      '-y',
      ...inputs,
      '-vf',
      filter,
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-g',
      '60',
      '-c:a',
      'aac',
      '-shortest',
      partial,
    ]);
    await rename(partial, file);
  }
  return files;
}

/** Video rows, stored sources and analyze-video payloads for one CPU sample. */
async function cpuJobs(db, storageDir, files) {
  const videos = new VideosRepository(db);
  const jobs = [];
  for (const file of files) {
    const id = randomUUID();
    const storageKey = `videos/${id}/source.mp4`;
    await mkdir(path.join(storageDir, 'videos', id), { recursive: true });
    await copyFile(file, path.join(storageDir, storageKey));
    await videos.create({ id, source: file, title: null, steps: ['ingest', 'analyze', 'persist'] });
    const source = { storageKey, sizeBytes: (await stat(file)).size, container: 'mp4' };
    jobs.push({ name: 'analyze-video', data: { videoId: id, source }, opts: { ...analyzeQueue.defaultJobOptions, jobId: `${id}-analyze` } });
  }
  return jobs;
}

/** One CPU sample: the configuration's processes analyse every video; resolves with videos/s. */
async function cpuSample({ configuration, files, redis, log }) {
  const database = await freshSchema('cpu');
  const storageDir = await mkdtemp(path.join(os.tmpdir(), 'clipline-bench-scale-'));
  const prefix = `{bench-scale-${randomUUID().slice(0, 8)}}`;
  const queue = new Queue(analyzeQueue.name, { connection: redis.client, prefix });
  let workers = [];
  try {
    const jobs = await cpuJobs(database.db, storageDir, files);
    const env = {
      REDIS_URL: redis.url,
      DATABASE_URL,
      DATABASE_SCHEMA: database.schema,
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      STORAGE_DIR: storageDir,
      CPU_POOL_THREADS: String(configuration.threads),
      WORKER_CPU_CONCURRENCY: String(configuration.threads),
    };
    workers = await startWorkers('cpu', configuration.processes, env);
    const cpuBefore = workers.map((worker) => cpuSeconds(worker.child.pid));
    const enqueuedAt = Date.now();
    await queue.addBulk(jobs);
    const completed = await drained(queue, jobs.length, 600_000);
    const seconds = (Math.max(...completed.map((job) => job.finishedOn)) - enqueuedAt) / 1000;
    const cpu = workers.map((worker, index) => cpuSeconds(worker.child.pid) - cpuBefore[index]);
    log(
      `cpu ${configuration.label}: ${jobs.length} videos in ${seconds.toFixed(2)} s; CPU ${cpu.map((s) => s.toFixed(1)).join(' + ')} s; load ${loadAverage().join(' ')}`,
    );
    return { rate: jobs.length / seconds, seconds, cpuSeconds: cpu.reduce((sum, s) => sum + s, 0) };
  } finally {
    await Promise.all(workers.map(stopNode));
    await queue.close();
    await clearPrefix(redis.client, prefix);
    await database.drop();
    await rm(storageDir, { recursive: true, force: true });
  }
}

async function cpuProcessVsThread({ emit, log, redis }) {
  const files = await cpuVideos(log);
  const samples = new Map(CPU_CONFIGURATIONS.map((configuration) => [configuration.label, []]));
  // Interleaved, so a burst of load from elsewhere does not land on one configuration only.
  for (let sample = 0; sample < CPU_SAMPLES; sample++) {
    for (const configuration of CPU_CONFIGURATIONS) samples.get(configuration.label).push(await cpuSample({ configuration, files, redis, log }));
  }
  // Other load only ever slows a sample down: the best of each configuration counts.
  const best = (label) => samples.get(label).reduce((top, sample) => (sample.rate > top.rate ? sample : top));
  const [threads, processes] = CPU_CONFIGURATIONS.map((configuration) => best(configuration.label));
  emit({
    metric: 'cpu_process_vs_thread',
    value: round(processes.rate, 3),
    unit: 'videos/s (2 processes x 1 thread)',
    baseline: round(threads.rate, 3),
    baseline_unit: 'videos/s (1 process x 2 threads)',
    ratio: round(processes.rate / threads.rate),
    target: 0.9,
    videos: files.length,
    video: '20 s 640x360 30 fps H.264 + AAC',
    samples: Object.fromEntries([...samples].map(([label, list]) => [label, list.map((sample) => round(sample.seconds, 2))])),
    cpu_seconds: Object.fromEntries([...samples].map(([label, list]) => [label, list.map((sample) => round(sample.cpuSeconds, 1))])),
    load: loadAverage(),
  });
}

/**
 * The Redis every phase uses: a redis-server of the bench's own (AOF everysec and noeviction, as
 * infra/redis.conf), so other work on the machine's shared Redis neither slows the phases nor
 * counts in Redis's CPU figures; BENCH_REDIS_URL names another instead.
 */
async function startRedis(log) {
  const connect = (url) => new Redis(url, { maxRetriesPerRequest: null });
  if (SHARED_REDIS_URL || !existsSync(REDIS_SERVER)) {
    const url = SHARED_REDIS_URL ?? 'redis://127.0.0.1:6379';
    log(`using the Redis at ${url}`);
    const client = connect(url);
    return { url, client, stop: async () => client.disconnect() };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-bench-redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', ''];
  const server = spawn(REDIS_SERVER, [...args, '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const client = connect(url);
  client.on('error', () => {});
  const deadline = Date.now() + 15_000;
  while ((await client.ping().catch(() => '')) !== 'PONG') {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`redis-server on port ${port} did not start`);
    await sleep(100);
  }
  log(`private redis-server on port ${port}`);
  const exited = new Promise((resolve) => server.once('exit', resolve));
  return {
    url,
    client,
    stop: async () => {
      client.disconnect();
      server.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function run({ emit, log }) {
  for (const file of Object.values(MAIN)) {
    if (!existsSync(file)) throw new Error(`${file} is missing: build first (npm run bench builds; or npx tsc -b)`);
  }
  log(`load average before: ${loadAverage().join(' ')} (${os.availableParallelism()} cores)`);
  const redis = await startRedis(log);
  try {
    const parts = (process.env.BENCH_SCALE_PARTS ?? 'io,cpu').split(',');
    if (parts.includes('io')) await ioScaling({ emit, log, redis });
    if (parts.includes('cpu')) await cpuProcessVsThread({ emit, log, redis });
  } finally {
    await redis.stop();
  }
}
