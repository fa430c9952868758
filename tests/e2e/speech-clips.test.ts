/**
 * Clips on real speech, end to end: a talk of eight espeak-ng sentences with 1 s pauses over one
 * shot, through the real processes (built dist), Redis, PostgreSQL, ffmpeg and the upstream
 * simulator. The transcript is made alongside the analysis; clips start and end between
 * sentences, hold whole sentences, are as many as asked, and are ranked by what is said. A
 * second worker-io without provider keys shows the fallback: pauses from the audio, signals only.
 */
import path from 'node:path';
import { DEV_API_KEY } from '@clipline/shared';
import { createUpstreamSimulator } from '../../infra/upstream-sim/src/index.js';
import { freePort, startApp, stopApp, waitForHttp, type AppName, type RunningApp } from '../helpers/processes.js';
import { createTestEnvironment, waitFor, type TestEnvironment } from '../helpers/services.js';
import { betweenSentences, generateSpokenVideo, type SpokenVideo } from '../helpers/speech-media.js';

import { jest } from '@jest/globals';

jest.setTimeout(420_000);

interface ClipView {
  startSeconds: number;
  endSeconds: number;
  score: number;
  reasons: string[];
  status: string;
  url: string;
}

let env: TestEnvironment;
let appEnv: Record<string, string>;
let producerUrl: string;
const apps = new Map<string, RunningApp>();
let simulator: Awaited<ReturnType<typeof createUpstreamSimulator>> | undefined;
let talk: SpokenVideo;

async function start(name: AppName, extra: Record<string, string> = {}, label: string = name): Promise<void> {
  const app = startApp(name, { ...appEnv, ...extra });
  apps.set(label, app);
  const url =
    name === 'producer'
      ? `${producerUrl}/readyz`
      : `http://127.0.0.1:${extra.WORKER_IO_METRICS_PORT ?? appEnv[name === 'worker-io' ? 'WORKER_IO_METRICS_PORT' : 'WORKER_CPU_METRICS_PORT']}/healthz`;
  await waitForHttp(url, app);
}

async function api(method: string, route: string, body?: unknown) {
  const res = await fetch(`${producerUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function clipsOf(options: Record<string, unknown>): Promise<{ video: Record<string, any>; clips: ClipView[] }> {
  const submitted = await api('POST', '/v1/videos', { source: talk.path, title: 'talk', options });
  expect(submitted.status).toBe(202);
  const video = await waitFor(
    async () => {
      const res = await api('GET', `/v1/videos/${submitted.body.id}`);
      return ['completed', 'failed', 'cancelled'].includes(res.body.status) ? res.body : undefined;
    },
    300_000,
    'the spoken video to finish',
  );
  expect(video.status).toBe('completed');
  return { video, clips: (video.clips as ClipView[]).filter((clip) => clip.status === 'rendered') };
}

/** Boundaries between sentences; whole sentences inside; no two clips overlapping. */
function expectSpeechClips(clips: ClipView[], count: number, minSeconds: number, maxSeconds: number): void {
  expect(clips).toHaveLength(count);
  for (const clip of clips) {
    expect(betweenSentences(talk, clip.startSeconds)).toBe(true);
    expect(betweenSentences(talk, clip.endSeconds)).toBe(true);
    const whole = talk.sentences.filter((sentence) => sentence.startSeconds >= clip.startSeconds && sentence.endSeconds <= clip.endSeconds);
    expect(whole.length).toBeGreaterThan(0);
    expect(clip.endSeconds - clip.startSeconds).toBeGreaterThanOrEqual(minSeconds - 0.01);
    expect(clip.endSeconds - clip.startSeconds).toBeLessThanOrEqual(maxSeconds + 0.01);
  }
  const ordered = [...clips].sort((a, b) => a.startSeconds - b.startSeconds);
  for (let i = 1; i < ordered.length; i++) expect(ordered[i]!.startSeconds).toBeGreaterThanOrEqual(ordered[i - 1]!.endSeconds - 0.001);
}

beforeAll(async () => {
  env = await createTestEnvironment({ LOG_LEVEL: 'warn' });
  const [port, ioPort, cpuPort] = await Promise.all([freePort(), freePort(), freePort()]);
  appEnv = {
    ...env.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    WORKER_IO_METRICS_PORT: String(ioPort),
    WORKER_CPU_METRICS_PORT: String(cpuPort),
    CPU_POOL_THREADS: '2',
  };
  simulator = await createUpstreamSimulator({ seed: 11 });
  appEnv.UPSTREAM_SIM_URL = simulator.url;
  producerUrl = `http://127.0.0.1:${port}`;
  talk = await generateSpokenVideo({ path: path.join(env.config.storageDir, 'talk.mp4') });
  await Promise.all((['producer', 'worker-io', 'worker-cpu'] as const).map((name) => start(name)));
});

afterAll(async () => {
  await Promise.all([...apps.values()].map((app) => stopApp(app, 'SIGKILL')));
  await simulator?.close();
  await env?.cleanup();
});

it('with a transcript: cuts on sentences, ranks by what is said, and gives the count asked for', async () => {
  const { video, clips } = await clipsOf({ clipCount: 3, minClipSeconds: 5, maxClipSeconds: 15 });
  expectSpeechClips(clips, 3, 5, 15);
  // Transcript first: made in the analysis phase, before the clips were chosen.
  const steps = new Map((video.steps as { name: string; status: string; reason: string | null }[]).map((step) => [step.name, step]));
  expect(steps.get('transcribe')?.status).toBe('completed');
  expect(steps.get('persist')?.reason).toBe('cut on transcript sentences; ranked by what is said and by picture and sound');
  expect(video.transcript.segments.length).toBeGreaterThanOrEqual(talk.sentences.length - 1);
  for (const clip of clips) expect(clip.reasons[0]).toMatch(/^content \d+\/100: hook: /);
  // Best first.
  expect(clips.map((clip) => clip.score)).toEqual([...clips.map((clip) => clip.score)].sort((a, b) => b - a));
});

it('honours the count on a longer ask: five clips of 4-10 s, spread over the talk, captions burned in', async () => {
  const { video, clips } = await clipsOf({ clipCount: 5, minClipSeconds: 4, maxClipSeconds: 10, captions: 'burned' });
  expectSpeechClips(clips, 5, 4, 10);
  expect(video.options).toMatchObject({ captions: 'burned' });
  // Downloadable like any clip (the drawing itself is checked frame by frame in worker-cpu's tests).
  const file = await fetch(`${producerUrl}${clips[0]!.url}`, { headers: { authorization: `Bearer ${DEV_API_KEY}` } });
  expect(file.status).toBe(200);
  expect((await file.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
});

it('without a transcription provider: cuts on pauses in the audio, ranks on signals, and says so', async () => {
  // A worker-io without provider keys takes over the I/O queues.
  await stopApp(apps.get('worker-io')!, 'SIGTERM');
  apps.delete('worker-io');
  delete appEnv.UPSTREAM_SIM_URL;
  await start('worker-io', { WORKER_IO_METRICS_PORT: String(await freePort()) }, 'worker-io-plain');
  const { video, clips } = await clipsOf({ clipCount: 3, minClipSeconds: 5, maxClipSeconds: 15 });
  expectSpeechClips(clips, 3, 5, 15);
  const steps = new Map((video.steps as { name: string; status: string; reason: string | null }[]).map((step) => [step.name, step]));
  expect(steps.get('transcribe')).toMatchObject({ status: 'skipped' });
  expect(steps.get('persist')?.reason).toBe('cut on pauses in the audio; ranked by picture and sound only (no OpenAI API key configured (OPENAI_API_KEY))');
  for (const clip of clips) expect(clip.reasons.at(-1)).toBe('ranked on picture and sound only: no OpenAI API key configured (OPENAI_API_KEY)');
});
