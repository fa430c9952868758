/**
 * The CPU side as a process runs it: startCpuWorker on the real Redis, PostgreSQL and ffmpeg,
 * fed real BullMQ flows (a stand-in for worker-io's ingest stores the source), then render jobs
 * made from the analysis, and /metrics scraped.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RedisClient } from '@clipline/shared';
import {
  AnalysisRepository,
  analyzeQueue,
  createLogger,
  createQueue,
  createService,
  FlowEnqueuer,
  ingestQueue,
  LocalStorage,
  renderClipPayloads,
  renderQueue,
  startWorker,
  videoSourceKey,
  VideosRepository,
  type ClipCandidate,
  type RunningWorker,
  type ServiceContext,
  usableCores,
} from '@clipline/shared';
import { loadCpuWorkerSettings } from '../src/cpu-worker-config.js';
import { startCpuWorker, type RunningCpuWorker } from '../src/cpu-worker.js';
import { generateVideo, withClaimedDuration } from '../../../tests/helpers/media.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';
import { jest } from '@jest/globals';

// Analyses, reuse and every clip's render in one test: minutes on a loaded 2-core machine.
jest.setTimeout(180_000);

const run = promisify(execFile);

let env: TestEnvironment;
let service: ServiceContext;
let cpu: RunningCpuWorker;
let connection: RedisClient;
let ingest: RunningWorker;
let flows: FlowEnqueuer;
let videos: VideosRepository;
let analyses: AnalysisRepository;
let storage: LocalStorage;

beforeAll(async () => {
  env = await createTestEnvironment({ CPU_POOL_THREADS: '2', WORKER_CPU_CONCURRENCY: '4', WORKER_CPU_METRICS_PORT: '0', HOST: '127.0.0.1' });
  service = createService('worker-cpu', env.config);
  cpu = await startCpuWorker(service, { settings: loadCpuWorkerSettings({}) });
  connection = connectRedis(env.config.redisUrl);
  storage = new LocalStorage(env.config.storageDir);
  // Stands in for worker-io's ingest: stores the source where analysis expects it.
  ingest = startWorker(
    ingestQueue,
    {
      'ingest-video': async (job) => {
        const key = videoSourceKey(job.data.videoId, path.extname(job.data.source));
        await copyFile(job.data.source, await storage.prepare(key));
        await videos.setSource(job.data.videoId, { storageKey: key, sizeBytes: (await stat(job.data.source)).size });
        return { storageKey: key, sizeBytes: (await stat(job.data.source)).size, container: 'test' };
      },
    },
    { connection, prefix: env.config.queuePrefix, concurrency: 4, logger: createLogger({ name: 'ingest-stand-in', level: 'silent' }) },
  );
  flows = new FlowEnqueuer({ connection, prefix: env.config.queuePrefix });
  videos = new VideosRepository(env.db);
  analyses = new AnalysisRepository(env.db);
});

afterAll(async () => {
  await ingest.close();
  await flows.close();
  connection.disconnect();
  await service.shutdown.shutdown('test finished');
  await env.cleanup();
});

/** Submits a file the way the pipeline does (video row, then ingest → analyze flow). */
async function submit(file: string): Promise<string> {
  const id = randomUUID();
  await videos.create({ id, source: file, title: null, steps: ['ingest', 'analyze', 'persist'] });
  await flows.addChains([
    {
      parent: { declaration: analyzeQueue, jobName: 'analyze-video', data: { videoId: id }, jobId: `${id}-analyze` },
      steps: [{ declaration: ingestQueue, jobName: 'ingest-video', data: { videoId: id, source: file }, jobId: `${id}-ingest` }],
    },
  ]);
  return id;
}

async function settled(queueName: typeof analyzeQueue | typeof renderQueue, jobIds: string[]) {
  const queue = createQueue(queueName, { connection, prefix: env.config.queuePrefix });
  try {
    return await waitFor(
      async () => {
        // State first: a job read before it finishes would show as finished without its result.
        const states = await Promise.all(jobIds.map((id) => queue.getJobState(id)));
        const jobs = await Promise.all(jobIds.map((id) => queue.getJob(id)));
        if (!states.every((state) => state === 'completed' || state === 'failed')) return undefined;
        return jobs.map((job, k) => ({
          state: states[k],
          reason: job!.failedReason,
          attempts: job!.attemptsMade,
          result: job!.returnvalue as Record<string, any>,
        }));
      },
      50_000,
      `${queueName.name} jobs to finish`,
    );
  } finally {
    await queue.close();
  }
}

describe('startCpuWorker', () => {
  it('sizes its workers from the pool and exposes the event-loop lag on /metrics', async () => {
    expect(cpu.pool.threads).toBe(2);
    // Renders default to one per usable core (RENDER_CONCURRENCY unset), whatever the pool's size.
    expect(cpu.concurrency).toEqual({ analyze: 2, render: usableCores() });
    const body = await (await fetch(`http://127.0.0.1:${cpu.metricsPort}/metrics`)).text();
    expect(body).toMatch(/^nodejs_eventloop_lag_p99_seconds\{service="worker-cpu"\} [0-9.e-]+$/m);
    expect(body).toMatch(/^clipline_cpu_pool_threads\{service="worker-cpu"\} 2$/m);
    expect(body).toMatch(/^clipline_cpu_pool_utilization\{service="worker-cpu"\} /m);
  });

  it('fails bad files fast with a clear reason, keeps going, analyses good ones, reuses same bytes, and renders the clips', async () => {
    const dir = env.config.storageDir;
    const good = await generateVideo({ path: path.join(dir, 'good.mp4'), segments: [2.5, 3, 2.5, 4, 3] });
    const sameBytes = path.join(dir, 'same-bytes.mp4');
    await copyFile(good.path, sameBytes);
    const empty = path.join(dir, 'empty.mp4');
    await writeFile(empty, '');
    const text = path.join(dir, 'text.mp4');
    await writeFile(text, 'not a video\n'.repeat(200));
    const truncated = path.join(dir, 'truncated.mp4');
    await writeFile(truncated, (await readFile(good.path)).subarray(0, 20_000));
    const audioOnly = path.join(dir, 'audio.m4a');
    await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=duration=3', audioOnly]);
    const tenHours = path.join(dir, 'ten-hours.mp4');
    await withClaimedDuration(good.path, tenHours, 10 * 3600);

    const bad = { empty, text, truncated, audioOnly, tenHours };
    const badIds = await Promise.all(Object.values(bad).map(submit));
    const goodId = await submit(good.path);
    const started = Date.now();
    const badResults = await settled(
      analyzeQueue,
      badIds.map((id) => `${id}-analyze`),
    );
    const reasons = Object.fromEntries(Object.keys(bad).map((name, k) => [name, badResults[k]!]));
    expect(reasons.empty).toMatchObject({ state: 'failed', attempts: 1, reason: expect.stringMatching(/not a readable video/) });
    expect(reasons.text).toMatchObject({ state: 'failed', attempts: 1, reason: expect.stringMatching(/not a readable video/) });
    expect(reasons.truncated).toMatchObject({ state: 'failed', attempts: 1, reason: expect.stringMatching(/not a readable video|truncated/) });
    expect(reasons.audioOnly).toMatchObject({ state: 'failed', attempts: 1, reason: 'no video stream (the file holds only audio)' });
    expect(reasons.tenHours).toMatchObject({ state: 'failed', attempts: 1, reason: expect.stringMatching(/10h00m long, more than the 4h00m limit/) });
    expect(Date.now() - started).toBeLessThan(20_000);
    const failedVideo = await videos.find(badIds[4]!);
    expect(failedVideo).toMatchObject({ status: 'failed', error: expect.stringMatching(/^analyze: video is 10h00m long/) });

    // The worker took the good video after the bad ones, then the same bytes again.
    const [first] = await settled(analyzeQueue, [`${goodId}-analyze`]);
    expect(first).toMatchObject({ state: 'completed', result: { reusedFrom: null, sampledFrames: 150 } });
    expect(first!.result.cutSeconds).toEqual([2.5, 5.5, 8, 12]);
    const againId = await submit(sameBytes);
    const [again] = await settled(analyzeQueue, [`${againId}-analyze`]);
    expect(again).toMatchObject({ state: 'completed', result: { reusedFrom: goodId, contentSha256: first!.result.contentSha256 } });
    expect(await analyses.countFrameMetrics(againId)).toBe(150);
    expect(cpu.workers.every((worker) => worker.isRunning())).toBe(true);

    // Render what analysis chose, as the flow will.
    const candidates = first!.result.clipCandidates as ClipCandidate[];
    expect(candidates.length).toBeGreaterThan(0);
    const queue = createQueue(renderQueue, { connection, prefix: env.config.queuePrefix });
    const payloads = renderClipPayloads(goodId, candidates, '1:1');
    await Promise.all(payloads.map((payload) => queue.add('render-clip', payload, { jobId: `${goodId}-render-${payload.clipIndex}` })));
    await queue.close();
    const rendered = await settled(
      renderQueue,
      payloads.map((payload) => `${goodId}-render-${payload.clipIndex}`),
    );
    expect(rendered.map((job) => job.state)).toEqual(payloads.map(() => 'completed'));
    const clips = await analyses.listClips(goodId);
    expect(clips.map((clip) => ({ index: clip.clipIndex, status: clip.status, start: clip.startSeconds, end: clip.endSeconds }))).toEqual(
      candidates.map((candidate, index) => ({ index, status: 'rendered', start: candidate.startSeconds, end: candidate.endSeconds })),
    );
    for (const clip of clips) {
      expect(clip.width).toBe(clip.height);
      expect(Math.abs(clip.durationSeconds! - (clip.endSeconds - clip.startSeconds))).toBeLessThan(0.1);
    }
  });
});
