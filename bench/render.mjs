// `npm run bench -- render`: what rendering a clip costs next to plain ffmpeg making the same file.
//
// - render_vs_encode: wall time of one real `render-clip` job (the worker-cpu render processor:
//   stored analysis read, crop following, encode, thumbnail, clip row) on a 15 s span of a real
//   video, against plain ffmpeg cutting the same span (input-side -ss/-t) with the same crop size,
//   libx264 preset and CRF and AAC (ratio = render / ffmpeg). Target ≤ 1.3.
// - render_vs_encode_concurrent: three 8 s clips rendered at once by the processor (as a worker
//   with render concurrency 3 takes them), against three plain ffmpeg runs at once.
// - render_vs_encode_full_frame: the 15 s clip in the source's own aspect (16:9): the window
//   cannot move, so no frame is sampled and what is left is the render path's own overhead.
//
// The video is analysed first by the real analysis (analyzeWithReuse, frame metrics stored on
// PostgreSQL in a schema of its own, interest profiles kept in the storage folder as the analyze
// step keeps them) and its metadata saved as the persist step saves it, so the
// processor finds what it finds in the pipeline. Both sides spawn ffmpeg through the same
// spawner (niced alike). The machine may be shared: samples are interleaved, the median counts,
// every sample is reported, and so is the CPU time (this process, its threads and its children)
// each side used, which other load disturbs less than wall time.
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { processTreeCpu } from './_support.mjs';

const cpuDist = new URL('../apps/worker-cpu/dist/', import.meta.url);
const shared = await import('@clipline/shared');
const { analyzeWithReuse } = await import(new URL('analysis/analysis-reuse.js', cpuDist).href);
const { CpuPool } = await import(new URL('analysis/pool.js', cpuDist).href);
const { setToolSpawning, spawnTool, expectSuccess } = await import(new URL('analysis/ffmpeg.js', cpuDist).href);
// FFMPEG_SPAWNING=direct|helper: how this process starts its ffmpeg runs, as worker-cpu would with it.
setToolSpawning(process.env.FFMPEG_SPAWNING ?? 'helper');
const { renderProcessors } = await import(new URL('render/render-processor.js', cpuDist).href);
const { RenderCores } = await import(new URL('render/render-cores.js', cpuDist).href);
const { cropGeometry } = await import(new URL('render/crop-geometry.js', cpuDist).href);

const execFileAsync = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const tools = { ffmpegPath: 'ffmpeg', ffprobePath: 'ffprobe' };
const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const FIXTURE = path.join(process.env.CLIPLINE_FIXTURES_DIR ?? path.resolve(here, '../../shared/fixtures'), 'video', 'bbb_h264_aac_60s.mp4');
/** The defaults of ANALYZE_FPS / ANALYZE_WIDTH, RENDER_PRESET / RENDER_CRF. */
const ANALYSIS = { fps: 10, width: 160 };
const PRESET = 'veryfast';
const CRF = 20;
const ASPECT = '9:16';
const FULL_FRAME = '16:9';
/** One clip, and the clips rendered at once. */
const SINGLE = { startSeconds: 20, endSeconds: 35 };
const SHORT = [
  { startSeconds: 5, endSeconds: 13 },
  { startSeconds: 24, endSeconds: 32 },
  { startSeconds: 41, endSeconds: 49 },
];
const SAMPLES = 5;
const CONCURRENT_SAMPLES = 3;

/** The shared fixture, or (without it) 60 s of generated 1280x720 H.264 + AAC. */
async function benchVideo(log) {
  if (existsSync(FIXTURE)) return FIXTURE;
  const dir = path.join(os.tmpdir(), 'clipline-bench');
  const file = path.join(dir, 'render-720p-60s.mp4');
  if (existsSync(file)) return file;
  await mkdir(dir, { recursive: true });
  log(`${FIXTURE} is missing: generating ${file} (once)`);
  const partial = `${file}.part.mp4`;
  const source = ['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30:duration=60', '-f', 'lavfi', '-i', 'sine=frequency=330:sample_rate=48000:duration=60'];
  const encode = ['-vf', 'hue=H=2*PI*floor(t/7)/5,format=yuv420p', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-g', '60', '-c:a', 'aac'];
  await execFileAsync('ffmpeg', ['-v', 'error', '-y', ...source, ...encode, '-shortest', partial]);
  await rename(partial, file);
  return file;
}

/** CPU seconds used so far by this process (all threads) and its children (ffmpeg, the spawner that starts it). */
function cpuSeconds() {
  const { own, children } = processTreeCpu();
  return own + children;
}

async function timed(work) {
  const cpu = cpuSeconds();
  const started = performance.now();
  await work();
  return { wall: (performance.now() - started) / 1000, cpu: cpuSeconds() - cpu };
}

/** A fresh schema on the test database, migrated, and its own storage folder. */
async function environment() {
  const settings = { url: DATABASE_URL, schema: `bench_render_${randomUUID().replace(/-/g, '').slice(0, 8)}`, poolSize: 6 };
  await shared.ensureDatabaseExists(settings);
  const db = shared.createDatabase(settings);
  await shared.migrateToLatest(db, settings.schema);
  const storageDir = await mkdtemp(path.join(os.tmpdir(), 'clipline-bench-render-'));
  return {
    db,
    storage: new shared.LocalStorage(storageDir),
    async cleanup() {
      await db.destroy();
      await shared.dropDatabase(settings).catch(() => {});
      await rm(storageDir, { recursive: true, force: true });
    },
  };
}

/** Ingest, analysis and persist as the pipeline leaves them: stored source, frame metrics, metadata. */
async function analysedVideo({ storage, videos, analyses, pool }, file) {
  const videoId = randomUUID();
  await videos.create({ id: videoId, source: file, title: 'render bench', steps: ['ingest', 'analyze', 'persist', 'render'] });
  const key = `videos/${videoId}/source.mp4`;
  await copyFile(file, await storage.prepare(key));
  const sizeBytes = (await stat(file)).size;
  await videos.setSource(videoId, { storageKey: key, sizeBytes });
  const settings = { tools, pool, fps: ANALYSIS.fps, width: ANALYSIS.width, maxSeconds: 4 * 3600 };
  const result = await analyzeWithReuse(settings, analyses, { videoId, file: storage.pathOf(key), sizeBytes, storage });
  await videos.saveAnalysis(videoId, result.metadata, result.scenes);
  return { videoId, metadata: result.metadata };
}

/** A job handle as the worker runtime hands one to a processor. */
function jobHandle(data, logger) {
  return {
    id: `${data.videoId}-render-${data.clipIndex}`,
    name: 'render-clip',
    queue: 'render',
    data,
    attemptsMade: 0,
    maxAttempts: 1,
    upstreamWaits: {},
    parentId: undefined,
    logger,
    signal: new AbortController().signal,
    updateProgress: async () => {},
    childResults: async () => [],
    addChildren: async () => {},
    waitForChildren: async () => {},
  };
}

/** Plain ffmpeg making the clip: the same span, crop size, codecs and settings, nothing else. */
async function plainEncode(file, metadata, span, target, aspect = ASPECT) {
  const { width, height } = cropGeometry(metadata.width, metadata.height, aspect);
  const args = [
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    '-ss',
    span.startSeconds.toFixed(3),
    '-t',
    (span.endSeconds - span.startSeconds).toFixed(3),
  ];
  args.push('-i', file, '-vf', `crop=${width}:${height}:(iw-${width})/2:(ih-${height})/2,setsar=1,format=yuv420p`);
  args.push('-c:v', 'libx264', '-preset', PRESET, '-crf', String(CRF), ...(metadata.hasAudio ? ['-c:a', 'aac', '-b:a', '128k'] : ['-an']));
  args.push('-movflags', '+faststart', '-f', 'mp4', target);
  await expectSuccess(await spawnTool(tools.ffmpegPath, args), 'plain encode failed');
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function round(value) {
  return Math.round(value * 1000) / 1000;
}

/** Interleaved samples of both sides; the medians and every sample. */
async function compare(samples, renderOnce, plainOnce) {
  const renders = [];
  const plains = [];
  for (let sample = 0; sample < samples; sample++) {
    renders.push(await timed(renderOnce));
    plains.push(await timed(plainOnce));
  }
  const wall = { render: median(renders.map((s) => s.wall)), plain: median(plains.map((s) => s.wall)) };
  const cpu = { render: median(renders.map((s) => s.cpu)), plain: median(plains.map((s) => s.cpu)) };
  return {
    value: round(wall.render),
    unit: 's',
    baseline: round(wall.plain),
    ratio: round(wall.render / wall.plain),
    limit: 1.3,
    cpuSeconds: { render: round(cpu.render), plain: round(cpu.plain), ratio: round(cpu.render / cpu.plain) },
    samples: { render: renders.map((s) => round(s.wall)), plain: plains.map((s) => round(s.wall)) },
  };
}

export async function run({ emit, log }) {
  const file = await benchVideo(log);
  const env = await environment();
  const cores = shared.usableCores();
  const pool = new CpuPool({ threads: cores });
  try {
    const videos = new shared.VideosRepository(env.db);
    const analyses = new shared.AnalysisRepository(env.db);
    const { videoId, metadata } = await analysedVideo({ storage: env.storage, videos, analyses, pool }, file);
    const video = `${path.basename(file)} ${metadata.width}x${metadata.height} ${metadata.durationSeconds.toFixed(1)} s ${metadata.videoCodec}`;
    log(`analysed ${video}`);
    const settings = { tools, pool, preset: PRESET, crf: CRF, cores: new RenderCores(cores) };
    const processor = renderProcessors({ settings, analyses, storage: env.storage, videos, analysisFps: ANALYSIS.fps })['render-clip'];
    const logger = shared.createLogger({ name: 'bench-render', level: 'silent' });
    const payload = (span, clipIndex, aspect = ASPECT) => ({ videoId, clipIndex, ...span, aspect, score: 50, reasons: [] });
    // Inside the environment's storage folder, so cleanup removes the plain files too.
    const plainDir = path.join(env.storage.root, 'plain');
    await mkdir(plainDir, { recursive: true });
    const renderOne = () => processor(jobHandle(payload(SINGLE, 0), logger));
    const plainOne = () => plainEncode(file, metadata, SINGLE, path.join(plainDir, 'single.mp4'));
    // Warm the page cache, the ffmpeg binary and the pool for both sides.
    await renderOne();
    await plainOne();
    const single = await compare(SAMPLES, renderOne, plainOne);
    emit({ metric: 'render_vs_encode', ...single, clipSeconds: SINGLE.endSeconds - SINGLE.startSeconds, aspect: ASPECT, video, cores });

    const renderMany = () => Promise.all(SHORT.map((span, k) => processor(jobHandle(payload(span, k + 1), logger))));
    const plainMany = () => Promise.all(SHORT.map((span, k) => plainEncode(file, metadata, span, path.join(plainDir, `short-${k}.mp4`))));
    const many = await compare(CONCURRENT_SAMPLES, renderMany, plainMany);
    emit({ metric: 'render_vs_encode_concurrent', ...many, clips: SHORT.length, clipSeconds: 8, aspect: ASPECT, video, cores });
    const renderFull = () => processor(jobHandle(payload(SINGLE, 4, FULL_FRAME), logger));
    const plainFull = () => plainEncode(file, metadata, SINGLE, path.join(plainDir, 'full.mp4'), FULL_FRAME);
    const full = await compare(CONCURRENT_SAMPLES, renderFull, plainFull);
    emit({ metric: 'render_vs_encode_full_frame', ...full, clipSeconds: SINGLE.endSeconds - SINGLE.startSeconds, aspect: FULL_FRAME, video, cores });
  } finally {
    await pool.close();
    await env.cleanup();
  }
}
