// `npm run bench -- api`: the producer's HTTP API against its real peers, measured in the same run
// on the same Redis and PostgreSQL.
//  - http_enqueue_vs_minimal_express: requests/s through the real producer process's public job
//    route (auth, auth-failure throttle, per-key rate limit counted in Redis, request id, request
//    log and histogram, payload validation, tenancy check of the named video, the public job's
//    record, queue.add) vs a minimal express 5 app in its own process doing a bearer check and
//    queue.add of the same payload. Same load generator, 50 keep-alive connections. Target ≥ 0.9.
//    The route is POST /v1/jobs/sync/refresh-metadata: `ingest/ingest-video` is an internal step
//    since the API got tenancy, and answers 404 to every caller (see `publicJobs` in the queues).
//  - http_noop_vs_raw_add (context): the same load against a bare node:http server that parses
//    the JSON and answers 202, vs raw queue.add from 50 concurrent callers in this process.
//  - http_batch_vs_in_process: videos/s through POST /v1/videos:batch (1,000 videos a request,
//    2 requests in flight) vs `VideoPipelineProducer.submitMany` of the same 1,000 submissions
//    (2 calls in flight) in a process of its own, on the same database and Redis. Target ≥ 0.8.
//  - enqueue_to_active_p50_ms / _p99_ms: public jobs paced at 1,000/s over HTTP; time from the
//    job's creation to a worker (own process) starting it, vs raw queue.add at the same pace.
//    Each line also gives the share of jobs created in the same millisecond as nine others or
//    more (`created_in_bunches_of_10_plus`): requests the producer took up together.
//
// The load generator runs in a process of its own: wrk when it is on PATH (BENCH_LOADGEN=node
// forces the built-in one), else a node:http client with a keep-alive agent. Every line says which.
// Rounds alternate the measured app and its baseline; values are medians over the rounds.
// BENCH_API_PROF=<dir> writes CPU profiles of the producer and of the minimal express peer there,
// so the two can be compared per request; BENCH_API_ONLY=enqueue,noop,batch,latency picks parts.
//
// Run directly with `--load <spec>`, `--minimal-app <spec>` or `--submit-many <spec>`, this file
// is that helper process.
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { clearPrefix, freePort, median } from './_support.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const SHARED = pathToFileURL(path.join(ROOT, 'packages/shared/dist/index.js')).href;
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CONNECTIONS = 50;
const ROUNDS = Number(process.env.BENCH_API_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_API_SECONDS ?? 8);
const BATCH = 1000;
const BATCHES = Number(process.env.BENCH_API_BATCHES ?? 16);
const BATCH_IN_FLIGHT = 2;
const JOB_PATH = '/v1/jobs/sync/refresh-metadata';
const SOURCE = '/media/bench.mp4';

const round3 = (value) => Number(value.toFixed(3));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** CPU ms (user + system) a process has used so far, from /proc; undefined where there is none. */
function cpuMsOf(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/** Runs `work` and adds the CPU ms per answered request the server process `pid` spent meanwhile. */
async function withServerCpu(pid, work) {
  const before = cpuMsOf(pid);
  const result = await work();
  const after = cpuMsOf(pid);
  return { ...result, serverCpuMsPerRequest: before === undefined || after === undefined ? undefined : (after - before) / result.ok };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ---------------------------------------------------------------------------------------------
// Helper processes.

/** Runs this file as a helper; resolves with the child once it printed its first JSON line. */
function helper(flag, spec, { env = {}, args = [] } = {}) {
  const child = spawn(process.execPath, [...args, SELF, flag, JSON.stringify(spec)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const lines = [];
  const waiters = [];
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    let index = stdout.indexOf('\n');
    while (index >= 0) {
      lines.push(JSON.parse(stdout.slice(0, index)));
      stdout = stdout.slice(index + 1);
      index = stdout.indexOf('\n');
      for (const waiter of waiters.splice(0)) waiter();
    }
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const next = async () => {
    while (lines.length === 0) {
      const code = await Promise.race([new Promise((resolve) => waiters.push(resolve)).then(() => undefined), exited]);
      if (code !== undefined && lines.length === 0) throw new Error(`${flag} helper exited with ${code}: ${stderr.slice(-3000)}`);
    }
    return lines.shift();
  };
  return { child, next, exited, stderr: () => stderr };
}

/** Starts the real producer (its dist build) and waits for /readyz. */
async function startProducer(env, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'apps/producer/dist/main.js')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  for (let i = 0; i < 150; i++) {
    const ok = await fetch(`http://127.0.0.1:${env.PORT}/readyz`).then(
      (res) => res.ok,
      () => false,
    );
    if (ok) return child;
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`producer did not start: ${stderr}`);
}

function stopChild(child, signal = 'SIGTERM') {
  if (child.exitCode !== null) return Promise.resolve();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  return Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
}

/** The minimal express 5 peer: bearer check, queue.add of the body, 202. */
async function minimalAppProcess({ port, prefix, key, queue: queueName, jobOptions }) {
  const { default: express } = await import('express');
  const { Queue } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const { createHash, timingSafeEqual } = await import('node:crypto');
  const digest = (value) => createHash('sha256').update(value).digest();
  const expected = digest(`Bearer ${key}`);
  const queue = new Queue(queueName, { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false }), prefix });
  await queue.waitUntilReady();
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.post('/v1/jobs/:queue/:name', async (req, res) => {
    if (!timingSafeEqual(digest(req.get('authorization') ?? ''), expected)) return res.status(401).json({ title: 'Unauthorized' });
    const id = randomUUID();
    await queue.add(req.params.name, req.body, { ...jobOptions, jobId: id });
    res.status(202).json({ id, status: 'queued' });
  });
  app.listen(port, '127.0.0.1', () => process.stdout.write('{"up":true}\n'));
  process.once('SIGTERM', () => process.exit(0));
}

/** The bare node:http ceiling: parse the JSON, answer 202. */
function noopServerProcess({ port }) {
  http
    .createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        JSON.parse(body);
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end('{}');
      });
    })
    .listen(port, '127.0.0.1', () => process.stdout.write('{"up":true}\n'));
}

/**
 * The built-in load generator: `connections` keep-alive sockets, each sending its next request as
 * soon as the last is answered, for `seconds` (or `count` requests; `pace` per second spreads them).
 */
async function loadProcess({ port, path: urlPath, body, headers, connections, seconds, count, pace, expect }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const payload = Buffer.from(body);
  const started = performance.now();
  const deadline = seconds ? started + seconds * 1000 : Number.POSITIVE_INFINITY;
  let next = 0;
  const statuses = {};
  const post = () =>
    new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: 'POST', path: urlPath, agent, headers: { ...headers, 'content-length': payload.length } },
        (res) => {
          res.resume();
          res.on('end', () => {
            statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  const loop = async () => {
    while (performance.now() < deadline && (count === undefined || next < count)) {
      const index = next++;
      if (pace) {
        const wait = started + (index * 1000) / pace - performance.now();
        if (wait > 0) await sleep(wait);
      }
      await post();
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  const elapsed = performance.now() - started;
  agent.destroy();
  const ok = statuses[expect] ?? 0;
  process.stdout.write(`${JSON.stringify({ ok, statuses, seconds: elapsed / 1000, rate: ok / (elapsed / 1000) })}\n`);
}

/** The in-process producer: `batches` submitMany calls of `size` videos, `inFlight` at a time. */
async function submitManyProcess({ schema, prefix, batches, size, inFlight, tenant, submittedBy }) {
  const shared = await import(SHARED);
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const db = shared.createDatabase({ url: DATABASE_URL, schema, poolSize: 10 });
  const videos = new shared.VideosRepository(db);
  const producer = new shared.VideoPipelineProducer({ connection: redis, prefix }, videos, undefined, {});
  const items = () => Array.from({ length: size }, () => ({ submission: { source: SOURCE, title: null } }));
  await producer.submitMany(items().slice(0, 10), { submittedBy, tenant });
  process.stdout.write('{"warm":true}\n');
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < batches) await producer.submitMany(items(), { submittedBy, tenant });
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ videos: batches * size, seconds, rate: (batches * size) / seconds })}\n`);
  await producer.close();
  await db.destroy();
  redis.disconnect();
}

// ---------------------------------------------------------------------------------------------
// Load generation from the bench.

function wrkVersion() {
  if (process.env.BENCH_LOADGEN === 'node') return undefined;
  try {
    const text = execFileSync('wrk', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return /wrk\s+(\S+)/.exec(text)?.[1] ?? 'unknown';
  } catch (error) {
    // wrk prints its version and usage, then exits with 1.
    const text = `${error.stdout ?? ''}${error.stderr ?? ''}`;
    return /wrk\s+(\S+)/.exec(text)?.[1];
  }
}

let wrkDir;
/** `connections` keep-alive connections for `seconds` with wrk; requests/s of `expect` answers. */
function wrkLoad({ port, path: urlPath, body, headers, connections, seconds, expect }) {
  wrkDir ??= mkdtempSync(path.join(os.tmpdir(), 'bench-api-wrk-'));
  const script = path.join(wrkDir, `${randomUUID()}.lua`);
  const lines = [`wrk.method = "POST"`, `wrk.body = ${JSON.stringify(body)}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`wrk.headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}`);
  // Counts the answers by status, printed on stderr at the end.
  lines.push(
    'local statuses = {}',
    'function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end',
    'function done(summary, latency, requests) end',
  );
  writeFileSync(script, `${lines.join('\n')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '30s', '-s', script, `http://127.0.0.1:${port}${urlPath}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    child.on('exit', (code) => {
      const requests = Number(/(\d+) requests in ([\d.]+)(m?s)/.exec(out)?.[1]);
      const duration = /(\d+) requests in ([\d.]+)(m?s)/.exec(out);
      const nonOk = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const errors = /Socket errors: (.*)/.exec(out)?.[1];
      if (code !== 0 || !duration) return reject(new Error(`wrk failed (${code}): ${out}`));
      const secs = Number(duration[2]) / (duration[3] === 'ms' ? 1000 : 1);
      const ok = requests - nonOk;
      if (nonOk > 0 || errors) return reject(new Error(`wrk: ${nonOk} answers other than ${expect}, socket errors: ${errors ?? 'none'}\n${out}`));
      resolve({ ok, statuses: { [expect]: ok }, seconds: secs, rate: ok / secs });
    });
  });
}

const LOADGEN = { wrk: wrkVersion() };
LOADGEN.name = LOADGEN.wrk ? `wrk ${LOADGEN.wrk} (1 thread)` : 'node:http keep-alive agent (own process; wrk not on PATH)';

async function load(spec) {
  const full = { connections: CONNECTIONS, expect: 202, ...spec };
  if (LOADGEN.wrk && full.seconds && !full.pace) return wrkLoad(full);
  const { next } = helper('--load', full);
  const result = await next();
  if (result.ok === 0 || Object.keys(result.statuses).some((status) => Number(status) !== full.expect)) {
    throw new Error(`load against ${full.path}: answers ${JSON.stringify(result.statuses)}, expected only ${full.expect}`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Measurements.

const jobHeaders = (key) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });

/**
 * Alternates `measured` and `baseline` (async (warm) => rate, or { rate, cpu }) for ROUNDS rounds
 * after one warm-up each; `cpu` is the CPU ms per request the measured server spent.
 */
async function alternate(log, label, measured, baseline) {
  await measured(true);
  await baseline(true);
  const rates = { value: [], baseline: [], pairs: [], cpu: { value: [], baseline: [] } };
  const take = (result) => (typeof result === 'number' ? { rate: result } : result);
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 ? [measured, baseline] : [baseline, measured];
    const results = new Map();
    for (const fn of order) results.set(fn, take(await fn(false)));
    const [value, base] = [results.get(measured), results.get(baseline)];
    rates.value.push(value.rate);
    rates.baseline.push(base.rate);
    rates.pairs.push(value.rate / base.rate);
    if (value.cpu !== undefined) rates.cpu.value.push(value.cpu);
    if (base.cpu !== undefined) rates.cpu.baseline.push(base.cpu);
    const cpu = value.cpu === undefined ? '' : `; server CPU ms/request ${value.cpu.toFixed(3)} vs ${base.cpu?.toFixed(3) ?? '-'}`;
    log(`${label} round ${round}: ${Math.round(value.rate)} vs ${Math.round(base.rate)} (${rates.pairs.at(-1).toFixed(3)})${cpu}`);
  }
  return rates;
}

function summary(rates) {
  const value = median(rates.value);
  const baseline = median(rates.baseline);
  return {
    value: Math.round(value),
    baseline: Math.round(baseline),
    ratio: round3(value / baseline),
    round_ratios: rates.pairs.map(round3),
    runs: { value: rates.value.map(Math.round), baseline: rates.baseline.map(Math.round) },
    ...(rates.cpu.value.length
      ? {
          server_cpu_ms_per_request: {
            value: round3(median(rates.cpu.value)),
            ...(rates.cpu.baseline.length ? { baseline: round3(median(rates.cpu.baseline)) } : {}),
          },
        }
      : {}),
  };
}

async function enqueueVsMinimal({ emit, log }, setup) {
  const { port, prefix, videoId, key, shared } = setup;
  const body = JSON.stringify({ videoId });
  const minimalPort = await freePort();
  const minimal = helper(
    '--minimal-app',
    {
      port: minimalPort,
      prefix: `${prefix}-min`,
      key,
      queue: shared.syncQueue.name,
      jobOptions: shared.jobOptions(shared.syncQueue),
    },
    process.env.BENCH_API_PROF ? { args: ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_API_PROF}`, '--cpu-prof-name=minimal.cpuprofile'] } : {},
  );
  await minimal.next();
  try {
    const rates = await alternate(
      log,
      'enqueue: producer vs minimal express',
      async (warm) => {
        const result = await withServerCpu(setup.producerPid, () =>
          load({ port, path: JOB_PATH, body, headers: jobHeaders(key), seconds: warm ? 3 : SECONDS }),
        );
        return { rate: result.rate, cpu: result.serverCpuMsPerRequest };
      },
      async (warm) => {
        const result = await withServerCpu(minimal.child.pid, () =>
          load({ port: minimalPort, path: JOB_PATH, body, headers: jobHeaders(key), seconds: warm ? 3 : SECONDS }),
        );
        return { rate: result.rate, cpu: result.serverCpuMsPerRequest };
      },
    );
    emit({
      metric: 'http_enqueue_vs_minimal_express',
      ...summary(rates),
      unit: 'jobs/s',
      baseline_unit: 'jobs/s (minimal express 5 app: bearer check + queue.add, own process)',
      target: '>= 0.9',
      route: `POST ${JOB_PATH}`,
      connections: CONNECTIONS,
      seconds: SECONDS,
      load_generator: LOADGEN.name,
    });
  } finally {
    // A profiled peer exits on SIGTERM so that its profile is written.
    await stopChild(minimal.child, process.env.BENCH_API_PROF ? 'SIGTERM' : 'SIGKILL');
  }
}

async function noopVsRawAdd({ emit, log }, { redis, prefix, shared }) {
  const { Queue } = await import('bullmq');
  const rawQueue = new Queue(shared.syncQueue.name, { connection: redis, prefix: `${prefix}-raw` });
  const options = shared.jobOptions(shared.syncQueue);
  const rawRate = async (warm) => {
    const count = warm ? 2000 : 12_000;
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (next++ < count) await rawQueue.add('refresh-metadata', { videoId: randomUUID() }, { ...options, jobId: randomUUID() });
      }),
    );
    return count / ((performance.now() - started) / 1000);
  };
  const noopPort = await freePort();
  const noop = helper('--noop-server', { port: noopPort });
  await noop.next();
  try {
    const body = JSON.stringify({ videoId: randomUUID() });
    const rates = await alternate(
      log,
      'noop http vs raw queue.add',
      async (warm) => (await load({ port: noopPort, path: JOB_PATH, body, headers: jobHeaders('x'), seconds: warm ? 2 : SECONDS })).rate,
      rawRate,
    );
    emit({
      metric: 'http_noop_vs_raw_add',
      ...summary(rates),
      unit: 'requests/s',
      baseline_unit: 'jobs/s (raw queue.add from 50 callers in the bench process)',
      note: 'context: a bare node:http server that parses the JSON and answers 202, the ceiling of any HTTP API here',
      load_generator: LOADGEN.name,
    });
  } finally {
    await stopChild(noop.child, 'SIGKILL');
    await rawQueue.close();
  }
}

export async function run({ emit, log }) {
  const shared = await import(SHARED);
  const { Redis } = await import('ioredis');
  const token = randomUUID().slice(0, 8);
  const prefix = `bench-api-${token}`;
  const schema = `bench_api_${token}`;
  const settings = { url: DATABASE_URL, schema, poolSize: 2 };
  await shared.ensureDatabaseExists(settings);
  const db = shared.createDatabase(settings);
  await shared.migrateToLatest(db, schema);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const port = await freePort();
  const key = shared.DEV_API_KEY;
  log(`load generator: ${LOADGEN.name}`);
  const producerEnv = {
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL,
    DATABASE_URL,
    DATABASE_SCHEMA: schema,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: process.env.BENCH_API_LOG_LEVEL ?? 'warn',
    API_RATE_LIMIT_PER_MINUTE: '100000000',
    MAX_ACTIVE_VIDEOS_PER_TENANT: '100000000',
    PRODUCER_METRICS_PORT: '0',
    ...(process.env.BENCH_API_DB_POOL ? { DATABASE_POOL_SIZE: process.env.BENCH_API_DB_POOL } : {}),
  };
  const profileDir = process.env.BENCH_API_PROF;
  const producer = await startProducer(producerEnv, profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
  try {
    // The video the public jobs name: owned by the bench key's tenant.
    const created = await fetch(`http://127.0.0.1:${port}/v1/videos`, { method: 'POST', headers: jobHeaders(key), body: JSON.stringify({ source: SOURCE }) });
    if (created.status !== 202) throw new Error(`could not create the bench video: ${created.status} ${await created.text()}`);
    const { id: videoId } = await created.json();
    const setup = { port, prefix, videoId, key, shared, redis, db, schema, producerPid: producer.pid };
    const only = process.env.BENCH_API_ONLY?.split(',');
    const wanted = (name) => !only || only.includes(name);
    if (wanted('enqueue')) await enqueueVsMinimal({ emit, log }, setup);
    if (wanted('noop')) await noopVsRawAdd({ emit, log }, setup);
    if (wanted('batch')) await batchVsInProcess({ emit, log }, setup);
    if (wanted('latency')) await enqueueToActive({ emit, log }, setup);
  } finally {
    await stopChild(producer);
    await clearPrefix(redis, prefix);
    for (const suffix of ['-raw', '-min', '-direct']) await clearPrefix(redis, `${prefix}${suffix}`);
    await db.destroy();
    await shared.dropDatabase(settings);
    redis.disconnect();
    if (wrkDir) rmSync(wrkDir, { recursive: true, force: true });
  }
}

/** Empties the videos table (but the jobs' own video) and the flows, so every batch round starts alike. */
async function resetVideos({ db, redis, prefix, videoId, shared }) {
  await db.deleteFrom('videos').where('id', '!=', videoId).execute();
  await clearPrefix(redis, `${prefix}-direct`);
  for (const queue of shared.allQueues) await clearPrefix(redis, `${prefix}:${queue.name}`);
}

async function batchVsInProcess({ emit, log }, setup) {
  const { port, key, schema, prefix } = setup;
  const tenant = `key-${(await import('node:crypto')).createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
  const body = JSON.stringify({ videos: Array.from({ length: BATCH }, () => ({ source: SOURCE })) });
  const overHttp = async (warm) => {
    await resetVideos(setup);
    const count = warm ? 2 : BATCHES;
    const result = await load({ port, path: '/v1/videos:batch', body, headers: jobHeaders(key), connections: BATCH_IN_FLIGHT, count });
    return (result.ok * BATCH) / result.seconds;
  };
  const inProcess = async (warm) => {
    await resetVideos(setup);
    const direct = helper('--submit-many', {
      schema,
      prefix: `${prefix}-direct`,
      batches: warm ? 2 : BATCHES,
      size: BATCH,
      inFlight: BATCH_IN_FLIGHT,
      tenant,
      submittedBy: 'bench',
    });
    await direct.next();
    const result = await direct.next();
    await direct.exited;
    return result.rate;
  };
  const rates = await alternate(log, 'batch: HTTP vs in-process submitMany', overHttp, inProcess);
  await resetVideos(setup);
  emit({
    metric: 'http_batch_vs_in_process',
    ...summary(rates),
    unit: 'videos/s',
    baseline_unit: 'videos/s (VideoPipelineProducer.submitMany in its own process, same database and Redis)',
    target: '>= 0.8',
    batch: BATCH,
    batches: BATCHES,
    in_flight: BATCH_IN_FLIGHT,
    load_generator: 'node:http keep-alive agent (own process)',
  });
}

/**
 * Creation-to-start times (ms, sorted) of every completed job of a queue, once all `count` are
 * done, the share of jobs created in the same millisecond as at least nine others (a worker
 * takes one job a round trip, so jobs that arrive together wait for the ones before them), and
 * the gaps between the milliseconds in which jobs were created (p50, p90, max): how long the
 * sender went without creating any.
 */
async function startDelays(queue, count) {
  for (let i = 0; i < 300; i++) {
    const counts = await queue.getJobCounts('completed');
    if (counts.completed >= count) break;
    await sleep(100);
  }
  const jobs = await queue.getJobs(['completed'], 0, count - 1);
  const perMs = new Map();
  for (const job of jobs) perMs.set(job.timestamp, (perMs.get(job.timestamp) ?? 0) + 1);
  const bunched = [...perMs.values()].filter((n) => n >= 10).reduce((sum, n) => sum + n, 0);
  const instants = [...perMs.keys()].sort((a, b) => a - b);
  const gaps = instants
    .slice(1)
    .map((at, i) => at - instants[i])
    .sort((a, b) => a - b);
  return {
    delays: jobs.map((job) => job.processedOn - job.timestamp).sort((a, b) => a - b),
    bunchedShare: jobs.length ? bunched / jobs.length : 0,
    creationGaps: { p50: percentile(gaps, 50), p90: percentile(gaps, 90), max: gaps.at(-1) ?? 0 },
  };
}

function startLatencyWorker(prefix, queueName) {
  // A worker of its own process, so the load generator's event loop does not delay it.
  const script = `
    import { Worker } from 'bullmq';
    const worker = new Worker(${JSON.stringify(queueName)}, async () => null, { connection: { host: '127.0.0.1', port: ${new URL(REDIS_URL).port || 6379}, maxRetriesPerRequest: null }, prefix: ${JSON.stringify(prefix)}, concurrency: 50 });
    worker.on('ready', () => process.send('ready'));
    process.on('message', async () => { await worker.close(); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve) => child.once('message', () => resolve(child)));
}

async function enqueueToActive({ emit, log }, { port, prefix, videoId, key, redis, shared }) {
  const { Queue } = await import('bullmq');
  const paced = 5000;
  const queueName = shared.syncQueue.name;
  const options = shared.jobOptions(shared.syncQueue);
  const measure = async (label, queuePrefix, send) => {
    await clearPrefix(redis, `${queuePrefix}:${queueName}`);
    const worker = await startLatencyWorker(queuePrefix, queueName);
    log(`latency (${label}): ${paced} jobs at 1,000/s, worker concurrency 50`);
    const queue = new Queue(queueName, { connection: redis, prefix: queuePrefix });
    await send(queue);
    const measured = await startDelays(queue, paced);
    worker.send('stop');
    await queue.close();
    return measured;
  };
  const viaHttp = await measure('HTTP', prefix, () =>
    load({ port, path: JOB_PATH, body: JSON.stringify({ videoId }), headers: jobHeaders(key), count: paced, pace: 1000 }),
  );
  const viaRaw = await measure('raw queue.add', `${prefix}-raw`, async (queue) => {
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (next < paced) {
          const wait = started + (next++ * 1000) / 1000 - performance.now();
          if (wait > 0) await sleep(wait);
          await queue.add('refresh-metadata', { videoId }, { ...options, jobId: randomUUID() });
        }
      }),
    );
  });
  for (const p of [50, 99]) {
    const value = percentile(viaHttp.delays, p);
    const baseline = percentile(viaRaw.delays, p);
    emit({
      metric: `enqueue_to_active_p${p}_ms`,
      value,
      unit: 'ms',
      baseline,
      baseline_unit: 'ms (raw queue.add at the same rate)',
      ratio: baseline > 0 ? round3(value / baseline) : null,
      target: p === 50 ? '< 5' : '< 25',
      samples: viaHttp.delays.length,
      created_in_bunches_of_10_plus: { value: round3(viaHttp.bunchedShare), baseline: round3(viaRaw.bunchedShare) },
      creation_gap_ms: { value: viaHttp.creationGaps, baseline: viaRaw.creationGaps },
      rate_per_s: 1000,
      route: `POST ${JOB_PATH}`,
    });
  }
}

const HELPERS = { '--load': loadProcess, '--minimal-app': minimalAppProcess, '--noop-server': noopServerProcess, '--submit-many': submitManyProcess };
if (HELPERS[process.argv[2]]) await HELPERS[process.argv[2]](JSON.parse(process.argv[3]));
