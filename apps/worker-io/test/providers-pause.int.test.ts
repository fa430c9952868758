/**
 * A 429 with Retry-After from one provider pauses that provider for every worker process: two
 * real node processes, each with its own BullMQ Worker on the same queue, calling the built
 * provider clients against the simulator. The simulator's request log is the judge.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import { createUpstreamSimulator, type RequestRecord, type UpstreamSimulator } from '../../../infra/upstream-sim/src/index.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

const QUEUE = 'ai-pause';
const JOBS = 500;
const RETRY_AFTER_SECONDS = 2;
const PROVIDERS_MODULE = path.resolve(import.meta.dirname ?? '.', '../dist/providers/index.js');

/**
 * The worker process: the production worker runtime (startWorker, with the limiter worker-io
 * gives its provider queues) whose processor calls the OpenAI client and maps its errors with
 * toJobError, so a rate limit becomes a queue pause.
 */
const WORKER_SCRIPT = `
import { z } from 'zod';
import { createLogger, createRedis, defineQueue, Registry, standardRetention, startWorker } from '@clipline/shared';
const providersModule = await import(process.env.PROVIDERS_MODULE_URL);
const { createProviderClients, loadProviderSettings, toJobError, ProviderRateLimitedError } = providersModule;
const name = process.env.WORKER_NAME;
const redis = createRedis(process.env.REDIS_URL, 'worker');
const settings = loadProviderSettings({ UPSTREAM_SIM_URL: process.env.SIM_URL, OPENAI_RATE_LIMIT_PER_SECOND: '0' });
const clients = createProviderClients({ settings, redis, keyPrefix: process.env.PREFIX, registry: new Registry() });
const rateLimited = { upstream: 0, paused: 0, limiter: 0 };
const declaration = defineQueue({
  name: process.env.QUEUE,
  resourceClass: 'io',
  jobs: { 'write-captions': z.strictObject({ index: z.number() }) },
  defaultJobOptions: { attempts: 1, backoff: { type: 'fixed', delay: 100 }, ...standardRetention },
});
const worker = startWorker(declaration, {
  'write-captions': async (job) => {
    try {
      await clients.openai.chatCompletion({ messages: [{ role: 'user', content: 'caption ' + job.id }] });
      return { worker: name };
    } catch (error) {
      if (error instanceof ProviderRateLimitedError) rateLimited[error.source] += 1;
      throw toJobError(error);
    }
  },
}, { connection: redis, prefix: process.env.PREFIX, concurrency: 5, logger: createLogger({ name, level: 'silent' }), limiter: { max: 1_000_000, duration: 1000 } });
while (!worker.isRunning()) await new Promise((resolve) => setTimeout(resolve, 20));
process.stdout.write(JSON.stringify({ ready: name }) + '\\n');
process.on('SIGTERM', async () => {
  await worker.close();
  clients.close();
  redis.disconnect();
  process.stdout.write(JSON.stringify({ summary: name, rateLimited }) + '\\n');
  process.exit(0);
});
`;

interface WorkerProcess {
  name: string;
  child: ChildProcess;
  output: () => string;
}

let env: TestEnvironment;
let sim: UpstreamSimulator;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  if (!existsSync(PROVIDERS_MODULE)) throw new Error(`${PROVIDERS_MODULE} is missing: run \`npx tsc -b\` before this test`);
  env = await createTestEnvironment();
  sim = await createUpstreamSimulator({ apiKey: 'sim-key', config: { endpoints: { 'openai.chat.completions': { latency: { kind: 'fixed', ms: 40 } } } } });
});

afterAll(async () => {
  for (const worker of workers) if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
  await sim.close();
  await env.cleanup();
});

function startWorker(name: string): WorkerProcess {
  const child = spawn(process.execPath, ['--input-type=module', '-e', WORKER_SCRIPT], {
    cwd: path.resolve(import.meta.dirname ?? '.', '..'),
    env: {
      PATH: process.env.PATH ?? '',
      WORKER_NAME: name,
      REDIS_URL: env.config.redisUrl,
      PREFIX: env.config.queuePrefix,
      QUEUE,
      SIM_URL: sim.url,
      PROVIDERS_MODULE_URL: pathToFileURL(PROVIDERS_MODULE).href,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const worker = { name, child, output: () => text };
  workers.push(worker);
  return worker;
}

function lines(worker: WorkerProcess): Record<string, unknown>[] {
  return worker
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function stop(worker: WorkerProcess): Promise<Record<string, unknown>> {
  const exited = new Promise((resolve) => worker.child.once('exit', resolve));
  worker.child.kill('SIGTERM');
  await exited;
  const summary = lines(worker).find((line) => line.summary === worker.name);
  if (!summary) throw new Error(`${worker.name} gave no summary:\n${worker.output()}`);
  return summary;
}

describe('429 + Retry-After across worker processes', () => {
  it('pauses the provider for both processes: neither calls it until Retry-After has passed, and no job is lost', async () => {
    const connection = connectRedis(env.config.redisUrl);
    const queue = new Queue(QUEUE, { connection, prefix: env.config.queuePrefix });
    try {
      // One attempt per job: a rate-limited job must go back to waiting without spending it.
      await queue.addBulk(
        Array.from({ length: JOBS }, (_, index) => ({ name: 'write-captions', data: { index }, opts: { jobId: `job-${index}`, attempts: 1 } })),
      );
      const alpha = startWorker('alpha');
      const beta = startWorker('beta');
      for (const worker of [alpha, beta]) {
        await waitFor(async () => (lines(worker).some((line) => line.ready) ? true : undefined), 15_000, `${worker.name} to start:\n${worker.output()}`);
      }

      // Both processes are calling the provider before the 429.
      const completedBy = async () =>
        (await queue.getJobs(['completed'], 0, JOBS)).map((job) => ({ worker: String(job.returnvalue?.worker), finishedOn: job.finishedOn ?? 0 }));
      await waitFor(
        async () => {
          const done = await completedBy();
          return done.some((job) => job.worker === 'alpha') && done.some((job) => job.worker === 'beta') ? true : undefined;
        },
        15_000,
        'both workers to complete jobs',
      );
      sim.configure({ endpoints: { 'openai.chat.completions': { rateLimitNext: 1, retryAfterSeconds: RETRY_AFTER_SECONDS } } });

      await waitFor(async () => ((await queue.getCompletedCount()) === JOBS ? true : undefined), 30_000, 'every job to complete');
      expect(await queue.getFailedCount()).toBe(0);
      const [alphaSummary, betaSummary] = await Promise.all([stop(alpha), stop(beta)]);

      const log = sim.stats().requests.filter((request) => request.endpoint === 'openai.chat.completions');
      const limited = log.filter((request) => request.status === 429);
      expect(limited).toHaveLength(1);
      const pausedAt = (limited[0] as RequestRecord).finishedAt ?? 0;
      const pauseEnds = pausedAt + RETRY_AFTER_SECONDS * 1000;
      // Calls that had passed the gate before the pause was written may still land a few ms after the 429.
      const duringPause = log.filter((request) => request.at > pausedAt + 250 && request.at < pauseEnds - 100);
      expect(duringPause).toEqual([]);
      expect(log.filter((request) => request.at >= pauseEnds).length).toBeGreaterThan(0);

      // One process met the 429; the queue pause (BullMQ's rate limit, read by every worker that
      // has a limiter) kept the other from taking jobs at all, so it never had to meet the
      // provider's pause key. Both went back to work after it.
      const seen = (summary: Record<string, unknown>) => summary.rateLimited as { upstream: number; paused: number };
      expect(seen(alphaSummary).upstream + seen(betaSummary).upstream).toBe(1);
      const afterPause = (await completedBy()).filter((job) => job.finishedOn >= pauseEnds);
      expect(new Set(afterPause.map((job) => job.worker))).toEqual(new Set(['alpha', 'beta']));

      // Every job reached the provider successfully exactly once.
      expect(sim.stats().endpoints['openai.chat.completions'].statuses).toEqual({ '200': JOBS, '429': 1 });
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    }
  });
});
