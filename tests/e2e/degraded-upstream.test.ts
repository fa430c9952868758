/**
 * Degrade, don't fail: the real processes (built dist) on real Redis, PostgreSQL and ffmpeg,
 * with every AI provider behind the upstream simulator. With half of all upstream calls failing,
 * the providers' breakers keep opening; jobs that meet an open breaker wait for it (no attempt
 * spent), so every step of every video completes. An upstream that stays down past
 * PROVIDER_OUTAGE_MAX_SECONDS has its optional step skipped with that reason, and the video
 * still completes.
 */
import path from 'node:path';
import { DEV_API_KEY, VIDEO_STEPS } from '@clipline/shared';
import { createUpstreamSimulator, type UpstreamSimulator } from '../../infra/upstream-sim/src/index.js';
import { generateVideo } from '../helpers/media.js';
import { freePort, startApp, stopApp, waitForHttp, type AppName, type RunningApp } from '../helpers/processes.js';
import { createTestEnvironment, waitFor, type TestEnvironment } from '../helpers/services.js';

import { jest } from '@jest/globals';

jest.setTimeout(360_000);

const VIDEOS = 3;
/**
 * Breakers for a test: open for one second, then a trial; and a judgement a handful of calls can
 * reach (the defaults want five calls in ten seconds, more than one test video's worth), so that
 * a job meeting failures waits for the breaker instead of first spending its attempts, whose
 * exponential backoff (2, 4, 8, 16 s) would make the test slow, not red.
 */
const FAST_BREAKERS = {
  PROVIDER_BREAKER_RESET_MS: '1000',
  PROVIDER_BREAKER_WINDOW_MS: '5000',
  PROVIDER_BREAKER_VOLUME_THRESHOLD: '2',
  PROVIDER_BREAKER_ERROR_PERCENT: '25',
};

let env: TestEnvironment;
let sim: UpstreamSimulator;
let baseEnv: Record<string, string>;
let producerUrl: string;
const running: RunningApp[] = [];

async function start(name: AppName, variables: Record<string, string> = {}): Promise<{ app: RunningApp; metricsUrl?: string }> {
  const port = String(await freePort());
  const portVariable = name === 'worker-io' ? 'WORKER_IO_METRICS_PORT' : name === 'worker-cpu' ? 'WORKER_CPU_METRICS_PORT' : 'PORT';
  const app = startApp(name, { ...baseEnv, ...variables, [portVariable]: port });
  running.push(app);
  if (name === 'producer') {
    producerUrl = `http://127.0.0.1:${port}`;
    await waitForHttp(`${producerUrl}/readyz`, app);
    return { app };
  }
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, app);
  return { app, metricsUrl: `http://127.0.0.1:${port}/metrics` };
}

async function api(method: string, route: string, body?: unknown) {
  const res = await fetch(`${producerUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function submit(source: string): Promise<string> {
  const res = await api('POST', '/v1/videos', { source, title: path.basename(source), options: { clipCount: 2, minClipSeconds: 2, maxClipSeconds: 4 } });
  expect(res.status).toBe(202);
  return res.body.id as string;
}

/** The finished video; on a timeout, the error names the steps it was still in. */
async function settled(id: string, timeoutMs: number): Promise<Record<string, any>> {
  let seen: Record<string, any> | undefined;
  try {
    return await waitFor(
      async () => {
        seen = (await api('GET', `/v1/videos/${id}`)).body;
        return ['completed', 'failed', 'cancelled'].includes(seen.status) ? seen : undefined;
      },
      timeoutMs,
      `video ${id} to finish`,
    );
  } catch (error) {
    const steps = (seen?.steps ?? []).map((step: { name: string; status: string; attempts: number; reason: string | null }) =>
      [step.name, step.status, step.attempts, step.reason].join(' '),
    );
    throw new Error(`${(error as Error).message}; steps: ${steps.join(' | ')}`);
  }
}

/** Sum of a counter's samples whose labels include `labels`, over the given /metrics pages. */
async function counterSum(urls: string[], name: string, labels: Record<string, string> = {}): Promise<number> {
  let sum = 0;
  for (const url of urls) {
    for (const line of (await (await fetch(url)).text()).split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) sum += Number(line.split(' ').at(-1));
    }
  }
  return sum;
}

const stepStates = (video: Record<string, any>) => video.steps.map((step: { name: string; status: string }) => [step.name, step.status]);

beforeAll(async () => {
  env = await createTestEnvironment({ LOG_LEVEL: 'warn' });
  sim = await createUpstreamSimulator({ seed: 11 });
  baseEnv = { ...env.env, HOST: '127.0.0.1', CPU_POOL_THREADS: '2', UPSTREAM_SIM_URL: sim.url, ...FAST_BREAKERS };
  await Promise.all([start('producer'), start('worker-cpu')]);
});

afterAll(async () => {
  await Promise.all(running.map((app) => stopApp(app, 'SIGKILL')));
  await sim?.close();
  await env?.cleanup();
});

describe('half of all upstream calls failing', () => {
  let workers: { app: RunningApp; metricsUrl?: string }[] = [];

  afterAll(async () => {
    await Promise.all(workers.map(({ app }) => stopApp(app)));
  });

  it('still completes every step of every video: jobs that meet an open breaker wait for it', async () => {
    sim.configure({ all: { errorRate: 0.5, errorStatus: 503 } });
    // Two worker-io processes, each with breakers of its own, share the AI queues.
    workers = await Promise.all([start('worker-io'), start('worker-io')]);
    const sources = await Promise.all(
      Array.from({ length: VIDEOS }, (_, index) =>
        generateVideo({ path: path.join(env.config.storageDir, `degraded-${index}.mp4`), segments: [2, 2, 2], width: 192, height: 108 }),
      ),
    );
    const ids = await Promise.all(sources.map((source) => submit(source.path)));
    // Generous: on a loaded machine the ffmpeg steps alone can take a minute; the AI steps are the test.
    const results = await Promise.all(ids.map((id) => settled(id, 180_000)));

    for (const video of results) {
      expect(video.status).toBe('completed');
      expect(stepStates(video)).toEqual(VIDEO_STEPS.map((step) => [step, 'completed']));
      // Each AI step did its work: a transcript, and per clip texts, a generated thumbnail and a voice-over.
      expect(video.transcript).toMatchObject({ text: expect.any(String) });
      expect(video.clips.length).toBeGreaterThan(0);
      for (const clip of video.clips) {
        expect(clip).toMatchObject({ title: expect.any(String), caption: expect.any(String), voiceoverUrl: expect.any(String) });
        const thumbnail = await fetch(`${producerUrl}${clip.thumbnailUrl}`, { headers: { authorization: `Bearer ${DEV_API_KEY}` } });
        expect(thumbnail.headers.get('content-type')).toBe('image/png');
      }
    }
    // The faults were real: the simulator failed calls, breakers opened and jobs were deferred.
    const served = sim.stats().endpoints;
    const failures = Object.values(served).reduce((sum, endpoint) => sum + (endpoint.statuses['503'] ?? 0), 0);
    expect(failures).toBeGreaterThan(10);
    const metricsUrls = workers.map(({ metricsUrl }) => metricsUrl!);
    expect(await counterSum(metricsUrls, 'clipline_provider_outage_deferrals_total')).toBeGreaterThan(0);
  });
});

describe('an upstream down for good', () => {
  it('skips its optional step past PROVIDER_OUTAGE_MAX_SECONDS with that reason; the video completes', async () => {
    sim.configure({ all: { errorRate: 0 }, endpoints: { 'stability.text-to-image': { errorRate: 1, errorStatus: 503 } } });
    // A breaker that judges a dead upstream after two failures, and a 3 s horizon.
    await start('worker-io', { PROVIDER_OUTAGE_MAX_SECONDS: '3', PROVIDER_BREAKER_VOLUME_THRESHOLD: '2' });
    const source = await generateVideo({ path: path.join(env.config.storageDir, 'no-images.mp4'), segments: [2, 2, 2], width: 192, height: 108 });
    const video = await settled(await submit(source.path), 120_000);

    expect(video.status).toBe('completed');
    const thumbnail = video.steps.find((step: { name: string }) => step.name === 'thumbnail');
    expect(thumbnail.status).toBe('skipped');
    expect(thumbnail.reason).toMatch(/^gave up waiting for stability: unavailable for [\d.]+ s, the limit is 3 s \(PROVIDER_OUTAGE_MAX_SECONDS\)/);
    expect(stepStates(video).filter(([name]: [string]) => name !== 'thumbnail')).toEqual(
      VIDEO_STEPS.filter((step) => step !== 'thumbnail').map((step) => [step, 'completed']),
    );
    // Every clip keeps its sharpest frame as the thumbnail.
    for (const clip of video.clips) {
      const file = await fetch(`${producerUrl}${clip.thumbnailUrl}`, { headers: { authorization: `Bearer ${DEV_API_KEY}` } });
      expect(file.headers.get('content-type')).toBe('image/jpeg');
    }
  });
});
