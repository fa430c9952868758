import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import type { RedisClient } from '@clipline/shared';
import { PermanentJobError, Registry } from '@clipline/shared';
import { ProviderHttp } from '../src/providers/provider-http.js';
import type { SimEndpoint, UpstreamSimulator } from '../../../infra/upstream-sim/src/index.js';
import {
  createProviderClients,
  loadProviderSettings,
  ProviderInvalidResponseError,
  ProviderNotConfiguredError,
  ProviderPermanentError,
  ProviderRateLimitedError,
  ProviderTransientError,
  toJobError,
  type ProviderClients,
} from '../src/providers/index.js';
import { generateVideo } from '../../../tests/helpers/media.js';
import { keysMatching, type TestEnvironment } from '../../../tests/helpers/services.js';
import { startUpstreamFixture, type UpstreamFixture } from './upstream-fixture.js';

const run = promisify(execFile);
let fixture: UpstreamFixture;
let env: TestEnvironment;
let sim: UpstreamSimulator;
let redis: RedisClient;
let dir: string;
const opened: ProviderClients[] = [];

beforeAll(async () => {
  fixture = await startUpstreamFixture();
  ({ env, sim, redis } = fixture);
  dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-providers-'));
});

afterAll(async () => {
  for (const clients of opened) clients.close();
  await rm(dir, { recursive: true, force: true });
  await fixture.close();
});

afterEach(async () => {
  sim.reset();
  const keys = await keysMatching(redis, `${env.config.queuePrefix}:providers:*`);
  if (keys.length) await redis.del(...keys);
});

/** Clients pointed at the simulator; `overrides` are provider environment variables. */
function clients(overrides: Record<string, string> = {}): ProviderClients {
  const settings = loadProviderSettings({ UPSTREAM_SIM_URL: sim.url, PROVIDER_GET_RETRY_DELAY_MS: '10', ...overrides });
  const created = createProviderClients({ settings, redis, keyPrefix: env.config.queuePrefix, registry: new Registry() });
  opened.push(created);
  return created;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => new Error('the call succeeded'),
    (error: Error) => error,
  );
}

const requests = (endpoint: SimEndpoint) => sim.stats().endpoints[endpoint].requests;

describe('provider settings', () => {
  it('point every provider at the simulator with its key, and leave providers without keys unconfigured', () => {
    const settings = loadProviderSettings({ UPSTREAM_SIM_URL: 'http://127.0.0.1:3900/', OPENAI_BASE_URL: 'https://proxy.example/v1' });
    expect(settings.youtube).toMatchObject({ baseUrl: 'http://127.0.0.1:3900', apiKey: 'sim-key' });
    expect(settings.openai.baseUrl).toBe('https://proxy.example/v1');
    expect(settings.stability.rateLimit).toEqual({ perSecond: 10, burst: 10 });
    const production = loadProviderSettings({ OPENAI_API_KEY: 'sk-live' });
    expect(production.openai).toMatchObject({ baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-live' });
    expect(production.youtube.apiKey).toBeUndefined();
    expect(() => loadProviderSettings({ OPENAI_BASE_URL: 'ftp://x', PROVIDER_BREAKER_RESET_MS: '-1' })).toThrow(
      /OPENAI_BASE_URL[\s\S]*PROVIDER_BREAKER_RESET_MS/,
    );
  });
});

describe('OpenAI client', () => {
  it('completes a chat and parses a JSON-schema reply with zod', async () => {
    const { openai } = clients();
    const reply = await openai.chatCompletion({ messages: [{ role: 'user', content: 'Write a caption for a sunset clip' }] });
    expect(reply.content.length).toBeGreaterThan(10);
    expect(reply.usage?.totalTokens).toBeGreaterThan(0);
    const clip = await openai.chatJson(
      {
        name: 'clip_copy',
        messages: [{ role: 'user', content: 'title, caption and hashtags' }],
        jsonSchema: {
          type: 'object',
          properties: { title: { type: 'string' }, caption: { type: 'string' }, hashtags: { type: 'array', items: { type: 'string' } } },
          required: ['title', 'caption', 'hashtags'],
          additionalProperties: false,
        },
      },
      z.object({ title: z.string().min(1), caption: z.string().min(1), hashtags: z.array(z.string().startsWith('#')).min(1) }),
    );
    expect(clip.hashtags.length).toBe(3);
  });

  it('transcribes an audio file streamed from disk, with segments over its duration', async () => {
    const video = await generateVideo({ path: path.join(dir, 'talk.mp4'), segments: [2, 2] });
    const audio = path.join(dir, 'talk.m4a');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', video.path, '-vn', '-c:a', 'copy', audio]);
    const transcript = await clients().openai.transcribe(audio);
    expect(transcript.durationSeconds).toBeGreaterThan(3.8);
    expect(transcript.segments.at(-1)?.end).toBeCloseTo(transcript.durationSeconds, 1);
    expect(transcript.text.split(' ').length).toBeGreaterThan(5);
  });

  it('classifies a wrong key as permanent, naming the variable to fix', async () => {
    const error = await failure(clients({ OPENAI_API_KEY: 'sk-wrong' }).openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }));
    expect(error).toBeInstanceOf(ProviderPermanentError);
    expect(error.message).toMatch(/401.*Incorrect API key.*OPENAI_API_KEY/);
    expect(toJobError(error)).toBeInstanceOf(PermanentJobError);
  });

  it('reports a provider without a key as not configured, without calling it', async () => {
    const settings = loadProviderSettings({ OPENAI_BASE_URL: `${sim.url}/v1` });
    const unconfigured = createProviderClients({ settings, redis, keyPrefix: env.config.queuePrefix, registry: new Registry() });
    opened.push(unconfigured);
    expect(unconfigured.openai.configured).toBe(false);
    const error = await failure(unconfigured.openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }));
    expect(error).toBeInstanceOf(ProviderNotConfiguredError);
    expect(error.message).toMatch(/set OPENAI_API_KEY/);
    expect(requests('openai.chat.completions')).toBe(0);
  });

  it('turns a malformed answer into a clear invalid-response error', async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { malformedRate: 1 } } });
    const error = await failure(clients().openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }));
    expect(error).toBeInstanceOf(ProviderInvalidResponseError);
    expect(error.message).toMatch(/malformed chat completion: .*choices: Invalid input: expected array/);
  });

  it('never retries a POST itself: one 503 is one transient error and one upstream request', async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { errorRate: 1, errorStatus: 503 } } });
    const error = await failure(clients().openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }));
    expect(error).toBeInstanceOf(ProviderTransientError);
    expect((error as ProviderTransientError).status).toBe(503);
    expect(requests('openai.chat.completions')).toBe(1);
  });

  it('gives up on an upstream that never answers after its timeout, as a transient error', async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { timeoutRate: 1 } } });
    const started = Date.now();
    const error = await failure(clients({ OPENAI_TIMEOUT_MS: '300' }).openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }));
    expect(error).toBeInstanceOf(ProviderTransientError);
    expect(error.message).toMatch(/did not answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('rethrows the abort reason of a cancelled call', async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { latency: { kind: 'fixed', ms: 2000 } } } });
    const controller = new AbortController();
    const reason = new Error('video cancelled');
    setTimeout(() => controller.abort(reason), 100);
    const error = await failure(clients().openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }, { signal: controller.signal }));
    expect(error).toBe(reason);
  });

  it('turns a 429 into a rate-limited error and pauses the provider so the next call does not go out', async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { rateLimitNext: 1, retryAfterSeconds: 2 } } });
    const { openai } = clients();
    const limited = await failure(openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }));
    expect(limited).toBeInstanceOf(ProviderRateLimitedError);
    expect(limited).toMatchObject({ retryAfterMs: 2000, source: 'upstream' });
    const paused = await failure(openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }));
    expect(paused).toMatchObject({ source: 'paused' });
    expect((paused as ProviderRateLimitedError).retryAfterMs).toBeGreaterThan(1500);
    expect(requests('openai.chat.completions')).toBe(1);
  });
});

describe('429 answers', () => {
  const clearPause = async () => {
    const keys = await keysMatching(redis, `${env.config.queuePrefix}:providers:*`);
    if (keys.length) await redis.del(...keys);
  };

  it.each([
    [0, 1000, 'none ahead: the default pause'],
    [86_400, 300_000, 'a day: at most five minutes'],
  ])('with Retry-After %i s pause the provider %i ms (%s)', async (seconds, pauseMs) => {
    await clearPause();
    sim.configure({ endpoints: { 'openai.chat.completions': { rateLimitNext: 1, retryAfterSeconds: seconds } } });
    const limited = await failure(clients().openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }));
    expect(limited).toMatchObject({ retryAfterMs: pauseMs, source: 'upstream' });
  });

  it("fails at once on OpenAI's used-up quota, which waiting does not clear, and pauses nothing", async () => {
    sim.configure({ endpoints: { 'openai.chat.completions': { rateLimitNext: 1, rateLimitReason: 'quota' } } });
    const { openai } = clients();
    const refused = await failure(openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] }));
    expect(refused).toBeInstanceOf(ProviderPermanentError);
    expect(refused.message).toMatch(/429: You exceeded your current quota.*\(the account's quota is used up: check its plan and billing\)/);
    await openai.chatCompletion({ messages: [{ role: 'user', content: 'x' }] });
    expect(requests('openai.chat.completions')).toBe(2);
  });
});

describe("YouTube's limits, which it answers with 403", () => {
  const clearPause = async () => {
    const keys = await keysMatching(redis, `${env.config.queuePrefix}:providers:*`);
    if (keys.length) await redis.del(...keys);
  };

  it.each([
    ['rate', /rateLimitExceeded|exceeded the rate limit/i, 1000],
    ['quota', /quota/i, 300_000],
  ] as const)('a %s limit pauses the provider, as a 429 does, and is not taken for a bad key', async (reason, words, pauseMs) => {
    await clearPause();
    sim.configure({ endpoints: { 'youtube.videos.list': { rateLimitNext: 1, rateLimitReason: reason } } });
    const { youtube } = clients();
    const limited = await failure(youtube.listVideos(['dQw4w9WgXcQ']));
    expect(limited).toBeInstanceOf(ProviderRateLimitedError);
    expect(limited).toMatchObject({ retryAfterMs: pauseMs, source: 'upstream' });
    expect(limited.message).toMatch(words);
    expect(limited.message).not.toMatch(/YOUTUBE_API_KEY/);
    expect(await failure(youtube.listVideos(['dQw4w9WgXcQ']))).toMatchObject({ source: 'paused' });
    expect(requests('youtube.videos.list')).toBe(1);
    await clearPause();
  });

  it('a 403 that is not a limit (no key sent) still names the key to check', async () => {
    const { youtube } = loadProviderSettings({ UPSTREAM_SIM_URL: sim.url });
    const http = new ProviderHttp({ provider: 'youtube', baseUrl: youtube.baseUrl, timeoutMs: 5000, headers: {} });
    try {
      const error = await failure(http.request({ method: 'GET', path: 'youtube/v3/videos', searchParams: { part: 'snippet', id: 'dQw4w9WgXcQ' } }));
      expect(error).toBeInstanceOf(ProviderPermanentError);
      expect(error.message).toMatch(/answered 403: .*\(check YOUTUBE_API_KEY\)/);
    } finally {
      http.close();
    }
  });
});

describe('answers held in memory', () => {
  it('cut off an answer larger than the limit, as a provider answer that cannot be used', async () => {
    const { openai } = loadProviderSettings({ UPSTREAM_SIM_URL: sim.url });
    const http = new ProviderHttp({
      provider: 'openai',
      baseUrl: openai.baseUrl,
      timeoutMs: 5000,
      headers: { authorization: `Bearer ${openai.apiKey}` },
      maxAnswerBytes: 64,
    });
    try {
      const request = { method: 'POST' as const, path: 'chat/completions', json: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] } };
      const error = await failure(http.request(request));
      expect(error).toBeInstanceOf(ProviderInvalidResponseError);
      expect(error.message).toBe('openai POST /chat/completions sent an answer of more than 64 bytes');
      // The same answer under a limit it fits is read whole.
      const roomy = new ProviderHttp({ provider: 'openai', baseUrl: openai.baseUrl, timeoutMs: 5000, headers: { authorization: `Bearer ${openai.apiKey}` } });
      expect((await roomy.request(request)).status).toBe(200);
      roomy.close();
    } finally {
      http.close();
    }
  });
});

describe('redirects', () => {
  it('are not followed, so the key header goes nowhere else: the failure names where it pointed', async () => {
    const keysSeen: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      keysSeen.push(req.headers['xi-api-key'] as string | undefined);
      res.writeHead(req.url === '/v1/voices' ? 302 : 200, { location: '/elsewhere/voices' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const http = new ProviderHttp({
      provider: 'elevenlabs',
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`,
      timeoutMs: 5000,
      headers: { 'xi-api-key': 'sk-secret' },
    });
    try {
      const error = await failure(http.request({ method: 'GET', path: 'voices' }));
      expect(error).toBeInstanceOf(ProviderPermanentError);
      expect(error.message).toBe(
        'elevenlabs GET /voices answered 302 (a redirect to /elsewhere/voices, not followed: its base URL should name the API itself)',
      );
      expect(keysSeen).toEqual(['sk-secret']);
    } finally {
      http.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('error answers to a download', () => {
  it('are read only as far as their message: an endless error body fails the call at once, naming what the provider said', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.write(JSON.stringify({ detail: 'voice backend overloaded' }));
      const chunk = Buffer.alloc(1024 * 1024, 32);
      const timer = setInterval(() => res.write(chunk), 1);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const http = new ProviderHttp({
      provider: 'elevenlabs',
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`,
      timeoutMs: 5000,
      headers: {},
    });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'clipline-error-body-'));
    try {
      const started = performance.now();
      const check = { maxBytes: 1024, inspect: () => undefined };
      const error = await failure(http.download({ method: 'GET', path: 'speech' }, path.join(dir, 'speech.mp3'), check));
      expect(error).toBeInstanceOf(ProviderTransientError);
      expect(error.message).toMatch(/^elevenlabs GET \/speech answered 500: .*voice backend overloaded/);
      // Not held until the 5 s timeout reading the body.
      expect(performance.now() - started).toBeLessThan(4000);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      http.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('YouTube client', () => {
  it('retries an idempotent GET on 5xx, then reports it transient', async () => {
    sim.configure({ endpoints: { 'youtube.videos.list': { errorRate: 1 } } });
    const error = await failure(clients({ PROVIDER_GET_RETRIES: '2' }).youtube.listVideos(['dQw4w9WgXcQ']));
    expect(error).toBeInstanceOf(ProviderTransientError);
    expect(requests('youtube.videos.list')).toBe(3);
  });

  it('waits as long as a 5xx asks (Retry-After) before trying a GET again, and leaves a longer wait to the job', async () => {
    sim.configure({ endpoints: { 'youtube.videos.list': { errorRate: 1, errorRetryAfterSeconds: 1 } } });
    const error = await failure(clients({ PROVIDER_GET_RETRIES: '1' }).youtube.listVideos(['dQw4w9WgXcQ']));
    expect(error).toBeInstanceOf(ProviderTransientError);
    const arrivals = sim
      .stats()
      .requests.filter((request) => request.endpoint === 'youtube.videos.list')
      .map((request) => request.at);
    expect(arrivals).toHaveLength(2);
    // Our own backoff would have come back after 250-375 ms.
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(990);
    // Asked to come back after longer than a request may take: not tried again within the call.
    sim.reset();
    sim.configure({ endpoints: { 'youtube.videos.list': { errorRate: 1, errorRetryAfterSeconds: 3600 } } });
    expect(await failure(clients({ PROVIDER_GET_RETRIES: '2' }).youtube.listVideos(['dQw4w9WgXcQ']))).toBeInstanceOf(ProviderTransientError);
    expect(requests('youtube.videos.list')).toBe(1);
  });

  it('lists videos and reports an unknown one as a permanent failure', async () => {
    const { youtube, youtubeMetadata } = clients();
    const answer = await youtube.listVideos(['dQw4w9WgXcQ']);
    expect(answer.notModified).toBe(false);
    const missing = await failure(youtubeMetadata.videoMetadata('goneVideo01'));
    expect(missing).toBeInstanceOf(ProviderPermanentError);
    expect(missing.message).toMatch(/no public video "goneVideo01"/);
  });
});

describe('Stability client', () => {
  it('generates a PNG of the asked size', async () => {
    const image = await clients().stability.textToImage({ prompt: 'a bright thumbnail', width: 768, height: 1344 });
    expect(image.finishReason).toBe('SUCCESS');
    expect(image.png.readUInt32BE(16)).toBe(768);
    expect(image.png.readUInt32BE(20)).toBe(1344);
  });

  it('reports a request the provider refuses as permanent, with its message', async () => {
    const error = await failure(clients().stability.textToImage({ prompt: 'x', width: 500 }));
    expect(error).toBeInstanceOf(ProviderPermanentError);
    expect(error.message).toMatch(/400: width must be an integer/);
  });
});

describe('ElevenLabs client', () => {
  it('streams decodable speech into the destination file', async () => {
    const target = path.join(dir, 'voice.mp3');
    const result = await clients().elevenlabs.synthesizeSpeech({ text: 'A short voice over for the clip, five seconds or so.' }, target);
    expect(result.bytes).toBeGreaterThan(10_000);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', target]);
    expect(stdout.trim()).toBe('mp3');
  });

  it('refuses an answer that is not audio and leaves no file behind', async () => {
    sim.configure({ endpoints: { 'elevenlabs.text-to-speech': { malformedRate: 1 } } });
    const target = path.join(dir, 'broken.mp3');
    const error = await failure(clients().elevenlabs.synthesizeSpeech({ text: 'hello' }, target));
    expect(error).toBeInstanceOf(ProviderInvalidResponseError);
    expect(error.message).toMatch(/does not start like MP3/);
    await expect(access(target)).rejects.toThrow();
    expect((await readdir(dir)).filter((file) => file.startsWith('broken'))).toEqual([]);
  });
});
