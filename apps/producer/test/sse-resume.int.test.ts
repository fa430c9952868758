/**
 * Resuming a video's event stream in the middle, against the real producer listening on a port:
 * with the `Last-Event-ID` header and with `?lastEventId=`. The video's changes are driven
 * through the repository one at a time, each waited for, so every change has an event of its
 * own. A resumed stream sends only events after the given id, repeats none of what the client
 * had, and misses none of what happened while it was away (the first event after resuming is
 * the video as it is now) or after it came back.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { closeServer, createService, DEV_API_KEY, type ServiceContext } from '@clipline/shared';
import { buildProducer } from '../src/producer.js';
import { createProducerServer } from '../src/server.js';
import { createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

const auth = { authorization: `Bearer ${DEV_API_KEY}` };
let env: TestEnvironment;
let service: ServiceContext;
let producer: ReturnType<typeof buildProducer>;
let server: http.Server;
let base: string;

beforeAll(async () => {
  env = await createTestEnvironment({ API_RATE_LIMIT_PER_MINUTE: '0' });
  service = createService('producer', env.config);
  producer = buildProducer(service);
  server = createProducerServer(producer.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (producer.redis.status !== 'ready') await new Promise((resolve) => producer.redis.once('ready', resolve));
});

afterAll(async () => {
  server?.closeAllConnections();
  if (server) await closeServer(server);
  await service?.shutdown.shutdown('tests done');
  await env?.cleanup();
});

interface SseEvent {
  id: number;
  event: string;
  status: string;
  progress: number;
}

/** One open event stream: the events parsed so far, and whether the server ended it. */
class OpenStream {
  readonly events: SseEvent[] = [];
  ended = false;
  private buffer = '';

  constructor(readonly response: http.IncomingMessage) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      this.buffer += chunk;
      let end: number;
      while ((end = this.buffer.indexOf('\n\n')) >= 0) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const fields = Object.fromEntries(
          block
            .split('\n')
            .filter((line) => !line.startsWith(':') && line.includes(': '))
            .map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]),
        );
        if (fields.id === undefined) continue;
        const data = JSON.parse(fields.data) as { status: string; progress: number };
        this.events.push({ id: Number(fields.id), event: fields.event, status: data.status, progress: data.progress });
      }
    });
    response.on('end', () => (this.ended = true));
    response.on('close', () => (this.ended = true));
  }

  /** Waits until `count` events arrived in all; fails if the stream ends first. */
  async received(count: number): Promise<SseEvent[]> {
    return waitFor(
      async () => {
        if (this.events.length >= count) return this.events.slice();
        if (this.ended) throw new Error(`the stream ended after ${this.events.length} events: ${JSON.stringify(this.events)}`);
        return undefined;
      },
      15_000,
      `event ${count} of the stream`,
    );
  }

  async endedByServer(): Promise<void> {
    await waitFor(async () => (this.ended ? true : undefined), 15_000, 'the server to end the stream');
  }

  close(): void {
    this.response.destroy();
  }
}

type Resume = 'header' | 'query';

function open(videoId: string, resume?: { how: Resume; lastEventId: number }): Promise<OpenStream> {
  const query = resume?.how === 'query' ? `?lastEventId=${resume.lastEventId}` : '';
  const headers = { ...auth, accept: 'text/event-stream', ...(resume?.how === 'header' ? { 'last-event-id': String(resume.lastEventId) } : {}) };
  return new Promise((resolve, reject) => {
    http
      .get(`${base}/v1/videos/${videoId}/events${query}`, { headers }, (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          reject(new Error(`the stream answered ${response.statusCode}`));
          return;
        }
        resolve(new OpenStream(response));
      })
      .on('error', reject);
  });
}

/** The status code of opening a stream, for the answers that are not a stream. */
function statusOfOpening(videoId: string, how: Resume, lastEventId: number): Promise<number> {
  const query = how === 'query' ? `?lastEventId=${lastEventId}` : '';
  const headers = { ...auth, ...(how === 'header' ? { 'last-event-id': String(lastEventId) } : {}) };
  return new Promise((resolve, reject) => {
    http
      .get(`${base}/v1/videos/${videoId}/events${query}`, { headers }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
        response.destroy();
      })
      .on('error', reject);
  });
}

async function submitted(): Promise<string> {
  const res = await request(producer.app).post('/v1/videos').set(auth).send({ source: 'https://cdn.example.com/resume.mp4' });
  expect(res.status).toBe(202);
  return res.body.id as string;
}

describe.each<Resume>(['header', 'query'])('resuming an event stream (Last-Event-ID by %s)', (how) => {
  it('sends only what came after the given id: nothing the client had, nothing it missed', async () => {
    const id = await submitted();
    const first = await open(id);
    const [start] = await first.received(1);
    expect(start).toMatchObject({ event: 'progress', status: 'queued', progress: 0 });
    const v0 = start!.id;

    // Connected: every change, waited for one by one, is an event of its own.
    await producer.videos.raiseProgress(id, 10);
    await first.received(2);
    await producer.videos.setStatus(id, 'processing');
    await first.received(3);
    await producer.videos.raiseProgress(id, 20);
    const before = await first.received(4);
    expect(before).toEqual([
      { id: v0, event: 'progress', status: 'queued', progress: 0 },
      { id: v0 + 1, event: 'progress', status: 'queued', progress: 10 },
      { id: v0 + 2, event: 'progress', status: 'processing', progress: 10 },
      { id: v0 + 3, event: 'progress', status: 'processing', progress: 20 },
    ]);
    first.close();
    await first.endedByServer();

    // Away: two changes happen.
    await producer.videos.raiseProgress(id, 30);
    await producer.videos.raiseProgress(id, 40);

    // Back with the last id the client saw: the first event is the video as it is now.
    const second = await open(id, { how, lastEventId: v0 + 3 });
    await second.received(1);
    await producer.videos.raiseProgress(id, 50);
    await second.received(2);
    await producer.videos.setStatus(id, 'completed');
    await second.endedByServer();
    expect(second.events).toEqual([
      { id: v0 + 5, event: 'progress', status: 'processing', progress: 40 },
      { id: v0 + 6, event: 'progress', status: 'processing', progress: 50 },
      { id: v0 + 7, event: 'completed', status: 'completed', progress: 100 },
    ]);
    const ids = [...before, ...second.events].map((event) => event.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));

    // Resuming after the terminal event: nothing left to send, and 204 says do not reconnect.
    expect(await statusOfOpening(id, how, v0 + 7)).toBe(204);
  });

  it('sends nothing again when the client already has the current state, then the next change', async () => {
    const id = await submitted();
    await producer.videos.setStatus(id, 'processing');
    await producer.videos.raiseProgress(id, 35);
    const current = (await request(producer.app).get(`/v1/videos/${id}`).set(auth)).body as { progress: number };
    expect(current.progress).toBe(35);
    const probe = await open(id);
    const [now] = await probe.received(1);
    probe.close();

    const resumed = await open(id, { how, lastEventId: now!.id });
    await producer.videos.raiseProgress(id, 60);
    await resumed.received(1);
    await producer.videos.setStatus(id, 'failed', { error: 'given up' });
    await resumed.endedByServer();
    expect(resumed.events).toEqual([
      { id: now!.id + 1, event: 'progress', status: 'processing', progress: 60 },
      { id: now!.id + 2, event: 'failed', status: 'failed', progress: 60 },
    ]);
  });
});
