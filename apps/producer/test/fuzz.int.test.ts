/**
 * Hostile input: thousands of generated malformed requests. Every one must get a 4xx
 * problem+json answer naming the problem; none a 5xx; the server stays up; nothing is written.
 */
import fc from 'fast-check';
import request from 'supertest';
import { jest } from '@jest/globals';
import { createService, DEV_API_KEY, type ServiceContext } from '@clipline/shared';
import type http from 'node:http';
import { buildProducer } from '../src/producer.js';
import { createProducerServer } from '../src/server.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

jest.setTimeout(240_000);

let env: TestEnvironment;
let service: ServiceContext;
let producer: ReturnType<typeof buildProducer>;
let server: http.Server;

beforeAll(async () => {
  env = await createTestEnvironment({ API_RATE_LIMIT_PER_MINUTE: '0' });
  service = createService('producer', env.config);
  producer = buildProducer(service);
  await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
  // The real server (not just the app), so requests Node's HTTP parser refuses are covered too.
  server = createProducerServer(producer.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await service.shutdown.shutdown('tests done');
  await env.cleanup();
});

const nasty = fc.oneof(
  fc.string({ maxLength: 50 }),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.constantFrom(
    "'; drop table videos; --",
    '" or 1=1 --',
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '\u0000\u0001\u0002',
    '\ud800',
    '\udfff\ud800',
    '../../../../etc/passwd',
    'file:///etc/shadow\u0000.mp4',
    '%00%2e%2e%2f',
    '${jndi:ldap://x}',
    '{{7*7}}',
  ),
  fc.string({ minLength: 5000, maxLength: 20000 }),
);

/** Percent-encodes for a URL; a lone surrogate becomes the raw bytes of an invalid UTF-8 sequence. */
function encode(text: string): string {
  try {
    return encode(text);
  } catch {
    return `%ED%A0%80${encodeURIComponent(text.toWellFormed())}`;
  }
}

const deep = (depth: number): unknown => (depth === 0 ? {} : { a: deep(depth - 1), b: [deep(depth - 1 > 2 ? 2 : depth - 1)] });

const hostileValue = fc.oneof(
  nasty,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(nasty, { maxLength: 5 }),
  fc.dictionary(nasty, nasty, { maxKeys: 5 }),
  fc.constant(deep(12)),
);

/** Bodies that can never be a valid submission: each carries at least one defect. */
const hostileSubmission = fc.oneof(
  fc.record({ source: hostileValue.filter((value) => typeof value !== 'string'), title: fc.option(hostileValue) }),
  fc.record({ source: fc.constantFrom('/ok.mp4'), [`__proto__`]: fc.dictionary(fc.string(), hostileValue) }),
  fc.record({ source: fc.constantFrom('/ok.mp4'), constructor: hostileValue }),
  fc.record({ source: fc.constantFrom('/ok.mp4'), extra: hostileValue }),
  fc.record({ source: nasty.filter((value) => !value.startsWith('/') && !/^(https?|file):/i.test(value)) }),
  fc.record({ source: fc.constantFrom('/ok.mp4'), options: fc.oneof(nasty, fc.dictionary(nasty, hostileValue, { minKeys: 1, maxKeys: 3 })) }),
  fc.record({ source: fc.constantFrom('/ok.mp4'), priority: nasty.filter((value) => !['high', 'normal', 'low'].includes(value)) }),
  fc.record({ source: fc.constantFrom('/ok.mp4'), callbackUrl: nasty.filter((value) => !/^https?:\/\//.test(value)) }),
  hostileValue.filter((value) => value === null || typeof value !== 'object' || Array.isArray(value)),
);

type HostileRequest = { method: 'get' | 'post' | 'delete'; path: string; headers: Record<string, string>; body?: string };

const hostileRequest: fc.Arbitrary<HostileRequest> = fc.oneof(
  // Malformed JSON text of every kind.
  fc.record({
    method: fc.constant('post' as const),
    path: fc.constantFrom('/v1/videos', '/v1/videos:batch', '/v1/jobs/ingest/ingest-video'),
    headers: fc.constant({ authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json' }),
    body: fc.oneof(
      nasty.map((text) => `{${text}`),
      fc.constantFrom('{"source": "/a.mp4",}', '{"source": "\\ud800"', '[[[[[[[[[[', '{"a":'.repeat(2000), 'null', '"just a string"', '12'),
    ),
  }),
  // Structurally valid JSON with hostile content.
  fc.record({
    method: fc.constant('post' as const),
    path: fc.constantFrom('/v1/videos'),
    headers: fc.record({
      authorization: fc.constant(`Bearer ${DEV_API_KEY}`),
      'content-type': fc.constant('application/json'),
    }),
    body: hostileSubmission.map((value) => JSON.stringify(value)),
  }),
  fc.record({
    method: fc.constant('post' as const),
    path: fc.constantFrom('/v1/videos:batch'),
    headers: fc.constant({ authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json' }),
    body: fc.oneof(fc.array(hostileSubmission, { maxLength: 3 }).map((videos) => JSON.stringify({ videos: [{ source: '/ok.mp4' }, ...videos, 'bad'] })), hostileValue.map((v) => JSON.stringify({ videos: v }))),
  }),
  fc.record({
    method: fc.constant('post' as const),
    path: fc.tuple(fc.constantFrom('ingest', 'analyze', 'persist', 'nope', '..', '%2e%2e'), nasty.map(encode)).map(([q, n]) => `/v1/jobs/${q}/${n || 'x'}`),
    headers: fc.constant({ authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json' }),
    body: hostileValue.map((value) => JSON.stringify(value)),
  }),
  // Bad headers: no key, wrong key, wrong content type, hostile idempotency keys.
  fc.record({
    method: fc.constantFrom('get' as const, 'post' as const, 'delete' as const),
    path: fc.constantFrom('/v1/videos', '/v1/videos/00000000-0000-4000-8000-000000000000', '/v1/videos:batch'),
    headers: fc.oneof(
      fc.constant({} as Record<string, string>),
      nasty.map((text) => ({ authorization: `Bearer ${text.replace(/[^\x21-\x7e]/g, '')}x` })),
      nasty.map((text) => ({ authorization: text.replace(/[^\x20-\x7e]/g, '') || 'Basic' })),
    ),
    body: fc.constant(JSON.stringify({ source: '/ok.mp4' })),
  }),
  fc.record({
    method: fc.constant('post' as const),
    path: fc.constant('/v1/videos'),
    headers: fc.oneof(
      fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml').map((type) => ({
        authorization: `Bearer ${DEV_API_KEY}`,
        'content-type': type,
      })),
      fc.string({ minLength: 256, maxLength: 400 }).map((key) => ({ authorization: `Bearer ${DEV_API_KEY}`, 'content-type': 'application/json', 'idempotency-key': key.replace(/[^\x20-\x7e]/g, 'x') })),
    ),
    body: fc.constant('source=/ok.mp4'),
  }),
  // Hostile paths, ids and queries.
  fc.record({
    method: fc.constantFrom('get' as const, 'delete' as const),
    path: fc.oneof(
      nasty.map((text) => `/v1/videos/${encode(text) || 'x'}`),
      nasty.map((text) => `/v1/videos?limit=${encode(text)}`),
      nasty.map((text) => `/v1/videos?cursor=${encode(text)}x`),
      nasty.map((text) => `/v1/videos?status=${encode(text)}x`),
      nasty.map((text) => `/v1/jobs/${encode(text) || 'x'}/${encode(text) || 'y'}`),
      nasty.map((text) => `/v1/${encode(text)}`),
    ),
    headers: fc.constant({ authorization: `Bearer ${DEV_API_KEY}` }),
  }),
);

async function counts() {
  const row = await env.db.selectFrom('videos').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const keys = await producer.redis.keys(`${env.config.queuePrefix}:*`);
  return { videos: Number(row.n), queueKeys: keys.filter((key) => !key.includes(':api-rate:') && !key.includes(':fair-share:')).length };
}

it('answers 2,000 hostile requests with 4xx problem+json, never a 5xx, and writes nothing', async () => {
  const before = await counts();
  const seen = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(hostileRequest, async (hostile) => {
      let call = request(server)[hostile.method](hostile.path);
      for (const [name, value] of Object.entries(hostile.headers)) call = call.set(name, value);
      const res = hostile.body === undefined ? await call : await call.send(hostile.body);
      seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
      const problem = /^application\/problem\+json/.test(res.headers['content-type'] ?? '') && typeof res.body?.detail === 'string' && res.body.detail.length > 0;
      if (res.status < 400 || res.status >= 500 || !problem) {
        throw new Error(`${hostile.method.toUpperCase()} ${hostile.path.slice(0, 80)}… → ${res.status} ${res.headers['content-type']}: ${JSON.stringify(res.body).slice(0, 200)}`);
      }
    }),
    { numRuns: 2000, seed: 20261123 },
  );
  expect(await counts()).toEqual(before);
  expect((await request(server).get('/healthz')).status).toBe(200);
  // A real mix of refusals, not one status for everything.
  expect([...seen.keys()].filter((status) => status >= 400 && status < 500).length).toBeGreaterThanOrEqual(4);
});
