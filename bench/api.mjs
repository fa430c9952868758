// `npm run bench -- api`: the producer's HTTP enqueue path against raw BullMQ, measured in the
// same run on the same Redis.
//  - http_enqueue_vs_raw_add: jobs/s through POST /v1/jobs/ingest/ingest-video (auth, per-key
//    rate limit counted in Redis, schema validation, queue.add) from 50 keep-alive connections,
//    vs raw queue.add of the same payload from 50 concurrent callers.
//  - enqueue_to_active_p50_ms / _p99_ms: submissions paced at 1,000 jobs/s over HTTP; time from
//    the job's creation to a worker (own process) starting it.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createDatabase, DEV_API_KEY, dropDatabase, ensureDatabaseExists, loadConfig, migrateToLatest } from '../packages/shared/dist/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CONNECTIONS = 50;
const JOBS = Number(process.env.BENCH_API_JOBS ?? 12_000);

const freePort = () =>
  new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

const payload = () => ({ videoId: randomUUID(), source: '/media/bench.mp4' });

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function clearPrefix(redis, prefix) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}

async function startProducer(env) {
  const child = spawn(process.execPath, [path.join(ROOT, 'apps/producer/dist/main.js')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${env.PORT}/readyz`).then(
      (res) => res.ok,
      () => false,
    );
    if (ok) return child;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`producer did not start: ${stderr}`);
}

/** `count` POSTs over `connections` keep-alive sockets; resolves with the wall time in ms. */
async function httpLoad(port, count, connections, pace) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const started = performance.now();
  let next = 0;
  const post = () =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify(payload());
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/jobs/ingest/ingest-video',
          agent,
          headers: { authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const loop = async () => {
    while (next < count) {
      const index = next++;
      if (pace) {
        const due = started + (index * 1000) / pace;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      await post();
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  const elapsed = performance.now() - started;
  agent.destroy();
  return elapsed;
}

async function rawLoad(queue, count, callers, pace) {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < count) {
        const index = next++;
        if (pace) {
          const wait = started + (index * 1000) / pace - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
        await queue.add('ingest-video', payload());
      }
    }),
  );
  return performance.now() - started;
}

/** Creation-to-start times (ms, sorted) of every completed job of a queue, once all `count` are done. */
async function startDelays(queue, count) {
  for (let i = 0; i < 200; i++) {
    const counts = await queue.getJobCounts('completed');
    if (counts.completed >= count) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const jobs = await queue.getJobs(['completed'], 0, count - 1);
  return jobs.map((job) => job.processedOn - job.timestamp).sort((a, b) => a - b);
}

function startWorker(prefix) {
  // A worker of its own process, so the load generator's event loop does not delay it.
  const script = `
    import { Worker } from 'bullmq';
    const worker = new Worker('ingest', async () => null, { connection: { host: '127.0.0.1', port: ${new URL(REDIS_URL).port || 6379}, maxRetriesPerRequest: null }, prefix: ${JSON.stringify(prefix)}, concurrency: 50, removeOnComplete: { count: 100000 } });
    worker.on('ready', () => process.send('ready'));
    process.on('message', async () => { await worker.close(); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve) => child.once('message', () => resolve(child)));
}

export async function run({ emit, log }) {
  const token = randomUUID().slice(0, 8);
  const prefix = `bench-api-${token}`;
  const schema = `bench_api_${token}`;
  const config = loadConfig({ DATABASE_URL, DATABASE_SCHEMA: schema });
  const settings = { url: DATABASE_URL, schema, poolSize: 2 };
  await ensureDatabaseExists(settings);
  const db = createDatabase(settings);
  await migrateToLatest(db, schema);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const port = await freePort();
  const producer = await startProducer({
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL,
    DATABASE_URL,
    DATABASE_SCHEMA: schema,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    API_RATE_LIMIT_PER_MINUTE: '100000000',
    WORKER_IO_METRICS_PORT: '0',
  });
  void config;
  try {
    // Warm up both paths (JIT, connection pools) before measuring.
    await httpLoad(port, 1000, CONNECTIONS);
    const rawQueue = new Queue('ingest', { connection: redis, prefix: `${prefix}-raw` });
    await rawLoad(rawQueue, 1000, CONNECTIONS);

    log(`HTTP: ${JOBS} enqueues over ${CONNECTIONS} connections`);
    const httpMs = await httpLoad(port, JOBS, CONNECTIONS);
    log(`raw queue.add: ${JOBS} from ${CONNECTIONS} concurrent callers`);
    const rawMs = await rawLoad(rawQueue, JOBS, CONNECTIONS);
    const httpRate = JOBS / (httpMs / 1000);
    const rawRate = JOBS / (rawMs / 1000);
    emit({
      metric: 'http_enqueue_vs_raw_add',
      value: Math.round(httpRate),
      unit: 'jobs/s',
      baseline: Math.round(rawRate),
      baseline_unit: 'jobs/s (raw queue.add)',
      ratio: Number((httpRate / rawRate).toFixed(3)),
    });
    await rawQueue.close();

    // Context for the ratio above: the same load against a Node HTTP server that only parses the
    // JSON and answers 202 (no Redis, no framework) — the ceiling of any HTTP API on this machine.
    const noopPort = await freePort();
    const noop = spawn(
      process.execPath,
      [
        '-e',
        `require('node:http').createServer((q,s)=>{let b='';q.on('data',c=>b+=c);q.on('end',()=>{JSON.parse(b);s.writeHead(202,{'content-type':'application/json'});s.end('{}')})}).listen(${noopPort},'127.0.0.1',()=>process.send('up'))`,
      ],
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
    );
    await new Promise((resolve) => noop.once('message', resolve));
    await httpLoad(noopPort, 1000, CONNECTIONS);
    const noopMs = await httpLoad(noopPort, JOBS, CONNECTIONS);
    noop.kill('SIGKILL');
    const noopRate = JOBS / (noopMs / 1000);
    emit({
      metric: 'http_noop_vs_raw_add',
      value: Math.round(noopRate),
      unit: 'requests/s',
      baseline: Math.round(rawRate),
      baseline_unit: 'jobs/s (raw queue.add)',
      ratio: Number((noopRate / rawRate).toFixed(3)),
      note: 'upper bound of any HTTP enqueue on this machine',
    });

    // Latency from enqueue to active at a steady 1,000 jobs/s: over HTTP, and (baseline) with
    // raw queue.add at the same pace, each into a fresh queue with a worker in its own process.
    const paced = 5000;
    const measure = async (label, queuePrefix, load) => {
      await clearPrefix(redis, queuePrefix);
      const worker = await startWorker(queuePrefix);
      log(`latency (${label}): ${paced} jobs at 1,000/s, worker concurrency 50`);
      const queue = new Queue('ingest', { connection: redis, prefix: queuePrefix });
      await load(queue);
      const delays = await startDelays(queue, paced);
      worker.send('stop');
      await queue.close();
      return delays;
    };
    const viaHttp = await measure('HTTP', prefix, () => httpLoad(port, paced, CONNECTIONS, 1000));
    const viaRaw = await measure('raw queue.add', `${prefix}-raw`, (queue) => rawLoad(queue, paced, CONNECTIONS, 1000));
    for (const p of [50, 99]) {
      const value = percentile(viaHttp, p);
      const baseline = percentile(viaRaw, p);
      emit({
        metric: `enqueue_to_active_p${p}_ms`,
        value,
        unit: 'ms',
        baseline,
        baseline_unit: 'ms (raw queue.add at the same rate)',
        ratio: baseline > 0 ? Number((value / baseline).toFixed(3)) : null,
        target: p === 50 ? '< 5' : '< 25',
        samples: viaHttp.length,
        rate_per_s: 1000,
      });
    }
  } finally {
    producer.kill('SIGTERM');
    await clearPrefix(redis, prefix);
    await clearPrefix(redis, `${prefix}-raw`);
    await db.destroy();
    await dropDatabase(settings);
    redis.disconnect();
  }
}
