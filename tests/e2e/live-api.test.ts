/**
 * The live side of the API over the real processes: Server-Sent Events follow a video to the
 * end and resume after a dropped connection; DELETE stops a running analysis (its ffmpeg too).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { jest } from '@jest/globals';
import { DEV_API_KEY, VIDEO_STEPS } from '@clipline/shared';
import { generateVideo } from '../helpers/media.js';
import { freePort, startApp, stopApp, waitForHttp, type AppName, type RunningApp } from '../helpers/processes.js';
import { createTestEnvironment, waitFor, type TestEnvironment } from '../helpers/services.js';

jest.setTimeout(180_000);

let env: TestEnvironment;
let base: string;
const apps: RunningApp[] = [];

beforeAll(async () => {
  env = await createTestEnvironment({ LOG_LEVEL: 'warn' });
  const [port, ioPort, cpuPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const appEnv = {
    ...env.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    WORKER_IO_METRICS_PORT: String(ioPort),
    WORKER_CPU_METRICS_PORT: String(cpuPort),
    CPU_POOL_THREADS: '2',
  };
  base = `http://127.0.0.1:${port}`;
  const urls: Record<string, string> = {
    producer: `${base}/readyz`,
    'worker-io': `http://127.0.0.1:${ioPort}/healthz`,
    'worker-cpu': `http://127.0.0.1:${cpuPort}/healthz`,
  };
  for (const name of ['producer', 'worker-io', 'worker-cpu'] as AppName[]) {
    const app = startApp(name, appEnv);
    apps.push(app);
    await waitForHttp(urls[name]!, app);
  }
});

afterAll(async () => {
  await Promise.all(apps.map((app) => stopApp(app)));
  await env?.cleanup();
});

const headers = { authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json' };

async function submit(source: string): Promise<string> {
  const res = await fetch(`${base}/v1/videos`, { method: 'POST', headers, body: JSON.stringify({ source }) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

interface SseEvent {
  id: number;
  event: string;
  data: { status: string; progress: number; version: number };
}

/** Reads an SSE stream until it ends or `stopAfter` events arrived. */
async function readEvents(id: string, options: { lastEventId?: number; stopAfter?: number } = {}): Promise<SseEvent[]> {
  const controller = new AbortController();
  const res = await fetch(`${base}/v1/videos/${id}/events`, {
    headers: { authorization: headers.authorization, ...(options.lastEventId ? { 'last-event-id': String(options.lastEventId) } : {}) },
    signal: controller.signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let split: number;
      while ((split = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, split);
        buffer = buffer.slice(split + 2);
        const fields = Object.fromEntries(
          block
            .split('\n')
            .filter((line) => line && !line.startsWith(':'))
            .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
        );
        if (fields.data) events.push({ id: Number(fields.id), event: fields.event ?? 'message', data: JSON.parse(fields.data) });
        if (options.stopAfter && events.length >= options.stopAfter) {
          controller.abort();
          return events;
        }
      }
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  }
  return events;
}

describe('GET /v1/videos/:id/events', () => {
  it('streams progress live until the video completes, with increasing ids', async () => {
    const video = await generateVideo({ path: path.join(env.config.storageDir, 'live.mp4'), segments: [4, 4, 4, 4], width: 640, height: 360 });
    const id = await submit(video.path);
    const events = await readEvents(id);
    expect(events.length).toBeGreaterThan(3);
    expect(events.at(-1)).toMatchObject({ event: 'completed', data: { status: 'completed', progress: 100 } });
    const ids = events.map((event) => event.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    const progress = events.map((event) => event.data.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(events.some((event) => event.event === 'progress' && event.data.progress > 10 && event.data.progress < 90)).toBe(true);

    // A client that saw everything up to the last event is told 204 (do not reconnect); one that saw less gets the current state.
    const done = await fetch(`${base}/v1/videos/${id}/events`, {
      headers: { authorization: headers.authorization, 'last-event-id': String(events.at(-1)!.id) },
    });
    expect(done.status).toBe(204);
    const resumed = await readEvents(id, { lastEventId: events[0]!.id });
    expect(resumed).toHaveLength(1);
    expect(resumed[0]).toMatchObject({ id: events.at(-1)!.id, event: 'completed' });
  });
});

describe('DELETE /v1/videos/:id on a running analysis', () => {
  it('stops the analysis and its ffmpeg, and the video ends cancelled', async () => {
    const long = await generateVideo({ path: path.join(env.config.storageDir, 'long.mp4'), segments: [20, 20, 20], width: 1280, height: 720, audio: false });
    const id = await submit(long.path);
    await waitFor(
      async () => {
        const res = await fetch(`${base}/v1/videos/${id}`, { headers });
        const body = (await res.json()) as { steps: { name: string; status: string }[] };
        return body.steps[1]?.status === 'active' ? true : undefined;
      },
      60_000,
      'the analysis to start',
    );
    const ffmpegRunning = () =>
      execFileSync('sh', ['-c', `pgrep -f "[f]fmpeg .*${id}" || true`])
        .toString()
        .trim().length > 0;
    await waitFor(async () => (ffmpegRunning() ? true : undefined), 10_000, 'ffmpeg to run');
    const res = await fetch(`${base}/v1/videos/${id}`, { method: 'DELETE', headers });
    expect(res.status).toBe(202);
    await waitFor(async () => (ffmpegRunning() ? undefined : true), 5_000, 'ffmpeg to be killed').catch((error: Error) => {
      const running = execFileSync('sh', ['-c', `pgrep -af "[f]fmpeg .*${id}" || true`])
        .toString()
        .slice(0, 500);
      throw new Error(`${error.message}; still running: ${running}; worker-cpu said: ${apps[2]!.output().slice(-1500)}`);
    });
    const final = (await (await fetch(`${base}/v1/videos/${id}`, { headers })).json()) as { status: string; steps: { name: string; status: string }[] };
    expect(final.status).toBe('cancelled');
    // The transcript runs beside the analysis: without a provider key it was skipped before the cancel came.
    const transcript = final.steps.find((step) => step.name === 'transcribe')?.status;
    expect(['skipped', 'cancelled']).toContain(transcript);
    expect(final.steps.filter((step) => step.name !== 'transcribe').map((step) => step.status)).toEqual([
      'completed',
      ...VIDEO_STEPS.slice(1)
        .filter((name) => name !== 'transcribe')
        .map(() => 'cancelled'),
    ]);
    await waitFor(
      async () => {
        const rows = await env.db.selectFrom('job_events').select('status').where('video_id', '=', id).where('step', '=', 'analyze').execute();
        return rows.some((row) => row.status === 'cancelled') ? true : undefined;
      },
      5_000,
      'the analyze step to record its cancellation',
    );
  });
});

describe('POST /v1/users through the workers', () => {
  it('hashes the password in the CPU pool, activates the user and welcomes them', async () => {
    const password = 'violet-Harbor-92-saunter-gently';
    const res = await fetch(`${base}/v1/users`, { method: 'POST', headers, body: JSON.stringify({ email: 'lin@example.com', password, name: 'Lin' }) });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const user = await waitFor(
      async () => {
        const body = (await (await fetch(`${base}/v1/users/${id}`, { headers })).json()) as { status: string; welcomedAt: string | null };
        return body.status === 'active' && body.welcomedAt ? body : undefined;
      },
      30_000,
      'the user to be active and welcomed',
    );
    expect(user).toMatchObject({ status: 'active', email: 'lin@example.com' });
    const row = await env.db.selectFrom('users').select('password_hash').where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^\$scrypt\$ln=17,r=8,p=1\$/);
    const { verifyPassword } = await import('../../apps/worker-cpu/src/crypto/password-hash.js');
    expect(verifyPassword(password, row.password_hash!)).toBe(true);
    expect(verifyPassword('violet-Harbor-92-saunter-gentlx', row.password_hash!)).toBe(false);
    const logs = apps.map((app) => app.output()).join('\n');
    expect(logs).not.toContain(password);
  });
});
