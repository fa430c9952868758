// `npm run bench -- pipeline`: the whole pipeline near its floor.
//
// N distinct 60 s 640x360 videos (the bbb fixture re-muxed with a different metadata tag each, so
// no two share bytes and no analysis is reused; N = BENCH_PIPELINE_VIDEOS, default 6) are
// submitted at once through the real producer's HTTP API (`POST /v1/videos`, default options:
// 3 clips, 9:16) to real producer, worker-io and worker-cpu processes (built dist), the AI steps
// against the upstream simulator at zero latency, on a throwaway PostgreSQL schema and a queue
// prefix of the run's own on the shared Redis. The run lasts until every video is `completed`.
//
// The floor, measured in the same run once the apps are stopped: plain ffmpeg decoding each video
// at the analysis settings (ANALYZE_FPS 10, width 160, the same filter chain as analysis, as
// bench/analyze.mjs's baseline) and plain ffmpeg encoding every clip the pipeline chose (spans
// read back through the API; centre crop of the same size, libx264 veryfast CRF 20, AAC 128k, as
// bench/render.mjs's plain encode), each video's decode then its clips' encodes, at worker-cpu's
// own parallelism: at most `analyze` concurrency decodes and `render` concurrency encodes at once.
//
// - pipeline_vs_floor: pipeline wall (first submit to last completedAt) / floor wall; target ≤ 1.5.
// - videos_per_minute: N / pipeline wall (60 s 360p sources, this machine).
// - video_latency_p50_s / _p95_s: one video's submit to its completedAt.
//
// The pipeline line carries a profile from the jobs' timestamps: per step its queue wait and run
// time, per video the time no step of it ran, how busy worker-cpu's slots were, and the CPU
// seconds of each process (children such as ffmpeg included) and of the floor. Progress goes to
// stderr. Processes, schema, Redis keys and temporary files are removed even when a step fails.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { collectJobs, profile, quantile, round } from './_pipeline-profile.mjs';
import { clearPrefix, freePort, processTreeCpu, stopNode } from './_support.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = await import(new URL('../packages/shared/dist/index.js', import.meta.url).href);
const cpuDist = new URL('../apps/worker-cpu/dist/', import.meta.url);
const { setToolSpawning, spawnTool, expectSuccess, probe } = await import(new URL('analysis/ffmpeg.js', cpuDist).href);
// FFMPEG_SPAWNING=direct|helper: how this process starts its ffmpeg runs, as worker-cpu would with it.
setToolSpawning(process.env.FFMPEG_SPAWNING ?? 'helper');
const { sampleSize, samplingFilter } = await import(new URL('analysis/frame-sampler.js', cpuDist).href);
const { cropGeometry } = await import(new URL('render/crop-geometry.js', cpuDist).href);
const { CLIP_AUDIO } = await import(new URL('render/clip-sampler.js', cpuDist).href);
const { cpuConcurrency } = await import(new URL('cpu-worker-config.js', cpuDist).href);

const MAIN = {
  sim: path.join(ROOT, 'infra/upstream-sim/dist/main.js'),
  producer: path.join(ROOT, 'apps/producer/dist/main.js'),
  io: path.join(ROOT, 'apps/worker-io/dist/main.js'),
  cpu: path.join(ROOT, 'apps/worker-cpu/dist/main.js'),
};
const VIDEOS = Number(process.env.BENCH_PIPELINE_VIDEOS ?? 6);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const FIXTURE = path.join(process.env.CLIPLINE_FIXTURES_DIR ?? path.resolve(ROOT, '../shared/fixtures'), 'video', 'bbb_h264_aac_60s.mp4');
const API_KEY = shared.DEV_API_KEY;
/** The defaults of ANALYZE_FPS / ANALYZE_WIDTH and RENDER_PRESET / RENDER_CRF. */
const ANALYSIS = { fps: 10, width: 160 };
const PRESET = 'veryfast';
const CRF = 20;
const TARGET = 1.5;
const TIMEOUT_MS = Number(process.env.BENCH_PIPELINE_TIMEOUT_SECONDS ?? 1200) * 1000;
const POSTGRES_APPLICATION = `clipline-bench-pipeline-${randomUUID().slice(0, 8)}`;
const tools = { ffmpegPath: 'ffmpeg', ffprobePath: 'ffprobe' };
const execFileAsync = promisify(execFile);

/** CPU seconds of a process so far, its children (ffmpeg, the spawner) included; 0 once it is gone. */
function cpuSeconds(pid = process.pid) {
  const { own, children } = cpuSplit(pid);
  return own + children;
}

/** CPU seconds of a process itself (all its threads) and of its children (see processTreeCpu), apart. */
const cpuSplit = processTreeCpu;

/** Busy and total jiffies of the whole machine (/proc/stat). */
function machineCpu() {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const total = ticks.reduce((sum, value) => sum + value, 0);
  return { busy: total - ticks[3] - ticks[4], total };
}

const loadAverage = () => os.loadavg().map((value) => round(value, 2));

function startNode(name, main, env, execArgs = []) {
  const child = spawn(process.execPath, [...execArgs, main], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk) => (output = (output + chunk).slice(-20_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { name, child, exited, output: () => output };
}

async function waitForHttp(url, app, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (app.child.exitCode !== null) throw new Error(`${app.name} exited with ${app.child.exitCode}:\n${app.output()}`);
    if (
      await fetch(url).then(
        (res) => res.ok,
        () => false,
      )
    )
      return;
    await sleep(100);
  }
  throw new Error(`${app.name} did not answer ${url} within ${timeoutMs} ms:\n${app.output()}`);
}

/** N copies of the fixture, each re-muxed (no re-encode) with a tag of its own, so every file's bytes differ. */
async function distinctVideos(dir, runId, log) {
  let source = FIXTURE;
  if (!existsSync(source)) {
    source = path.join(dir, 'generated-360p-60s.mp4');
    log(`${FIXTURE} is missing: generating 60 s of 640x360 H.264 + AAC`);
    const inputs = ['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=24:duration=60', '-f', 'lavfi', '-i', 'sine=frequency=330:sample_rate=48000:duration=60'];
    const encode = ['-vf', 'hue=H=2*PI*floor(t/7)/5,format=yuv420p', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-g', '48', '-c:a', 'aac'];
    await execFileAsync('ffmpeg', ['-v', 'error', '-y', ...inputs, ...encode, '-shortest', source]);
  }
  const files = [];
  for (let index = 0; index < VIDEOS; index++) {
    const file = path.join(dir, `video-${index}.mp4`);
    await execFileAsync('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-i',
      source,
      '-map',
      '0',
      '-c',
      'copy',
      '-metadata',
      `comment=bench-pipeline ${runId} ${index}`,
      file,
    ]);
    files.push(file);
  }
  return { source, files };
}

/** A fresh, migrated PostgreSQL schema; `drop()` removes it. */
async function freshSchema(runId) {
  const settings = { url: DATABASE_URL, schema: `bench_pipe_${runId}`, poolSize: 2 };
  await shared.ensureDatabaseExists(settings);
  const db = shared.createDatabase(settings);
  try {
    await shared.migrateToLatest(db, settings.schema);
  } catch (error) {
    await db.destroy();
    await shared.dropDatabase(settings).catch(() => {});
    throw error;
  }
  return {
    db,
    schema: settings.schema,
    drop: async () => {
      await db.destroy();
      await shared.dropDatabase(settings).catch(() => {});
    },
  };
}

/** The simulator, the producer and both workers; pushes each onto `apps` as it starts. */
async function startApps({ schema, prefix, storageDir }, apps, log) {
  const simPort = await freePort();
  // BENCH_PIPELINE_PROF=<dir>: the simulator and the workers write CPU profiles there (every thread) when they stop.
  const profile = (name) => (process.env.BENCH_PIPELINE_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_PIPELINE_PROF, name)}`] : []);
  const sim = startNode('upstream-sim', MAIN.sim, { UPSTREAM_SIM_PORT: String(simPort), LOG_LEVEL: 'warn' }, profile('upstream-sim'));
  apps.push(sim);
  const simUrl = `http://127.0.0.1:${simPort}`;
  await waitForHttp(`${simUrl}/_sim/config`, sim);
  const [port, producerMetrics, ioMetrics, cpuMetrics] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const env = {
    REDIS_URL,
    DATABASE_URL,
    DATABASE_SCHEMA: schema,
    QUEUE_PREFIX: prefix,
    STORAGE_DIR: storageDir,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
    PRODUCER_METRICS_PORT: String(producerMetrics),
    WORKER_IO_METRICS_PORT: String(ioMetrics),
    WORKER_CPU_METRICS_PORT: String(cpuMetrics),
    UPSTREAM_SIM_URL: simUrl,
    METADATA_SYNC_INTERVAL_SECONDS: '86400',
    // FFMPEG_SPAWNING=direct|helper: how worker-cpu starts ffmpeg (its default when unset).
    ...(process.env.FFMPEG_SPAWNING ? { FFMPEG_SPAWNING: process.env.FFMPEG_SPAWNING } : {}),
    // Names the apps' database sessions, so their PostgreSQL backends' CPU can be counted.
    PGAPPNAME: POSTGRES_APPLICATION,
  };
  const producer = startNode('producer', MAIN.producer, env);
  const io = startNode('worker-io', MAIN.io, env, profile('worker-io'));
  const cpu = startNode('worker-cpu', MAIN.cpu, env, profile('worker-cpu'));
  apps.push(producer, io, cpu);
  await Promise.all([
    waitForHttp(`http://127.0.0.1:${port}/readyz`, producer),
    waitForHttp(`http://127.0.0.1:${ioMetrics}/healthz`, io),
    waitForHttp(`http://127.0.0.1:${cpuMetrics}/healthz`, cpu),
  ]);
  log(`simulator, producer (:${port}), worker-io and worker-cpu up; schema ${schema}, prefix ${prefix}`);
  return { producerUrl: `http://127.0.0.1:${port}`, processes: { producer, io, cpu, sim } };
}

async function api(baseUrl, method, route, body) {
  const res = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/** Polls the video list until every video is completed; throws on a failure or the timeout. */
async function untilCompleted(baseUrl, ids, log) {
  const deadline = Date.now() + TIMEOUT_MS;
  let reported = -1;
  for (;;) {
    const { items } = await api(baseUrl, 'GET', `/v1/videos?limit=${Math.max(ids.length, 10)}`);
    const mine = items.filter((item) => ids.includes(item.id));
    const broken = mine.find((item) => item.status === 'failed' || item.status === 'cancelled');
    if (broken) throw new Error(`video ${broken.id} ${broken.status}: ${broken.error}`);
    const done = mine.filter((item) => item.status === 'completed');
    if (done.length !== reported) {
      reported = done.length;
      log(`${done.length}/${ids.length} completed; progress ${mine.map((item) => item.progress).join(' ')}; load ${loadAverage().join(' ')}`);
    }
    if (done.length === ids.length) return done;
    if (Date.now() > deadline) throw new Error(`${done.length} of ${ids.length} videos completed after ${TIMEOUT_MS} ms`);
    await sleep(250);
  }
}

/** Submits every file at once and waits for all of them; returns the videos with their clips. */
async function runPipeline(producerUrl, files, log) {
  const started = Date.now();
  const submitted = await Promise.all(
    files.map(async (file) => {
      const submittedAt = Date.now();
      const { id } = await api(producerUrl, 'POST', '/v1/videos', { source: file, title: path.basename(file) });
      return { id, file, submittedAt };
    }),
  );
  log(`submitted ${files.length} videos in ${Date.now() - started} ms`);
  const done = await untilCompleted(
    producerUrl,
    submitted.map((video) => video.id),
    log,
  );
  const completedAt = new Map(done.map((item) => [item.id, Date.parse(item.completedAt)]));
  const videos = [];
  for (const video of submitted) {
    const detail = await api(producerUrl, 'GET', `/v1/videos/${video.id}`);
    videos.push({ ...video, completedAt: completedAt.get(video.id), metadata: detail.metadata, clips: detail.clips ?? [] });
  }
  return { started, videos };
}

/** A FIFO semaphore of `slots`. */
function semaphore(slots) {
  const waiting = [];
  let free = slots;
  return async (work) => {
    if (free > 0) free--;
    else await new Promise((resolve) => waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}

/** Plain ffmpeg decoding one video's frames at the analysis settings, to nothing (bench/analyze.mjs's baseline). */
async function plainDecode(file, facts) {
  const size = sampleSize(facts.width, facts.height, ANALYSIS.width);
  const filter = samplingFilter(ANALYSIS.fps, size.width, size.height);
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', '-i', file, '-map', '0:v:0', '-an', '-sn', '-dn', '-vf', filter, '-f', 'null', '-'];
  await expectSuccess(await spawnTool(tools.ffmpegPath, args), 'plain decode failed');
}

/** Plain ffmpeg making one clip: same span, crop size, codecs and settings (bench/render.mjs's plain encode). */
async function plainEncode(file, facts, clip, target) {
  const { width, height } = cropGeometry(facts.width, facts.height, clip.aspect);
  const span = ['-ss', clip.startSeconds.toFixed(3), '-t', (clip.endSeconds - clip.startSeconds).toFixed(3)];
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...span, '-i', file];
  args.push('-vf', `crop=${width}:${height}:(iw-${width})/2:(ih-${height})/2,setsar=1,format=yuv420p`);
  args.push('-c:v', 'libx264', '-preset', PRESET, '-crf', String(CRF), ...(facts.hasAudio ? CLIP_AUDIO : ['-an']));
  args.push('-movflags', '+faststart', '-f', 'mp4', target);
  await expectSuccess(await spawnTool(tools.ffmpegPath, args), 'plain encode failed');
}

/**
 * The floor: each video decoded, then its clips encoded, all videos at once, with at most
 * `analyze` decodes and `render` encodes running at a time (worker-cpu's concurrency).
 */
async function runFloor(videos, concurrency, outDir) {
  const decodeSlot = semaphore(concurrency.analyze);
  const encodeSlot = semaphore(concurrency.render);
  const seconds = { decode: 0, encode: 0 };
  const timed = async (kind, work) => {
    const at = performance.now();
    await work();
    seconds[kind] += (performance.now() - at) / 1000;
  };
  const cpuBefore = cpuSeconds();
  const started = performance.now();
  await Promise.all(
    videos.map(async (video, index) => {
      const facts = await probe(tools, video.file);
      await decodeSlot(() => timed('decode', () => plainDecode(video.file, facts)));
      await Promise.all(
        video.clips.map((clip, k) =>
          encodeSlot(() => timed('encode', () => plainEncode(video.file, facts, clip, path.join(outDir, `floor-${index}-${k}.mp4`)))),
        ),
      );
    }),
  );
  return { wall: (performance.now() - started) / 1000, cpu: cpuSeconds() - cpuBefore, seconds };
}

/** The analyze and render concurrency worker-cpu derives for itself in this environment. */
function workerConcurrency() {
  const settings = shared.loadConfig({});
  return cpuConcurrency(settings.cpuPoolThreads, settings.workerCpuConcurrency, shared.defaultRenderConcurrency(shared.usableCores()));
}

function emitResults(emit, { pipeline, floor, concurrency, cpu, prof, source }) {
  const wall = (Math.max(...pipeline.videos.map((video) => video.completedAt)) - pipeline.started) / 1000;
  const latencies = pipeline.videos.map((video) => (video.completedAt - video.submittedAt) / 1000);
  const clips = pipeline.videos.reduce((sum, video) => sum + video.clips.length, 0);
  const clipSeconds = pipeline.videos.flatMap((video) => video.clips.map((clip) => clip.endSeconds - clip.startSeconds));
  const common = { videos: pipeline.videos.length, video: `${path.basename(source)} 640x360 60 s, re-muxed per video`, concurrency, load: loadAverage() };
  emit({
    metric: 'pipeline_vs_floor',
    value: round(wall),
    unit: 's',
    baseline: round(floor.wall),
    baseline_unit: 's (plain ffmpeg: decode at the analysis settings + encode the same clips, same parallelism)',
    ratio: round(wall / floor.wall),
    target: TARGET,
    clips,
    clip_seconds_total: round(
      clipSeconds.reduce((sum, value) => sum + value, 0),
      1,
    ),
    floor_task_seconds: { decode: round(floor.seconds.decode, 2), encode: round(floor.seconds.encode, 2) },
    cpu_seconds: { ...cpu, floor_ffmpeg: round(floor.cpu, 1) },
    profile: prof,
    ...common,
  });
  emit({
    metric: 'videos_per_minute',
    value: round((pipeline.videos.length * 60) / wall, 2),
    unit: 'videos/min',
    baseline: round((pipeline.videos.length * 60) / floor.wall, 2),
    baseline_unit: 'videos/min (floor)',
    ratio: round(floor.wall / wall),
    ...common,
  });
  for (const [metric, q] of [
    ['video_latency_p50_s', 0.5],
    ['video_latency_p95_s', 0.95],
  ]) {
    emit({
      metric,
      value: round(quantile(latencies, q), 2),
      unit: 's',
      baseline: round(floor.wall, 2),
      baseline_unit: 's (floor wall of the whole batch)',
      ratio: round(quantile(latencies, q) / floor.wall),
      samples: latencies.map((value) => round(value, 2)),
      ...common,
    });
  }
}

/** CPU seconds so far of each PostgreSQL backend serving the apps (PGAPPNAME), by process id. */
async function postgresBackendCpu(db) {
  const { rows } = await sql`select pid from pg_stat_activity where application_name = ${POSTGRES_APPLICATION}`.execute(db);
  return new Map(rows.map((row) => [row.pid, cpuSeconds(row.pid)]));
}

/**
 * CPU seconds each app (children included) and the apps' PostgreSQL backends used, and the
 * machine's busy share, between this call and the returned function's.
 */
async function cpuMeter(processes, db) {
  const before = Object.fromEntries(Object.entries(processes).map(([name, app]) => [name, cpuSeconds(app.child.pid)]));
  const splitBefore = { cpu: cpuSplit(processes.cpu.child.pid), io: cpuSplit(processes.io.child.pid) };
  const postgresBefore = await postgresBackendCpu(db);
  const machine = machineCpu();
  return async () => {
    const after = machineCpu();
    const postgresAfter = await postgresBackendCpu(db);
    const postgres = [...postgresAfter].reduce((sum, [pid, seconds]) => sum + seconds - (postgresBefore.get(pid) ?? 0), 0);
    const used = Object.fromEntries(Object.entries(processes).map(([name, app]) => [name, round(cpuSeconds(app.child.pid) - before[name], 1)]));
    // The workers apart: their Node threads (main, pool) and their ffmpeg children.
    const split = {};
    for (const name of ['cpu', 'io']) {
      const after = cpuSplit(processes[name].child.pid);
      split[`${name}_node`] = round(after.own - splitBefore[name].own, 1);
      split[`${name}_ffmpeg`] = round(after.children - after.liveOwn - (splitBefore[name].children - splitBefore[name].liveOwn), 1);
      // Processes still running at the end: worker-cpu's spawner (FFMPEG_SPAWNING=helper).
      split[`${name}_helper`] = round(after.liveOwn - splitBefore[name].liveOwn, 1);
    }
    return {
      ...used,
      ...split,
      postgres: round(postgres, 1),
      machine_busy_share: round((after.busy - machine.busy) / (after.total - machine.total), 2),
    };
  };
}

export async function run({ emit, log }) {
  for (const file of Object.values(MAIN)) {
    if (!existsSync(file)) throw new Error(`${file} is missing: build first (npm run bench builds; or npx tsc -b)`);
  }
  const runId = randomUUID().replace(/-/g, '').slice(0, 8);
  const prefix = `{bench-pipe-${runId}}`;
  const concurrency = workerConcurrency();
  log(
    `load average before: ${loadAverage().join(' ')} (${os.availableParallelism()} cores); worker-cpu analyze ${concurrency.analyze}, render ${concurrency.render}`,
  );
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clipline-bench-pipeline-'));
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  redis.on('error', () => {});
  const apps = [];
  let database;
  try {
    const { source, files } = await distinctVideos(tmp, runId, log);
    database = await freshSchema(runId);
    const storageDir = path.join(tmp, 'storage');
    await mkdir(storageDir, { recursive: true });
    const { producerUrl, processes } = await startApps({ schema: database.schema, prefix, storageDir }, apps, log);
    const meter = await cpuMeter(processes, database.db);
    const pipeline = await runPipeline(producerUrl, files, log);
    const cpu = await meter();
    const to = Math.max(...pipeline.videos.map((video) => video.completedAt));
    const jobs = await collectJobs(
      redis,
      prefix,
      shared.allQueues.map((queue) => queue.name),
    );
    const prof = profile(jobs, pipeline.videos, { from: pipeline.started, to, concurrency });
    log(`pipeline: ${files.length} videos in ${((to - pipeline.started) / 1000).toFixed(1)} s; CPU s ${JSON.stringify(cpu)}`);
    // The apps stop before the floor runs, so nothing of theirs competes with it.
    await Promise.all(apps.map(stopNode));
    const outDir = path.join(tmp, 'floor');
    await mkdir(outDir, { recursive: true });
    const floor = await runFloor(pipeline.videos, concurrency, outDir);
    log(
      `floor: ${floor.wall.toFixed(1)} s (decode ${floor.seconds.decode.toFixed(1)} s + encode ${floor.seconds.encode.toFixed(1)} s of ffmpeg); load ${loadAverage().join(' ')}`,
    );
    emitResults(emit, { pipeline, floor, concurrency, cpu, prof, source });
  } finally {
    await Promise.all(apps.map(stopNode));
    await clearPrefix(redis, prefix).catch((error) => log(`clearing ${prefix}: ${error.message}`));
    redis.disconnect();
    await database?.drop();
    await rm(tmp, { recursive: true, force: true });
  }
}
