/**
 * The client's own protocol code — retries with backoff and Retry-After, idempotency keys,
 * timeouts, the event-stream reader with Last-Event-ID resumption, and downloads taken up
 * where they broke off — against a small local
 * HTTP server that answers the way the producer's contract says it may.
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../../../tests/helpers/services.js';
import { json, openStream, problem, sendEvent, videoBody } from './fake-api.js';
import {
  ClipLineApiError,
  ClipLineConnectionError,
  ClipLineProtocolError,
  createClient,
  type ClientOptions,
  type RetryNotice,
  type VideoEvent,
} from '../src/index.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The server saw the connection of this request close. */
  closed: boolean;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, index: number) => void;

let server: http.Server;
let baseUrl: string;
let handler: Handler;
let seen: Seen[];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const request: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, closed: false };
      seen.push(request);
      res.on('close', () => (request.closed = true));
      handler(req, res, seen.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

beforeEach(() => {
  seen = [];
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const VIDEO_ID = '3f1c2b9a-7d4e-4c1a-9b2f-0e6d5a4c3b21';

function client(options: Partial<ClientOptions> = {}) {
  return createClient({ baseUrl, apiKey: 'test-key', retry: { baseDelayMs: 10, maxDelayMs: 50 }, ...options });
}

async function collect(events: AsyncIterable<VideoEvent>): Promise<string[]> {
  const seenEvents: string[] = [];
  for await (const event of events) seenEvents.push(`${event.id}:${event.type}:${event.video.progress}`);
  return seenEvents;
}

describe('requests and retries', () => {
  it('sends the bearer key and JSON, and reads the JSON answer', async () => {
    handler = (_req, res) => json(res, 200, videoBody(VIDEO_ID, 'queued', 0));
    const video = await client().getVideo(VIDEO_ID);
    expect(video.status).toBe('queued');
    expect(seen[0]).toMatchObject({ method: 'GET', url: `/v1/videos/${VIDEO_ID}`, headers: { authorization: 'Bearer test-key', accept: 'application/json' } });
  });

  it('keeps a path prefix of the base URL and percent-encodes ids', async () => {
    handler = (_req, res) => json(res, 200, videoBody(VIDEO_ID, 'queued', 0));
    await createClient({ baseUrl: `${baseUrl}/clipline/`, apiKey: 'k' }).getVideo('a/b c');
    expect(seen[0]!.url).toBe('/clipline/v1/videos/a%2Fb%20c');
  });

  it('refuses an empty id, "." and "..", which would name another route, before any request', async () => {
    handler = (_req, res) => json(res, 200, videoBody(VIDEO_ID, 'queued', 0));
    const api = client();
    await expect(api.getVideo('')).rejects.toThrow('expected an id, got ""');
    await expect(api.cancelVideo('.')).rejects.toThrow('expected an id, got "."');
    await expect(api.getJob('..', 'x')).rejects.toThrow('expected an id, got ".."');
    await expect(api.submitJob('..', 'videos', {})).rejects.toThrow(TypeError);
    expect(seen).toEqual([]);
  });

  it('waits out Retry-After on a 503 for a GET, tells onRetry, then succeeds', async () => {
    handler = (_req, res, index) =>
      index === 0
        ? json(res, 503, problem(503, 'Service Unavailable', 'queue down'), { 'retry-after': '1' })
        : json(res, 200, videoBody(VIDEO_ID, 'queued', 0));
    const notices: RetryNotice[] = [];
    const started = performance.now();
    await client({ onRetry: (notice) => notices.push(notice) }).getVideo(VIDEO_ID);
    const elapsed = performance.now() - started;
    expect(seen).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(notices).toEqual([expect.objectContaining({ retry: 1, reason: '503 Service Unavailable', method: 'GET' })]);
    expect(notices[0]!.delayMs).toBeGreaterThanOrEqual(1000);
  });

  it('gives a submission an Idempotency-Key and repeats it with the same key after a 429', async () => {
    handler = (_req, res, index) =>
      index === 0
        ? json(res, 429, problem(429, 'Too Many Requests', 'slow down'), { 'retry-after': '0' })
        : json(res, 202, { id: VIDEO_ID, status: 'queued', links: { self: '' } });
    const accepted = await client().submitVideo({ source: '/a.mp4', options: { aspect: '9:16' } });
    expect(accepted.id).toBe(VIDEO_ID);
    expect(seen).toHaveLength(2);
    const key = seen[0]!.headers['idempotency-key'];
    expect(key).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[1]!.headers['idempotency-key']).toBe(key);
    expect(JSON.parse(seen[1]!.body)).toEqual({ source: '/a.mp4', options: { aspect: '9:16' } });
    expect(seen[0]!.headers['content-type']).toBe('application/json');
  });

  it('uses a caller-chosen key, and a different random key for each call', async () => {
    handler = (_req, res) => json(res, 202, { id: VIDEO_ID, status: 'queued', links: { self: '' } });
    const api = client();
    await api.submitVideo({ source: '/a.mp4' }, { idempotencyKey: 'order-17' });
    await api.submitVideo({ source: '/a.mp4' });
    await api.submitVideo({ source: '/a.mp4' });
    expect(seen[0]!.headers['idempotency-key']).toBe('order-17');
    expect(seen[1]!.headers['idempotency-key']).not.toBe(seen[2]!.headers['idempotency-key']);
  });

  it('never repeats a POST that carries no Idempotency-Key', async () => {
    handler = (_req, res) => json(res, 503, problem(503, 'Service Unavailable', 'queue down'), { 'retry-after': '0' });
    const error = await client()
      .submitVideo({ source: '/a.mp4' }, { idempotencyKey: false })
      .catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(ClipLineApiError);
    expect(error).toMatchObject({ status: 503, retryAfterMs: 0, problem: { detail: 'queue down' } });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['idempotency-key']).toBeUndefined();
  });

  it('registers a user without a key (and so without retries) unless one is given', async () => {
    handler = (_req, res) => json(res, 503, problem(503, 'Service Unavailable', 'queue down'), { 'retry-after': '0' });
    await expect(client().registerUser({ email: 'a@example.com', password: 'correct horse battery staple' })).rejects.toMatchObject({ status: 503 });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['idempotency-key']).toBeUndefined();
  });

  it('gives up after the configured retries with the last error', async () => {
    handler = (_req, res) => json(res, 503, problem(503, 'Service Unavailable', 'still down'));
    await expect(client({ retry: { retries: 2, baseDelayMs: 5 } }).getVideo(VIDEO_ID)).rejects.toMatchObject({
      status: 503,
      message: expect.stringContaining('still down'),
    });
    expect(seen).toHaveLength(3);
  });

  it('does not wait when Retry-After is longer than the policy allows', async () => {
    handler = (_req, res) => json(res, 429, problem(429, 'Too Many Requests', 'retry in 120 s'), { 'retry-after': '120' });
    const notices: RetryNotice[] = [];
    await expect(client({ retry: { maxRetryAfterMs: 10_000 }, onRetry: (notice) => notices.push(notice) }).getVideo(VIDEO_ID)).rejects.toMatchObject({
      status: 429,
      retryAfterMs: 120_000,
    });
    expect(notices).toEqual([]);
    expect(seen).toHaveLength(1);
  });

  it('retries a keyed request while the server says the first one with that key is still running (409 + Retry-After)', async () => {
    handler = (_req, res, index) =>
      index === 0
        ? json(res, 409, problem(409, 'Conflict', 'in progress'), { 'retry-after': '0' })
        : json(res, 202, { id: VIDEO_ID, status: 'queued', links: { self: '' } });
    await expect(client().submitVideo({ source: '/a.mp4' })).resolves.toMatchObject({ id: VIDEO_ID });
    expect(seen).toHaveLength(2);
  });

  it('waits for a first request still running without spending its retries: a timed-out submission is not reported failed', async () => {
    // The first attempt times out, then six answers say the first request with the key still runs,
    // then it has finished and is replayed: more 409s than the three retries allowed.
    handler = (_req, res, index) => {
      if (index === 0) return;
      if (index <= 6) return json(res, 409, problem(409, 'Conflict', 'in progress'), { 'retry-after': '0' });
      return json(res, 202, { id: VIDEO_ID, status: 'queued', links: { self: '' } });
    };
    const api = client({ timeoutMs: 300, retry: { retries: 3, baseDelayMs: 10, maxDelayMs: 50 } });
    await expect(api.submitVideo({ source: '/a.mp4' })).resolves.toMatchObject({ id: VIDEO_ID });
    expect(seen).toHaveLength(8);
    expect(new Set(seen.map((request) => request.headers['idempotency-key'])).size).toBe(1);
  });

  it('takes a repeated cancel that finds the video cancelled, after the first answer was lost, as done', async () => {
    // The first DELETE cancels, but its connection breaks before the answer arrives.
    handler = (req, res, index) => {
      if (index === 0) return req.socket.destroy();
      json(res, 409, { ...problem(409, 'Conflict', 'video already finished (cancelled)'), videoStatus: 'cancelled' });
    };
    await expect(client().cancelVideo(VIDEO_ID)).resolves.toEqual({ id: VIDEO_ID, status: 'cancelled' });
    expect(seen.map((request) => request.method)).toEqual(['DELETE', 'DELETE']);
    // Without a lost first answer, the 409 is the answer: the video finished before this cancel.
    seen = [];
    handler = (_req, res) => json(res, 409, { ...problem(409, 'Conflict', 'video already finished (cancelled)'), videoStatus: 'cancelled' });
    await expect(client().cancelVideo(VIDEO_ID)).rejects.toMatchObject({ status: 409 });
    handler = (req, res, index) => {
      if (index === 1) return req.socket.destroy();
      json(res, 409, { ...problem(409, 'Conflict', 'video already finished (completed)'), videoStatus: 'completed' });
    };
    await expect(client().cancelVideo(VIDEO_ID)).rejects.toMatchObject({ status: 409 });
  });

  it('does not retry refusals: a 400 keeps the problem with its field errors, a 409 without Retry-After is final', async () => {
    handler = (_req, res) => json(res, 400, { ...problem(400, 'Bad Request', 'source: required'), errors: [{ path: 'source', message: 'required' }] });
    const error = (await client()
      .submitVideo({ source: '' })
      .catch((failure: unknown) => failure)) as ClipLineApiError;
    expect(error.problem.errors).toEqual([{ path: 'source', message: 'required' }]);
    expect(error.message).toBe('POST /v1/videos failed with 400 Bad Request: source: required');
    handler = (_req, res) => json(res, 409, problem(409, 'Conflict', 'video already finished'));
    await expect(client().cancelVideo(VIDEO_ID)).rejects.toMatchObject({ status: 409 });
    expect(seen).toHaveLength(2);
  });

  it('follows no redirect, and names where it pointed: the key is not sent on, a POST not turned into a GET', async () => {
    handler = (_req, res) => {
      res.writeHead(301, { location: 'https://elsewhere.example/v1/videos' });
      res.end();
    };
    await expect(client().submitVideo({ source: '/media/a.mp4' })).rejects.toMatchObject({
      status: 301,
      problem: {
        detail: expect.stringMatching(/^the server redirected POST \/v1\/videos to https:\/\/elsewhere\.example\/v1\/videos; .*\(CLIPLINE_URL\)/),
      },
    });
    expect(seen.map((request) => request.method)).toEqual(['POST']);
  });

  it('describes an error page that is not problem+json from its text, and an HTML page from its title or heading', async () => {
    handler = (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('upstream   went away');
    };
    await expect(client().getVideo(VIDEO_ID)).rejects.toMatchObject({
      status: 500,
      problem: { type: 'about:blank', title: 'Internal Server Error', detail: 'upstream went away' },
    });
    handler = (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end('<h1>Internal   Server Error</h1>');
    };
    await expect(client().getVideo(VIDEO_ID)).rejects.toMatchObject({
      problem: { detail: 'the server answered 500 with an HTML page ("Internal Server Error"): a proxy in front of the API?' },
    });
    handler = (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(
        '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n',
      );
    };
    await expect(client({ retry: { retries: 0 } }).getVideo(VIDEO_ID)).rejects.toMatchObject({
      status: 502,
      problem: { detail: 'the server answered 502 with an HTML page ("502 Bad Gateway"): a proxy in front of the API?' },
    });
  });

  it('retries a GET whose connection was cut, and names the failure when it keeps happening', async () => {
    handler = (req, res, index) => (index === 0 ? req.socket.destroy() : json(res, 200, videoBody(VIDEO_ID, 'queued', 0)));
    await expect(client().getVideo(VIDEO_ID)).resolves.toMatchObject({ id: VIDEO_ID });
    expect(seen).toHaveLength(2);
    const closedPort = await new Promise<number>((resolve) => {
      const probe = http.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const refused = createClient({ baseUrl: `http://127.0.0.1:${closedPort}`, apiKey: 'k', retry: false });
    await expect(refused.getVideo(VIDEO_ID)).rejects.toThrow(`could not reach http://127.0.0.1:${closedPort}: ECONNREFUSED`);
  });

  it('times out an attempt that gets no answer', async () => {
    handler = () => {};
    const error = await client({ timeoutMs: 150, retry: false })
      .getVideo(VIDEO_ID)
      .catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(ClipLineConnectionError);
    expect((error as Error).message).toMatch(/request timed out/);
  });

  it('stops waiting for a retry the moment the caller aborts', async () => {
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    const notices: RetryNotice[] = [];
    handler = (_req, res) => json(res, 503, problem(503, 'Service Unavailable', 'down'), { 'retry-after': '600' });
    // Aborted as it starts waiting out the 600 s: a client that kept waiting would run into
    // jest's timeout instead of rejecting with the reason.
    const watching = client({
      retry: { maxRetryAfterMs: 3_600_000 },
      onRetry: (notice) => {
        notices.push(notice);
        setImmediate(() => controller.abort(reason));
      },
    }).getVideo(VIDEO_ID, { signal: controller.signal });
    await expect(watching).rejects.toBe(reason);
    expect(notices).toEqual([expect.objectContaining({ retry: 1, delayMs: expect.any(Number) })]);
    expect(notices[0]!.delayMs).toBeGreaterThanOrEqual(600_000);
    expect(seen).toHaveLength(1);
  });

  it('refuses unusable options with a message naming them', () => {
    expect(() => createClient({ baseUrl: 'localhost:3000', apiKey: 'k' })).toThrow('baseUrl must use http or https, got localhost:');
    expect(() => createClient({ baseUrl: 'not a url', apiKey: 'k' })).toThrow('baseUrl must be an absolute http(s) URL, got "not a url"');
    expect(() => createClient({ baseUrl, apiKey: 'has space' })).toThrow('apiKey must be 1-512 visible ASCII characters');
    expect(() => createClient({ baseUrl, apiKey: 'k', timeoutMs: 0 })).toThrow('timeoutMs must be a positive number, got 0');
  });
});

describe('watchVideo', () => {
  it('yields progress events until the terminal one and then closes the stream', async () => {
    handler = (_req, res) => {
      openStream(res);
      res.write(': keep-alive\n\n');
      sendEvent(res, VIDEO_ID, 1, 'progress', 'processing', 10);
      res.write('event: unrelated\ndata: {}\n\n');
      // Split mid-line, as TCP may deliver it.
      const text = `id: 2\nevent: completed\ndata: ${JSON.stringify(videoBody(VIDEO_ID, 'completed', 100))}\n\n`;
      res.write(text.slice(0, 17));
      setTimeout(() => res.write(text.slice(17)), 20);
      // The server keeps the connection open: the client must stop on its own.
    };
    expect(await collect(client().watchVideo(VIDEO_ID))).toEqual(['1:progress:10', '2:completed:100']);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.accept).toBe('text/event-stream');
    expect(seen[0]!.headers['last-event-id']).toBeUndefined();
    await waitFor(async () => (seen[0]!.closed ? true : undefined), 5000, 'the server to see the stream close');
  });

  it('resumes after a dropped connection with Last-Event-ID, losing and repeating nothing', async () => {
    handler = (req, res, index) => {
      openStream(res);
      if (index === 0) {
        sendEvent(res, VIDEO_ID, 1, 'progress', 'processing', 20);
        sendEvent(res, VIDEO_ID, 2, 'progress', 'processing', 40);
        setTimeout(() => req.socket.destroy(), 20);
      } else if (index === 1) {
        // A clean end without a terminal event is a drop too.
        sendEvent(res, VIDEO_ID, 3, 'progress', 'processing', 70);
        res.end();
      } else {
        sendEvent(res, VIDEO_ID, 4, 'failed', 'failed', 70);
      }
    };
    expect(await collect(client().watchVideo(VIDEO_ID))).toEqual(['1:progress:20', '2:progress:40', '3:progress:70', '4:failed:70']);
    expect(seen.map((request) => request.headers['last-event-id'])).toEqual([undefined, '2', '3']);
  });

  it('starts after a given event id and reconnects when the stream goes silent', async () => {
    handler = (_req, res, index) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      if (index === 1) sendEvent(res, VIDEO_ID, 8, 'cancelled', 'cancelled', 30);
      // The first connection sends nothing at all, not even a heartbeat.
    };
    const events = await collect(client().watchVideo(VIDEO_ID, { lastEventId: '7', idleTimeoutMs: 150, reconnectDelayMs: 10 }));
    expect(events).toEqual(['8:cancelled:30']);
    expect(seen.map((request) => request.headers['last-event-id'])).toEqual(['7', '7']);
  });

  it('keeps the last event id through a reconnection that brings only retry: and comments', async () => {
    handler = (_req, res, index) => {
      openStream(res, 10);
      if (index === 0) sendEvent(res, VIDEO_ID, 3, 'progress', 'processing', 30);
      else if (index === 1) res.write(': heartbeat\n\n');
      else sendEvent(res, VIDEO_ID, 4, 'completed', 'completed', 100);
      if (index < 2) res.end();
    };
    expect(await collect(client().watchVideo(VIDEO_ID))).toEqual(['3:progress:30', '4:completed:100']);
    expect(seen.map((request) => request.headers['last-event-id'])).toEqual([undefined, '3', '3']);
  });

  it('goes on through a restart of the server after the stream was open: refusals and 503 count as drops', async () => {
    handler = (req, res, index) => {
      if (index === 0) {
        openStream(res, 10);
        sendEvent(res, VIDEO_ID, 1, 'progress', 'processing', 10);
        res.end();
      } else if (index <= 4) {
        // A producer starting up: refused connections and 503s, each handed to the watch (no transport retries).
        if (index % 2) json(res, 503, problem(503, 'Service Unavailable', 'starting'), { 'retry-after': '0' });
        else req.socket.destroy();
      } else {
        openStream(res, 10);
        sendEvent(res, VIDEO_ID, 2, 'completed', 'completed', 100);
      }
    };
    expect(await collect(client({ retry: false }).watchVideo(VIDEO_ID))).toEqual(['1:progress:10', '2:completed:100']);
    expect(seen).toHaveLength(6);
    expect(seen.at(-1)!.headers['last-event-id']).toBe('1');
  });

  it('gives up on an error answer whose body never comes, at the timeout', async () => {
    handler = (_req, res) => {
      // A proxy's 502 whose page stalls after its first bytes.
      res.writeHead(502, { 'content-type': 'text/html', 'content-length': '1000' });
      res.write('<html>');
    };
    await expect(collect(client({ timeoutMs: 200, retry: false }).watchVideo(VIDEO_ID))).rejects.toMatchObject({ status: 502 });
  });

  it('ends with the abort reason when the caller aborts, and closes the connection', async () => {
    handler = (_req, res) => {
      openStream(res);
      sendEvent(res, VIDEO_ID, 1, 'progress', 'processing', 5);
    };
    const controller = new AbortController();
    const reason = new Error('stop watching');
    const received: string[] = [];
    const watching = (async () => {
      for await (const event of client().watchVideo(VIDEO_ID, { signal: controller.signal })) {
        received.push(event.id);
        setTimeout(() => controller.abort(reason), 30);
      }
    })();
    await expect(watching).rejects.toBe(reason);
    expect(received).toEqual(['1']);
    await waitFor(async () => (seen[0]!.closed ? true : undefined), 5000, 'the server to see the stream close');
  });

  it('closes the connection when the caller breaks out of the loop', async () => {
    handler = (_req, res) => {
      openStream(res);
      sendEvent(res, VIDEO_ID, 1, 'progress', 'processing', 5);
    };
    for await (const event of client().watchVideo(VIDEO_ID)) {
      expect(event.type).toBe('progress');
      break;
    }
    await waitFor(async () => (seen[0]!.closed ? true : undefined), 5000, 'the server to see the stream close');
  });

  it("waits for its turn when the first connection is refused for the key's many open streams (429)", async () => {
    handler = (_req, res, index) => {
      // Beyond the transport's own retries: the watch itself must go on.
      if (index < 6) return json(res, 429, problem(429, 'Too Many Requests', 'too many event streams open for this key'), { 'retry-after': '0' });
      openStream(res);
      sendEvent(res, VIDEO_ID, 1, 'completed', 'completed', 100);
      res.end();
    };
    expect(await collect(client().watchVideo(VIDEO_ID, { reconnectDelayMs: 10 }))).toEqual(['1:completed:100']);
    expect(seen.length).toBe(7);
  });

  it('fails at once on an API error such as 404, with the problem', async () => {
    handler = (_req, res) => json(res, 404, problem(404, 'Not Found', `no video with id ${VIDEO_ID}`));
    await expect(collect(client().watchVideo(VIDEO_ID))).rejects.toMatchObject({ status: 404, problem: { detail: `no video with id ${VIDEO_ID}` } });
    expect(seen).toHaveLength(1);
  });

  it('gives up after maxReconnects drops in a row without an event', async () => {
    handler = (_req, res) => {
      openStream(res, 5);
      res.end();
    };
    const error = await collect(client().watchVideo(VIDEO_ID, { maxReconnects: 3 })).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(ClipLineConnectionError);
    expect((error as Error).message).toMatch(/dropped 4 times in a row/);
    expect(seen).toHaveLength(4);
  });

  it('waits twice as long after each drop in a row, from the delay the server asked for', async () => {
    const times: number[] = [];
    handler = (_req, res) => {
      times.push(Date.now());
      openStream(res, 50);
      res.end();
    };
    await collect(client().watchVideo(VIDEO_ID, { maxReconnects: 4 })).catch(() => undefined);
    const gaps = times.slice(1).map((time, index) => time - times[index]!);
    // A timer never fires early (a millisecond of rounding aside): each gap is at least its wait.
    expect(gaps.map((gap, index) => gap >= 50 * 2 ** index - 2)).toEqual([true, true, true, true]);
  });

  it('watches a quiet video across any number of streams the server rotates: ended after heartbeats is no drop', async () => {
    // Fifteen streams that carry a heartbeat and are ended by the server (as after SSE_MAX_SECONDS),
    // more than maxReconnects, then the video completes.
    handler = (_req, res, index) => {
      openStream(res, 5);
      if (index >= 15) {
        sendEvent(res, VIDEO_ID, 1, 'completed', 'completed', 100);
        return res.end();
      }
      setTimeout(() => {
        res.write(': keep-alive\n\n');
        setTimeout(() => res.end(), 10);
      }, 10);
    };
    expect(await collect(client().watchVideo(VIDEO_ID, { maxReconnects: 3 }))).toEqual(['1:completed:100']);
    expect(seen).toHaveLength(16);
  });

  it('refuses an answer that is not an event stream, and an event whose data is not a video', async () => {
    handler = (_req, res) => json(res, 200, videoBody(VIDEO_ID, 'queued', 0));
    await expect(collect(client().watchVideo(VIDEO_ID))).rejects.toThrow(
      new ClipLineProtocolError(`/v1/videos/${VIDEO_ID}/events answered application/json instead of text/event-stream`),
    );
    handler = (_req, res) => {
      openStream(res);
      res.write('id: 1\nevent: progress\ndata: {not json\n\n');
    };
    await expect(collect(client().watchVideo(VIDEO_ID))).rejects.toThrow('event 1 carries data that is not JSON: {not json');
  });
});

describe('downloadFile', () => {
  const body = Buffer.from(Array.from({ length: 200_000 }, (_, index) => index % 251));
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-resume-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Part of `bytes` with the headers of the whole, then the connection cut. */
  function breakOff(res: http.ServerResponse, bytes: Buffer, headers: Record<string, string>, after: number) {
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(bytes.length), ...headers });
    res.write(bytes.subarray(0, after));
    setTimeout(() => res.destroy(), 50);
  }

  it('takes a body that broke off up again from where it broke, with Range and If-Range naming its version', async () => {
    handler = (req, res, index) => {
      if (index === 0) return breakOff(res, body, { 'accept-ranges': 'bytes', etag: '"v1"' }, 70_000);
      const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
      res.writeHead(206, { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'content-length': String(body.length - start), etag: '"v1"' });
      res.end(body.subarray(start));
    };
    const target = path.join(dir, 'clip.mp4');
    const saved = await client().downloadFile('/v1/file', target);
    expect(saved.bytes).toBe(body.length);
    expect((await readFile(target)).equals(body)).toBe(true);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.headers['if-range']).toBe('"v1"');
    expect(Number(/^bytes=(\d+)-$/.exec(seen[1]!.headers.range ?? '')?.[1])).toBeGreaterThan(0);
    expect(await readdir(dir)).toEqual(['clip.mp4']);
  });

  it('keeps a copy the server still has (304 to its ETag), and replaces one it has in another version', async () => {
    let version = '"v1"';
    handler = (req, res) => {
      if (req.headers['if-none-match'] === version) {
        res.writeHead(304, { etag: version });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(body.length), etag: version });
      res.end(body);
    };
    const target = path.join(dir, 'clip.mp4');
    const first = await client().downloadFile('/v1/file', target);
    expect(first).toMatchObject({ path: target, bytes: body.length, etag: '"v1"', unchanged: false });
    const copy = { path: target, bytes: body.length, etag: '"v1"' };
    const ino = (await stat(target)).ino;
    // The destination function is not asked: nothing is written.
    const kept = await client().downloadFile('/v1/file', () => path.join(dir, 'other.mp4'), { unchangedCopy: copy });
    expect(kept).toEqual({ ...copy, contentType: null, unchanged: true });
    // Asked for with its ETag, and not as `no-cache` (which fetch would add), under which servers never answer 304.
    expect(seen.at(-1)!.headers).toMatchObject({ 'if-none-match': '"v1"', 'cache-control': 'max-age=0' });
    expect([(await stat(target)).ino, await readdir(dir)]).toEqual([ino, ['clip.mp4']]);
    version = '"v2"';
    const replaced = await client().downloadFile('/v1/file', target, { unchangedCopy: copy });
    expect(replaced).toMatchObject({ bytes: body.length, etag: '"v2"', unchanged: false });
    expect((await stat(target)).ino).not.toBe(ino);
  });

  it('starts over when the server offers no ranges, and when it answers a range with a whole, changed file', async () => {
    handler = (req, res, index) => {
      if (index === 0) return breakOff(res, body, {}, 50_000);
      expect(req.headers.range).toBeUndefined();
      res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    };
    const plain = path.join(dir, 'plain.mp4');
    await client().downloadFile('/v1/file', plain);
    expect((await readFile(plain)).equals(body)).toBe(true);

    seen = [];
    // Changed meanwhile, to another length: written from the start, judged by its own length.
    const changed = Buffer.concat([Buffer.from(body).reverse(), Buffer.alloc(12_345, 7)]);
    handler = (req, res, index) => {
      if (index === 0) return breakOff(res, body, { 'accept-ranges': 'bytes', etag: '"v1"' }, 50_000);
      expect(req.headers['if-range']).toBe('"v1"');
      res.writeHead(200, { 'content-length': String(changed.length), etag: '"v2"' });
      res.end(changed);
    };
    const replaced = path.join(dir, 'replaced.mp4');
    await client().downloadFile('/v1/file', replaced);
    expect((await readFile(replaced)).equals(changed)).toBe(true);
  });

  it('gives up after three resumes, saying the download broke off and where, and leaves nothing behind', async () => {
    handler = (_req, res) => breakOff(res, body, {}, 10_000);
    const error = await client()
      .downloadFile('/v1/file', path.join(dir, 'clip.mp4'))
      .catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(ClipLineConnectionError);
    expect((error as Error).message).toMatch(/^the download from http:\/\/127\.0\.0\.1:\d+ broke off after \d+ of 200000 bytes: /);
    expect(seen).toHaveLength(4);
    expect(await readdir(dir)).toEqual([]);
  });
});
