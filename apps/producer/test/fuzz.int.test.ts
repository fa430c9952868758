/**
 * Hostile input: thousands of generated malformed requests. Every one must get a 4xx
 * problem+json answer naming the problem, from the place the request was aimed at (the body
 * parser, the key check, the route its path names); none a 5xx; the server stays up; nothing is
 * written.
 */
import fc from 'fast-check';
import request from 'supertest';
import { jest } from '@jest/globals';
import { allQueues, createService, DEV_API_KEY, type ServiceContext } from '@clipline/shared';
import type http from 'node:http';
import { buildProducer } from '../src/producer.js';
import { createProducerServer } from '../src/server.js';
import { PATH_ESCAPE_PROBLEM } from '../src/http/problem.js';
import { createTestEnvironment, keysMatching, type TestEnvironment } from '../../../tests/helpers/services.js';

jest.setTimeout(240_000);

let env: TestEnvironment;
let service: ServiceContext;
let producer: ReturnType<typeof buildProducer>;
let server: http.Server;

beforeAll(async () => {
  // Rate limits off: one client sends thousands of requests, and after 20 failed authentications
  // the throttle would answer 429 to every request that follows, whatever it targets.
  env = await createTestEnvironment({ API_RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURES_PER_MINUTE: '1000000' });
  service = createService('producer', env.config);
  producer = buildProducer(service);
  await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
  // The real server (not just the app), so requests Node's HTTP parser refuses are covered too.
  server = createProducerServer(producer.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const catalogue = await request(server).get('/v1/jobs').set('authorization', `Bearer ${DEV_API_KEY}`);
  expect(catalogue.status).toBe(200);
  publicJobs = (catalogue.body.items as { queue: string; name: string }[]).map(({ queue, name }) => ({ queue, name }));
  // The job-path case aims at both kinds: there must be some of each.
  expect(publicJobs.length).toBeGreaterThan(0);
  expect(publicJobs.length).toBeLessThan(declaredJobs.length);
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

/**
 * Percent-encodes one path segment or query value, code point by code point. A lone surrogate has
 * no UTF-8 form: it is sent as the three bytes a careless encoder makes of it (ED A0 80 for
 * U+D800), which are not valid UTF-8.
 */
function encode(text: string): string {
  let encoded = '';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char.length === 1 && code >= 0xd800 && code <= 0xdfff) {
      encoded += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((byte) => `%${byte.toString(16).toUpperCase()}`).join('');
    } else {
      encoded += encodeURIComponent(char);
    }
  }
  return encoded;
}

/** A path segment for `text`, and the text express will hand the route as the parameter. */
function segment(text: string, fallback: string): { raw: string; param: string } {
  return text === '' ? { raw: fallback, param: fallback } : { raw: encode(text), param: text };
}

const deep = (depth: number): unknown => (depth === 0 ? {} : { a: deep(depth - 1), b: [deep(Math.min(depth - 1, 2))] });

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

/** What body-parser's strict mode takes as JSON: a document whose top level is an object or an array. */
function isJsonDocument(body: string): boolean {
  try {
    const value: unknown = JSON.parse(body);
    return value !== null && typeof value === 'object';
  } catch {
    return false;
  }
}

interface Problem {
  detail: string;
  errors?: { path: string; message: string }[];
}

/**
 * Where a request must end up, and what proves it got there: the status that place answers and a
 * detail (or field list) only it writes. "Not a 5xx" alone would also hold for a request that
 * never left the router.
 */
interface Target {
  where: string;
  status: number;
  proves(problem: Problem): boolean;
}

const bodyParser: Target = { where: 'JSON body parser', status: 400, proves: (p) => p.detail === 'request body is not valid JSON' };
const paramDecoding: Target = { where: 'route parameter decoding (invalid UTF-8)', status: 400, proves: (p) => p.detail === PATH_ESCAPE_PROBLEM };
const headerLimit: Target = {
  where: 'HTTP parser (request line over 16 KiB)',
  status: 431,
  proves: (p) => p.detail === 'request line or headers are larger than 16 KiB',
};
const authentication: Target = {
  where: 'API key check',
  status: 401,
  proves: (p) => /^(missing Authorization header|Authorization header must be|API key is not valid)/.test(p.detail),
};
const contentType: Target = { where: 'content type check', status: 415, proves: (p) => p.detail.includes('"Content-Type: application/json"') };
const idempotencyKey: Target = {
  where: 'Idempotency-Key check',
  status: 400,
  proves: (p) => p.detail === 'Idempotency-Key must be 1-255 visible ASCII characters',
};
const fieldErrors = (where: string, field?: string): Target => ({
  where,
  status: 400,
  proves: (p) => Array.isArray(p.errors) && p.errors.length > 0 && (field === undefined || p.errors.every((error) => error.path === field)),
});
const submissionSchema = fieldErrors('video submission schema');
const batchSchema = fieldErrors('video batch schema');
const listQuery = (field: 'limit' | 'cursor' | 'status') => fieldErrors(`video list query: ${field}`, field);
const videoById = (id: string): Target => ({
  where: 'video lookup by id',
  status: 404,
  proves: (p) => p.detail.startsWith(`no video with id "${id.slice(0, 100)}"`),
});
const jobLookup = (queue: string, id: string): Target => ({
  where: 'job lookup by queue and id',
  status: 404,
  proves: (p) => !p.detail.startsWith('no route') && p.detail.includes(`"${id.slice(0, 100)}"`) && p.detail.includes(`"${queue.slice(0, 100)}"`),
});
const notPublicJob = (queue: string, name: string): Target => ({
  where: 'job submission: not a public job',
  status: 404,
  proves: (p) => p.detail.includes(`"${queue.slice(0, 100)}/${name.slice(0, 100)}"`),
});
const publicJobPayload = (queue: string, name: string): Target => ({
  where: 'job submission: public job payload schema',
  status: 400,
  proves: (p) => p.detail.startsWith(`invalid ${queue}/${name} payload: `),
});
const noRoute = (method: string): Target => ({
  where: 'no route',
  status: 404,
  proves: (p) => p.detail.startsWith(`no route for ${method.toUpperCase()} /v1/`),
});

const EVERY_PLACE = [
  bodyParser,
  paramDecoding,
  headerLimit,
  authentication,
  contentType,
  idempotencyKey,
  submissionSchema,
  batchSchema,
  listQuery('limit'),
  listQuery('cursor'),
  listQuery('status'),
  videoById(''),
  jobLookup('', ''),
  notPublicJob('', ''),
  publicJobPayload('', ''),
  noRoute(''),
].map((target) => target.where);

/** Node refuses a request whose request line and headers pass 16 KiB; the other headers sent here stay well under 1 KiB. */
const HEAD_LIMIT = 16 * 1024;

/** Every job the queues declare; which of them are public is read from `GET /v1/jobs` before the run. */
const declaredJobs = allQueues.flatMap((declaration) => Object.keys(declaration.jobs).map((name) => ({ queue: declaration.name, name })));
let publicJobs: { queue: string; name: string }[] = [];

const withKey = { authorization: `Bearer ${DEV_API_KEY}` };
const withKeyJson = { ...withKey, 'content-type': 'application/json' };
type Method = 'get' | 'post' | 'delete';
type HostileRequest = { method: Method; path: string; headers: Record<string, string>; body?: string; target: Target };

/** A hostile path segment, or a fixed one (a real queue or job name, a UUID). */
const hostileSegment = (fallback: string) => nasty.map((text) => segment(text, fallback));
const fixedSegment = (values: readonly string[]) => fc.constantFrom(...values).map((value) => segment(value, value));
/** False when a segment holds a lone surrogate: sent as invalid UTF-8, the router cannot decode it. */
const decodable = (...segments: { param: string }[]) => segments.every((item) => !/\p{Cs}/u.test(item.param));

/** Built once the public job catalogue is known, so both public and internal jobs are aimed at on purpose. */
function hostileRequests(): fc.Arbitrary<HostileRequest> {
  const isPublic = (queue: string, name: string) => publicJobs.some((job) => job.queue === queue && job.name === name);
  const internalJobs = declaredJobs.filter((job) => !isPublic(job.queue, job.name));
  return fc.oneof(
    // Malformed JSON text of every kind: refused by the body parser before any route runs.
    fc.record({
      method: fc.constant('post' as const),
      path: fc.constantFrom('/v1/videos', '/v1/videos:batch', '/v1/jobs/ingest/ingest-video'),
      headers: fc.constant(withKeyJson),
      body: fc
        .oneof(
          nasty.map((text) => `{${text}`),
          fc.constantFrom('{"source": "/a.mp4",}', '{"source": "\\ud800"', '[[[[[[[[[[', '{"a":'.repeat(2000), 'null', '"just a string"', '12'),
        )
        .filter((body) => !isJsonDocument(body)),
      target: fc.constant(bodyParser),
    }),
    // Structurally valid JSON with hostile content: the submission schema names the fields.
    hostileSubmission.map((value): HostileRequest => {
      const body = JSON.stringify(value);
      return { method: 'post', path: '/v1/videos', headers: withKeyJson, body, target: isJsonDocument(body) ? submissionSchema : bodyParser };
    }),
    fc
      .oneof(
        fc.array(hostileSubmission, { maxLength: 3 }).map((videos) => JSON.stringify({ videos: [{ source: '/ok.mp4' }, ...videos, 'bad'] })),
        hostileValue.map((v) => JSON.stringify({ videos: v })),
      )
      .map((body): HostileRequest => ({ method: 'post', path: '/v1/videos:batch', headers: withKeyJson, body, target: batchSchema })),
    // Job paths: every declared job (internal ones answer 404 like unknown ones; a public one
    // validates the payload) and hostile names under real, unknown and dot-segment queues. The body
    // is always a JSON object or array, so the request reaches the route.
    fc
      .tuple(
        fc.oneof(
          fc.constantFrom(...publicJobs, ...internalJobs).map(({ queue, name }) => ({ queue: segment(queue, queue), name: segment(name, name) })),
          fc.tuple(fixedSegment(['ingest', 'analyze', 'persist', 'sync', 'nope', '..']), hostileSegment('x')).map(([queue, name]) => ({ queue, name })),
          hostileSegment('x').map((name) => ({ queue: { raw: '%2e%2e', param: '..' }, name })),
        ),
        fc.oneof(fc.dictionary(nasty, hostileValue, { maxKeys: 5 }), fc.array(hostileValue, { maxLength: 3 }), fc.constant(deep(12))),
      )
      .map(
        ([{ queue, name }, payload]): HostileRequest => ({
          method: 'post',
          path: `/v1/jobs/${queue.raw}/${name.raw}`,
          headers: withKeyJson,
          body: JSON.stringify(payload),
          target: !decodable(queue, name)
            ? paramDecoding
            : isPublic(queue.param, name.param)
              ? publicJobPayload(queue.param, name.param)
              : notPublicJob(queue.param, name.param),
        }),
      ),
    // Bad credentials: no key, a wrong key, a malformed header.
    fc.record({
      method: fc.constantFrom('get' as const, 'post' as const, 'delete' as const),
      path: fc.constantFrom('/v1/videos', '/v1/videos/00000000-0000-4000-8000-000000000000', '/v1/videos:batch'),
      headers: fc.oneof(
        fc.constant({} as Record<string, string>),
        nasty.map((text) => ({ authorization: `Bearer ${text.replace(/[^\x21-\x7e]/g, '')}x` })),
        nasty.map((text) => ({ authorization: text.replace(/[^\x20-\x7e]/g, '') || 'Basic' })),
      ),
      body: fc.constant(JSON.stringify({ source: '/ok.mp4' })),
      target: fc.constant(authentication),
    }),
    // A body that is not JSON: the route refuses the media type.
    fc.record({
      method: fc.constant('post' as const),
      path: fc.constant('/v1/videos'),
      headers: fc
        .constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml')
        .map((type) => ({ ...withKey, 'content-type': type })),
      body: fc.constant('source=/ok.mp4'),
      target: fc.constant(contentType),
    }),
    // An overlong Idempotency-Key on an otherwise valid submission: only the key check stands
    // between this request and a new video.
    fc.record({
      method: fc.constant('post' as const),
      path: fc.constant('/v1/videos'),
      headers: fc.string({ minLength: 256, maxLength: 400 }).map((key) => ({ ...withKeyJson, 'idempotency-key': key.replace(/[^\x21-\x7e]/g, 'x') })),
      body: fc.constant(JSON.stringify({ source: '/ok.mp4' })),
      target: fc.constant(idempotencyKey),
    }),
    // Hostile ids, queries and paths, each on the route it names.
    fc.tuple(fc.constantFrom('get' as const, 'delete' as const), hostileSegment('x')).map(
      ([method, id]): HostileRequest => ({
        method,
        path: `/v1/videos/${id.raw}`,
        headers: withKey,
        target: decodable(id) ? videoById(id.param) : paramDecoding,
      }),
    ),
    ...(['limit', 'cursor', 'status'] as const).map((field) =>
      // The trailing "x" keeps a value from being valid by chance (a limit of "5", say).
      nasty.map((text): HostileRequest => ({ method: 'get', path: `/v1/videos?${field}=${encode(text)}x`, headers: withKey, target: listQuery(field) })),
    ),
    fc
      .tuple(
        fc.oneof(fixedSegment(allQueues.map((declaration) => declaration.name)), hostileSegment('x')),
        fc.oneof(hostileSegment('y'), fixedSegment(['00000000-0000-4000-8000-000000000000'])),
      )
      .map(
        ([queue, id]): HostileRequest => ({
          method: 'get',
          path: `/v1/jobs/${queue.raw}/${id.raw}`,
          headers: withKey,
          target: decodable(queue, id) ? jobLookup(queue.param, id.param) : paramDecoding,
        }),
      ),
    fc
      .tuple(
        fc.constantFrom('get' as const, 'delete' as const),
        nasty.filter((text) => !['videos', 'jobs', 'webhook-secret'].includes(text)),
      )
      .map(([method, text]): HostileRequest => ({ method, path: `/v1/${encode(text)}`, headers: withKey, target: noRoute(method) })),
  );
}

async function counts() {
  const rows = async (table: 'videos' | 'public_jobs' | 'idempotency_keys') =>
    Number(
      (
        await env.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  // Rate and throttle counters are expected to move; jobs, flows and anything else are not. A
  // queue's `meta` key (BullMQ's version stamp) is written when its connection first comes up,
  // which on a Redis Cluster may be after the first count: it holds no job and is left out.
  const counters = [':api-rate:', ':fair-share:', ':auth-fail:'];
  const keys = (await keysMatching(producer.redis, `${env.config.queuePrefix}:*`)).filter((key) => !key.endsWith(':meta'));
  return {
    videos: await rows('videos'),
    publicJobs: await rows('public_jobs'),
    idempotencyKeys: await rows('idempotency_keys'),
    queueKeys: keys.filter((key) => !counters.some((counter) => key.includes(counter))),
  };
}

it('answers 2,000 hostile requests from the place each one targets, with 4xx problem+json, never a 5xx, and writes nothing', async () => {
  const before = await counts();
  const statuses = new Map<number, number>();
  const reached = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(hostileRequests(), async (hostile) => {
      let call = request(server)[hostile.method](hostile.path);
      for (const [name, value] of Object.entries(hostile.headers)) call = call.set(name, value);
      const res = hostile.body === undefined ? await call : await call.send(hostile.body);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const described = () =>
        `${hostile.method.toUpperCase()} ${hostile.path.slice(0, 80)}… → ${res.status} ${res.headers['content-type']}: ${JSON.stringify(res.body).slice(0, 200)}`;
      const problem =
        /^application\/problem\+json/.test(res.headers['content-type'] ?? '') && typeof res.body?.detail === 'string' && res.body.detail.length > 0;
      if (res.status < 400 || res.status >= 500 || !problem) throw new Error(described());
      // A request line near the limit may or may not fit, depending on the other headers.
      const { target } = hostile;
      const length = Buffer.byteLength(hostile.path);
      const acceptable = length > HEAD_LIMIT ? [headerLimit] : length > HEAD_LIMIT - 1024 ? [target, headerLimit] : [target];
      const hit = acceptable.find((candidate) => candidate.status === res.status && candidate.proves(res.body as Problem));
      if (!hit) throw new Error(`expected the ${acceptable.map((candidate) => `${candidate.where} (${candidate.status})`).join(' or ')}: ${described()}`);
      reached.set(hit.where, (reached.get(hit.where) ?? 0) + 1);
    }),
    { numRuns: 2000, seed: 20261123 },
  );
  expect(await counts()).toEqual(before);
  expect((await request(server).get('/healthz')).status).toBe(200);
  // A real mix of refusals, not one status for everything.
  expect([...statuses.keys()].filter((status) => status >= 400 && status < 500).length).toBeGreaterThanOrEqual(4);
  // Every place was reached, so no case passes only because its requests stopped short of it.
  expect([...reached.keys()].sort()).toEqual([...EVERY_PLACE].sort());
});
