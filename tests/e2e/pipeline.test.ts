/**
 * End to end: the four real processes (built dist) on the real Redis, PostgreSQL and ffmpeg.
 * A service submits videos over HTTP; the flow crosses worker-io and worker-cpu; results land
 * in PostgreSQL; Bull Board shows the queues; SIGTERM drains every process.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue } from 'bullmq';
import { allQueues, analyzeQueue, DEV_API_KEY, DEV_DASHBOARD_PASSWORD, DEV_DASHBOARD_USER, VIDEO_STEPS } from '@clipline/shared';
import { createUpstreamSimulator } from '../../infra/upstream-sim/src/index.js';
import { fixtures, itWithFixtures } from '../helpers/fixtures.js';
import { ffprobeDuration, ffprobeStream, generateVideo, loopVideo } from '../helpers/media.js';
import { freePort, startApp, stopApp, waitForHttp, type AppName, type RunningApp } from '../helpers/processes.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../helpers/services.js';

import { jest } from '@jest/globals';

jest.setTimeout(360_000);

let env: TestEnvironment;
let appEnv: Record<string, string>;
let producerUrl: string;
let dashboardUrl: string;
const apps = new Map<AppName, RunningApp>();
let simulator: Awaited<ReturnType<typeof createUpstreamSimulator>> | undefined;

async function start(name: AppName): Promise<RunningApp> {
  const app = startApp(name, appEnv);
  apps.set(name, app);
  const url =
    name === 'producer'
      ? `${producerUrl}/readyz`
      : name === 'dashboard'
        ? `${dashboardUrl}/healthz`
        : `http://127.0.0.1:${appEnv[name === 'worker-io' ? 'WORKER_IO_METRICS_PORT' : 'WORKER_CPU_METRICS_PORT']}/healthz`;
  await waitForHttp(url, app);
  return app;
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
  const res = await api('POST', '/v1/videos', { source, title: path.basename(source) });
  expect(res.status).toBe(202);
  return res.body.id as string;
}

async function settled(id: string, timeoutMs = 240_000): Promise<Record<string, any>> {
  return waitFor(
    async () => {
      const res = await api('GET', `/v1/videos/${id}`);
      return ['completed', 'failed', 'cancelled'].includes(res.body.status) ? res.body : undefined;
    },
    timeoutMs,
    `video ${id} to finish`,
  );
}

beforeAll(async () => {
  env = await createTestEnvironment({ LOG_LEVEL: 'info' });
  const [port, dashboardPort, ioPort, cpuPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  appEnv = {
    ...env.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    DASHBOARD_PORT: String(dashboardPort),
    WORKER_IO_METRICS_PORT: String(ioPort),
    WORKER_CPU_METRICS_PORT: String(cpuPort),
    CPU_POOL_THREADS: '2',
  };
  // The AI providers are the upstream simulator (a real HTTP server with the providers' shapes).
  simulator = await createUpstreamSimulator({ seed: 7 });
  appEnv.UPSTREAM_SIM_URL = simulator.url;
  producerUrl = `http://127.0.0.1:${port}`;
  dashboardUrl = `http://127.0.0.1:${dashboardPort}`;
  await Promise.all((['producer', 'worker-io', 'worker-cpu', 'dashboard'] as const).map(start));
});

afterAll(async () => {
  await Promise.all([...apps.values()].map((app) => stopApp(app, 'SIGKILL')));
  await simulator?.close();
  await env?.cleanup();
});

describe('a submitted video', () => {
  it('flows through every step and lands in PostgreSQL with its true cuts and duration', async () => {
    const video = await generateVideo({
      path: path.join(env.config.storageDir, 'cuts.mp4'),
      segments: [2.4, 1.8, 3.0, 2.2, 2.6, 1.6],
      width: 480,
      height: 270,
      fps: 30,
    });
    const id = await submit(video.path);
    const result = await settled(id);
    expect(result).toMatchObject({ status: 'completed', progress: 100, error: null });
    expect(result.steps.map((step: { name: string; status: string }) => [step.name, step.status])).toEqual([
      ['ingest', 'completed'],
      ['analyze', 'completed'],
      ['transcribe', 'completed'],
      ['persist', 'completed'],
      ['render', 'completed'],
      ['captions', 'completed'],
      ['thumbnail', 'completed'],
      ['voiceover', 'completed'],
    ]);
    // The AI steps ran against the upstream simulator: transcript, and per clip the texts and voice-over.
    expect(result.transcript).toMatchObject({ text: expect.any(String), segments: expect.any(Array) });
    for (const clip of result.clips) {
      expect(clip).toMatchObject({ title: expect.any(String), caption: expect.any(String), hashtags: expect.any(Array), voiceoverUrl: expect.any(String) });
      const voice = await fetch(`${producerUrl}${clip.voiceoverUrl}`, { headers: { authorization: `Bearer ${DEV_API_KEY}` } });
      expect(voice.headers.get('content-type')).toBe('audio/mpeg');
      const thumbnail = await fetch(`${producerUrl}${clip.thumbnailUrl}`, { headers: { authorization: `Bearer ${DEV_API_KEY}` } });
      expect(thumbnail.headers.get('content-type')).toBe('image/png');
    }

    // Clips: listed with scores and reasons, their files downloadable through the API with the same key.
    expect(result.clips.length).toBeGreaterThan(0);
    for (const clip of result.clips as {
      url: string;
      thumbnailUrl: string;
      startSeconds: number;
      endSeconds: number;
      aspect: string;
      score: number;
      reasons: string[];
    }[]) {
      expect(clip).toMatchObject({ aspect: '9:16', status: 'rendered' });
      expect(clip.score).toBeGreaterThanOrEqual(0);
      expect(clip.reasons.length).toBeGreaterThan(0);
      const file = await fetch(`${producerUrl}${clip.url}`, { headers: { authorization: `Bearer ${DEV_API_KEY}` } });
      expect(file.status).toBe(200);
      expect(file.headers.get('content-type')).toBe('video/mp4');
      const local = path.join(env.config.storageDir, `download-${clip.startSeconds}.mp4`);
      await writeFile(local, Buffer.from(await file.arrayBuffer()));
      const probe = await ffprobeStream(local);
      expect(probe.width / probe.height).toBeCloseTo(9 / 16, 2);
      expect(Math.abs(probe.duration - (clip.endSeconds - clip.startSeconds))).toBeLessThan(0.1);
      const thumbnail = await fetch(`${producerUrl}${clip.thumbnailUrl}`, { headers: { authorization: `Bearer ${DEV_API_KEY}` } });
      expect(thumbnail.headers.get('content-type')).toMatch(/^image\/(jpeg|png)$/);
      expect((await thumbnail.arrayBuffer()).byteLength).toBeGreaterThan(500);
      expect((await fetch(`${producerUrl}${clip.url}`)).status).toBe(401);
    }

    const row = await env.db.selectFrom('videos').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(Math.abs(row.duration_seconds! - (await ffprobeDuration(video.path)))).toBeLessThan(0.1);
    expect(row).toMatchObject({ status: 'completed', width: 480, height: 270, fps: 30, has_audio: true });
    const scenes = await env.db.selectFrom('scenes').selectAll().where('video_id', '=', id).orderBy('scene_index').execute();
    const starts = scenes.slice(1).map((scene) => scene.start_seconds);
    expect(starts).toHaveLength(video.cutSeconds.length);
    // Every true cut found within one sampled frame (ANALYZE_FPS=10 → 0.1 s).
    video.cutSeconds.forEach((cut, index) => expect(Math.abs(starts[index]! - cut)).toBeLessThanOrEqual(0.1 + 1e-6));
    expect(result.scenes).toEqual(scenes.map((scene) => ({ startSeconds: scene.start_seconds, endSeconds: scene.end_seconds })));
    const events = await env.db.selectFrom('job_events').select(['step', 'status']).where('video_id', '=', id).execute();
    expect(
      events
        .filter((event) => event.status === 'completed')
        .map((event) => event.step)
        .sort(),
    ).toEqual(['analyze', 'ingest', 'persist']);
  });

  it('fails with a readable reason when the source is not a video or does not exist, and the next video still completes', async () => {
    const text = path.join(env.config.storageDir, 'notes.mp4');
    await writeFile(text, 'meeting notes, definitely not a video\n'.repeat(20));
    const [bad, missing] = await Promise.all([submit(text), submit('/no/such/file.mp4')]);
    const good = await submit((await generateVideo({ path: path.join(env.config.storageDir, 'after.webm'), segments: [1.5, 1.5], audio: false })).path);
    const [badResult, missingResult, goodResult] = await Promise.all([settled(bad), settled(missing), settled(good)]);
    expect(badResult).toMatchObject({ status: 'failed', error: 'ingest: the content is plain text, not a video' });
    expect(badResult.steps.map((step: { status: string }) => step.status)).toEqual(['failed', ...VIDEO_STEPS.slice(1).map(() => 'cancelled')]);
    expect(missingResult).toMatchObject({ status: 'failed', error: 'ingest: source file does not exist: /no/such/file.mp4' });
    expect(goodResult).toMatchObject({ status: 'completed', metadata: { hasAudio: false, videoCodec: 'vp8' } });
  });

  const realVideos = fixtures('video', ['bbb_h264_aac_60s.mp4', 'bbb_vp8_vorbis_30s.webm']);
  itWithFixtures(realVideos, 'processes real H.264/AAC and VP8/Vorbis videos', async () => {
    const ids = await Promise.all(realVideos.files.map(submit));
    for (const [index, id] of ids.entries()) {
      const result = await settled(id);
      expect(result.status).toBe('completed');
      expect(Math.abs(result.metadata.durationSeconds - (await ffprobeDuration(realVideos.files[index]!)))).toBeLessThan(0.1);
      expect(result.metadata).toMatchObject({ width: expect.any(Number), height: expect.any(Number), fps: expect.any(Number), hasAudio: true });
      expect(result.scenes.length).toBeGreaterThan(0);
    }
  });
});

describe('the dashboard', () => {
  it('refuses requests without credentials', async () => {
    const res = await fetch(`${dashboardUrl}/`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect((await fetch(`${dashboardUrl}/api/queues`, { headers: { authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}` } })).status).toBe(
      401,
    );
  });

  it('lists every queue and the finished flows to an operator', async () => {
    // A finished flow of its own, so the completed count does not depend on the tests above.
    const short = await generateVideo({ path: path.join(env.config.storageDir, 'dashboard.webm'), segments: [1.5, 1.5], audio: false });
    expect(await settled(await submit(short.path))).toMatchObject({ status: 'completed' });
    const authorization = `Basic ${Buffer.from(`${DEV_DASHBOARD_USER}:${DEV_DASHBOARD_PASSWORD}`).toString('base64')}`;
    const page = await fetch(`${dashboardUrl}/`, { headers: { authorization } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    const res = await fetch(`${dashboardUrl}/api/queues?activeQueue=pipeline&status=completed&page=1`, { headers: { authorization } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { queues: { name: string; counts: Record<string, number>; jobs: { name: string }[] }[] };
    expect(body.queues.map((queue) => queue.name).sort()).toEqual(allQueues.map((queue) => queue.name).sort());
    const pipeline = body.queues.find((queue) => queue.name === 'pipeline')!;
    expect(pipeline.counts.completed).toBeGreaterThanOrEqual(1);
    expect(pipeline.jobs.some((job) => job.name === 'video-pipeline')).toBe(true);
    const metrics = await (await fetch(`${dashboardUrl}/metrics`)).text();
    expect(metrics).toMatch(/clipline_queue_jobs\{queue="pipeline",state="completed",service="dashboard"\} [1-9]/);
    // Circuit breakers of every worker-io process, as the workers reported them.
    const breakers = (await (await fetch(`${dashboardUrl}/breakers`, { headers: { authorization } })).json()) as {
      breakers: { provider: string; state: string }[];
    };
    expect(breakers.breakers.map((b) => b.provider).sort()).toEqual(['elevenlabs', 'openai', 'stability', 'youtube']);
    expect(breakers.breakers.every((b) => b.state === 'closed')).toBe(true);
    expect(metrics).toMatch(/clipline_breaker_state\{provider="openai",process="[^"]+",service="dashboard"\} 0/);
    const status = await fetch(`${dashboardUrl}/status`, { headers: { authorization } });
    expect(await status.text()).toMatch(/Circuit breakers[\s\S]*openai[\s\S]*closed/);
    expect((await fetch(`${dashboardUrl}/status`)).status).toBe(401);
  });
});

describe('SIGTERM', () => {
  it('drains worker-cpu mid-analysis: it exits cleanly within 10 s, leaves no job active, and another worker finishes the video', async () => {
    // Three minutes of 720p: its analysis outlasts the 2 s the draining worker gives active jobs.
    const minute = await generateVideo({
      path: path.join(env.config.storageDir, 'minute.mp4'),
      segments: [15, 15, 15, 15],
      width: 1280,
      height: 720,
      audio: false,
    });
    const long = path.join(env.config.storageDir, 'long.mp4');
    await loopVideo(minute.path, long, 3);
    const id = await submit(long);
    await waitFor(async () => ((await api('GET', `/v1/videos/${id}`)).body.steps?.[1]?.status === 'active' ? true : undefined), 60_000, 'analysis to start');
    const stopped = await stopApp(apps.get('worker-cpu')!);
    expect(stopped).toMatchObject({ code: 0 });
    expect(stopped.ms).toBeLessThan(10_000);

    const redis = connectRedis(env.config.redisUrl);
    const queue = new Queue(analyzeQueue.name, { connection: redis, prefix: env.config.queuePrefix });
    try {
      expect(await queue.getActiveCount()).toBe(0);
      await start('worker-cpu');
      expect(await settled(id, 240_000)).toMatchObject({ status: 'completed' });
      // The first worker handed the job back instead of failing it; the second one finished it.
      const events = await env.db
        .selectFrom('job_events')
        .select(['status', 'attempt'])
        .where('video_id', '=', id)
        .where('step', '=', 'analyze')
        .orderBy('id')
        .execute();
      expect(events.map((event) => event.status)).toEqual(['active', 'released', 'active', 'completed']);
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });

  it('stops every process cleanly within 10 s', async () => {
    for (const name of ['producer', 'dashboard', 'worker-io', 'worker-cpu'] as const) {
      const app = apps.get(name)!;
      const stopped = await stopApp(app);
      expect({ name, code: stopped.code, output: stopped.code === 0 ? '' : app.output() }).toEqual({ name, code: 0, output: '' });
      expect(stopped.ms).toBeLessThan(10_000);
    }
  });
});
