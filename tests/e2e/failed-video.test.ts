/**
 * A video that fails stops the optional work still running for it: the real processes (built
 * dist) on real Redis, PostgreSQL and ffmpeg, OpenAI behind the upstream simulator. The
 * transcript of a video is in flight (the simulator holds the call for a minute) when analysis
 * refuses the video; worker-io hears of the failure, aborts the call and records the step as
 * stopped, instead of paying for a transcript of a failed video.
 */
import path from 'node:path';
import { DEV_API_KEY } from '@clipline/shared';
import { createUpstreamSimulator, type UpstreamSimulator } from '../../infra/upstream-sim/src/index.js';
import { generateVideo } from '../helpers/media.js';
import { freePort, startApp, stopApp, waitForHttp, type AppName, type RunningApp } from '../helpers/processes.js';
import { createTestEnvironment, waitFor, type TestEnvironment } from '../helpers/services.js';

import { jest } from '@jest/globals';

jest.setTimeout(180_000);

/** How long the simulator holds a transcription: far longer than the test waits for the stop. */
const TRANSCRIPTION_HOLD_MS = 60_000;

let env: TestEnvironment;
let sim: UpstreamSimulator;
let baseEnv: Record<string, string>;
let producerUrl: string;
const running: RunningApp[] = [];

async function start(name: AppName, variables: Record<string, string> = {}): Promise<void> {
  const port = String(await freePort());
  const portVariable = name === 'worker-io' ? 'WORKER_IO_METRICS_PORT' : name === 'worker-cpu' ? 'WORKER_CPU_METRICS_PORT' : 'PORT';
  const app = startApp(name, { ...baseEnv, ...variables, [portVariable]: port });
  running.push(app);
  if (name === 'producer') producerUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(name === 'producer' ? `${producerUrl}/readyz` : `http://127.0.0.1:${port}/healthz`, app);
}

async function video(id: string): Promise<Record<string, any>> {
  const res = await fetch(`${producerUrl}/v1/videos/${id}`, { headers: { authorization: `Bearer ${DEV_API_KEY}` } });
  return (await res.json()) as Record<string, any>;
}

const stepOf = (view: Record<string, any>, name: string) => view.steps.find((step: { name: string }) => step.name === name);

beforeAll(async () => {
  env = await createTestEnvironment({ LOG_LEVEL: 'warn' });
  sim = await createUpstreamSimulator({ seed: 5 });
  sim.configure({ endpoints: { 'openai.audio.transcriptions': { latency: { kind: 'fixed', ms: TRANSCRIPTION_HOLD_MS } } } });
  baseEnv = { ...env.env, HOST: '127.0.0.1', CPU_POOL_THREADS: '2', UPSTREAM_SIM_URL: sim.url };
  // No worker-cpu yet: the video waits at analysis while its transcript is requested.
  await Promise.all([start('producer'), start('worker-io')]);
});

afterAll(async () => {
  await Promise.all(running.map((app) => stopApp(app, 'SIGKILL')));
  await sim?.close();
  await env?.cleanup();
});

it('aborts the transcript in flight when analysis fails the video, and marks the step stopped', async () => {
  // 30 s with sound: over the 10 s this test's worker-cpu accepts.
  const source = await generateVideo({ path: path.join(env.config.storageDir, 'too-long.mp4'), segments: [10, 10, 10], width: 160, height: 90 });
  const res = await fetch(`${producerUrl}/v1/videos`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ source: source.path }),
  });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };

  const transcriptions = () => sim.stats().endpoints['openai.audio.transcriptions'];
  await waitFor(async () => (transcriptions().inFlight === 1 ? true : undefined), 60_000, 'the transcription call to reach the simulator');
  expect(stepOf(await video(id), 'transcribe').status).toBe('active');

  const failedAt = Date.now();
  await start('worker-cpu', { MAX_SOURCE_SECONDS: '10' });
  const failed = await waitFor(
    async () => {
      const view = await video(id);
      return view.status === 'failed' && stepOf(view, 'transcribe').status !== 'active' ? view : undefined;
    },
    40_000,
    'the video to fail',
  );
  expect(failed.error).toMatch(/^analyze: video is 30s long, more than the 10s limit \(MAX_SOURCE_SECONDS\)/);
  expect(stepOf(failed, 'analyze')).toMatchObject({ status: 'failed' });
  expect(stepOf(failed, 'transcribe')).toMatchObject({ status: 'cancelled', reason: 'stopped: analyze failed' });

  // The call itself was dropped long before the simulator would have answered it.
  await waitFor(async () => (transcriptions().inFlight === 0 ? true : undefined), 20_000, 'the transcription call to be dropped');
  expect(Date.now() - failedAt).toBeLessThan(TRANSCRIPTION_HOLD_MS / 2);
  const call = sim.stats().requests.find((request) => request.endpoint === 'openai.audio.transcriptions')!;
  expect(call.status).toBeNull();
  expect(transcriptions().requests).toBe(1);
  // Nothing was written for it afterwards: no transcript on the failed video.
  expect((await video(id)).transcript ?? null).toBeNull();
});
