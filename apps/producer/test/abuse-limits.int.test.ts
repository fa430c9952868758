/**
 * What each abuse limit answers: failed authentication per client address (before any key
 * lookup), batches charged per video, unfinished videos per tenant, open event streams per key
 * and their lifetime.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { clientAddress, createService, type ServiceContext } from '@clipline/shared';
import { buildProducer } from '../src/producer.js';
import { createProducerServer } from '../src/server.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

const KEY = 'abuse-test-key-0123456789abcdef0123456789';
let env: TestEnvironment;
const started: ServiceContext[] = [];

beforeAll(async () => {
  env = await createTestEnvironment({ API_KEYS: KEY });
});

afterAll(async () => {
  for (const service of started) await service.shutdown.shutdown('tests done');
  await env.cleanup();
});

/** A producer with some limits changed; `lookups` counts database key lookups. */
async function producerWith(overrides: Partial<ServiceContext['config']>) {
  const service = createService('producer', { ...env.config, ...overrides });
  started.push(service);
  const lookups = { count: 0 };
  const producer = buildProducer(service, {
    verifyKey: async () => {
      lookups.count += 1;
      return null;
    },
  });
  await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
  return { producer, lookups, config: service.config };
}

const auth = { authorization: `Bearer ${KEY}` };

describe('failed authentication', () => {
  it('is throttled per client address after the limit, with Retry-After, before any key lookup', async () => {
    const { producer, lookups } = await producerWith({ authFailuresPerMinute: 20, queuePrefix: `${env.config.queuePrefix}:auth` });
    // Start at the beginning of a minute window, so all attempts fall in one.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 100));
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 22; attempt += 1) {
      statuses.push((await request(producer.app).get('/v1/videos').set({ authorization: 'Bearer cl_guessguessgu_guessguessguessguessguessguessgu' })).status);
    }
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
    expect(statuses.slice(20)).toEqual([429, 429]);
    // Throttled requests never reached the key lookup.
    expect(lookups.count).toBe(20);
    const throttled = await request(producer.app).get('/v1/videos').set(auth);
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(throttled.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(throttled.body.detail).toMatch(/too many failed authentications from this address/);
  });
});

describe('failed authentication behind a reverse proxy', () => {
  const guess = { authorization: 'Bearer cl_guessguessgu_guessguessguessguessguessguessgu' };

  /** Three failed guesses from `forwardedFor` (as a proxy would name it), then what a good key gets from another client. */
  async function guessesThenAnother(overrides: Partial<ServiceContext['config']>): Promise<number[]> {
    const { producer } = await producerWith({ authFailuresPerMinute: 3, ...overrides });
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 55_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 100));
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 4; attempt += 1) {
      statuses.push((await request(producer.app).get('/v1/videos').set(guess).set('x-forwarded-for', '203.0.113.7')).status);
    }
    statuses.push((await request(producer.app).get('/v1/videos').set(auth).set('x-forwarded-for', '203.0.113.8')).status);
    return statuses;
  }

  it('counts each client a proxy named in TRUST_PROXY forwarded for on its own', async () => {
    const statuses = await guessesThenAnother({ trustProxy: ['loopback'], queuePrefix: `${env.config.queuePrefix}:proxied` });
    expect(statuses).toEqual([401, 401, 401, 429, 200]);
  });

  it('ignores X-Forwarded-For from a peer not named there: the peer is the client, and cannot spread guesses', async () => {
    const statuses = await guessesThenAnother({ trustProxy: false, queuePrefix: `${env.config.queuePrefix}:unproxied` });
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
  });
});

describe('failed authentication in parallel', () => {
  it('checks at most the limit of guesses sent at once: the attempt is counted before the lookup', async () => {
    const { producer, lookups } = await producerWith({ authFailuresPerMinute: 20, queuePrefix: `${env.config.queuePrefix}:burst` });
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 100));
    const guess = () => request(producer.app).get('/v1/videos').set({ authorization: 'Bearer cl_guessguessgu_guessguessguessguessguessguessgu' });
    const statuses = (await Promise.all(Array.from({ length: 60 }, guess))).map((res) => res.status);
    expect(statuses.filter((status) => status === 401)).toHaveLength(20);
    expect(statuses.filter((status) => status === 429)).toHaveLength(40);
    expect(lookups.count).toBe(20);
  });

  it('lets a stored key that was accepted before send more requests at once than the limit, and refuses it at once when revoked', async () => {
    const admin = 'abuse-admin-key-0123456789abcdef0123456789';
    const service = createService('producer', {
      ...env.config,
      adminApiKeys: [admin],
      authFailuresPerMinute: 20,
      queuePrefix: `${env.config.queuePrefix}:stored`,
    });
    started.push(service);
    const producer = buildProducer(service);
    await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
    const created = await request(producer.app)
      .post('/v1/admin/keys')
      .set({ authorization: `Bearer ${admin}` })
      .send({ name: 'burst', tenant: 'burst' });
    expect(created.status).toBe(201);
    const stored = { authorization: `Bearer ${created.body.key}` };
    expect((await request(producer.app).get('/v1/videos').set(stored)).status).toBe(200);
    // Each of these once reserved an attempt until its lookup settled: past 20 at once, 429.
    const burst = await Promise.all(Array.from({ length: 60 }, () => request(producer.app).get('/v1/videos').set(stored)));
    expect(burst.map((res) => res.status)).toEqual(Array(60).fill(200));
    expect(burst.every((res) => res.body.items !== undefined)).toBe(true);
    const revoked = await request(producer.app)
      .delete(`/v1/admin/keys/${created.body.id}`)
      .set({ authorization: `Bearer ${admin}` });
    expect(revoked.body).toEqual({ outcome: 'revoked' });
    const after = await request(producer.app).get('/v1/videos').set(stored);
    expect(after.status).toBe(401);
    expect(after.body.detail).toBe('API key is not valid');
  });

  it('answers 503, not 401, while stored keys cannot be looked up, and counts no failed authentication', async () => {
    const service = createService('producer', { ...env.config, authFailuresPerMinute: 3, queuePrefix: `${env.config.queuePrefix}:lookup` });
    started.push(service);
    let down = true;
    const producer = buildProducer(service, {
      verifyKey: async () => {
        if (down) throw new Error('Connection terminated unexpectedly');
        return { id: 'k1', tenant: 'lookup', role: 'tenant', name: 'svc' } as never;
      },
    });
    await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
    const stored = { authorization: 'Bearer cl_storedstored_storedstoredstoredstoredstoredst' };
    const during: request.Response[] = [];
    for (let attempt = 0; attempt < 6; attempt += 1) during.push(await request(producer.app).get('/v1/videos').set(stored));
    expect(during.map((res) => res.status)).toEqual(Array(6).fill(503));
    expect(during[0]!.body.detail).toMatch(/API keys cannot be checked now/);
    // Six lookups failed against a limit of three failures: none counted, the key is let in once the database is back.
    down = false;
    expect((await request(producer.app).get('/v1/videos').set(stored)).status).toBe(200);
    // Remembered now; a failing lookup again is a 503, not a revocation.
    down = true;
    expect((await request(producer.app).get('/v1/videos').set(stored)).status).toBe(503);
    down = false;
    expect((await request(producer.app).get('/v1/videos').set(stored)).status).toBe(200);
  });

  it('folds IPv6 clients to their /64 and mapped IPv4 to IPv4', () => {
    expect(clientAddress('2001:db8:1:2:aaaa::1')).toBe(clientAddress('2001:db8:1:2:ffff:ffff:ffff:fffe'));
    expect(clientAddress('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(clientAddress('2001:db8:1:3::1')).not.toBe(clientAddress('2001:db8:1:2::1'));
    expect(clientAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(clientAddress('::1')).toBe('0:0:0:0::/64');
  });
});

describe('the per-key rate limit in parallel', () => {
  it('cuts at the limit when requests arrive together: charged in shared commands, each with its own remaining count', async () => {
    const { producer } = await producerWith({ apiRateLimitPerMinute: 20, queuePrefix: `${env.config.queuePrefix}:together` });
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 100));
    // Counts the charging commands the producer sends (real Redis answers them). Each is held
    // 100 ms first, as a Redis under load would answer: the burst then surely arrives while one
    // is pending, however slowly this machine serves it; without grouping there would still be 30.
    const redis = producer.redis as unknown as { eval: (...args: unknown[]) => Promise<unknown> };
    const send = redis.eval.bind(redis);
    let commands = 0;
    redis.eval = async (...args: unknown[]) => {
      commands += 1;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return send(...args);
    };
    const server = http.createServer(producer.app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const agent = request.agent(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      const burst = await Promise.all(Array.from({ length: 30 }, () => agent.get('/v1/videos').set(auth)));
      const admitted = burst.filter((res) => res.status === 200);
      expect(admitted).toHaveLength(20);
      expect(burst.filter((res) => res.status === 429)).toHaveLength(10);
      // As with a command each: every admitted request saw a different remaining count, 19 down to 0.
      const remaining = admitted.map((res) => Number(res.headers['ratelimit-remaining'])).sort((a, b) => a - b);
      expect(remaining).toEqual(Array.from({ length: 20 }, (_, index) => index));
      expect(commands).toBeGreaterThan(0);
      expect(commands).toBeLessThan(30);
    } finally {
      server.close();
    }
  });
});

describe('registrations in a burst', () => {
  it('past what the strength check has queued are answered 503 with Retry-After, never 500', async () => {
    const service = createService('producer', { ...env.config, apiRateLimitPerMinute: 0, queuePrefix: `${env.config.queuePrefix}:burst` });
    started.push(service);
    const producer = buildProducer(service, { strengthQueue: 1 });
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        request(producer.app)
          .post('/v1/users')
          .set(auth)
          .send({ email: `burst-${i}-${Date.now()}@example.com`, password: 'plum-Lantern-47-overcast-quietly' }),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status !== 202 && status !== 503)).toEqual([]);
    const refused = answers.find((answer) => answer.status === 503);
    expect(refused?.headers['retry-after']).toBe('2');
    expect(refused?.body.detail).toMatch(/too many registrations/);
  });
});

describe('Idempotency-Key across a keyring rotation', () => {
  it('replays a key stored by the previous release, whose fingerprint key came from the whole keyring text', async () => {
    const keyring = `k2:${Buffer.alloc(32, 4).toString('base64')}, k1:${Buffer.alloc(32, 3).toString('base64')}`;
    const { producer } = await producerWith({ accountsKeyring: keyring, apiRateLimitPerMinute: 0, queuePrefix: `${env.config.queuePrefix}:legacy` });
    const body = { source: `https://cdn.example.com/legacy-${Date.now()}.mp4` };
    // Which principal this key stores under: read off a request of its own.
    const probe = `probe-${Date.now()}`;
    await request(producer.app).post('/v1/videos').set(auth).set('idempotency-key', probe).send({ source: 'https://cdn.example.com/probe.mp4' });
    const { principal } = await env.db.selectFrom('idempotency_keys').select('principal').where('key', '=', probe).executeTakeFirstOrThrow();
    // What the previous release stored: HMAC under sha256 of the whole text, of the path as spelt.
    const legacyKey = createHash('sha256').update(`idempotency-fingerprint:${keyring}`).digest('hex');
    const hash = createHmac('sha256', legacyKey)
      .update(`POST /v1/videos\n${JSON.stringify(body)}`)
      .digest('hex');
    const key = `legacy-${Date.now()}`;
    const stored = { id: randomUUID(), status: 'queued' };
    await env.db
      .insertInto('idempotency_keys')
      .values({
        principal,
        key,
        request_hash: hash,
        state: 'completed',
        response_status: 202,
        response_body: JSON.stringify(stored),
        response_location: null,
        claim_token: null,
        created_at: new Date(),
        expires_at: new Date(Date.now() + 3600_000),
      } as never)
      .execute();
    const retried = await request(producer.app).post('/v1/videos').set(auth).set('idempotency-key', key).send(body);
    expect([retried.status, retried.body]).toEqual([202, stored]);
  });

  it('replays a request first answered before the rotation (the new key put first), on a replica that has it', async () => {
    const oldKey = `k1:${Buffer.alloc(32, 7).toString('base64')}`;
    const newKey = `k2:${Buffer.alloc(32, 9).toString('base64')}`;
    const prefix = `${env.config.queuePrefix}:rotation`;
    const before = (await producerWith({ accountsKeyring: oldKey, apiRateLimitPerMinute: 0, queuePrefix: prefix })).producer;
    const after = (await producerWith({ accountsKeyring: `${newKey},${oldKey}`, apiRateLimitPerMinute: 0, queuePrefix: prefix })).producer;
    const body = { source: `https://cdn.example.com/rotation-${Date.now()}.mp4` };
    const key = `rotation-${Date.now()}`;
    const first = await request(before.app).post('/v1/videos').set(auth).set('idempotency-key', key).send(body);
    expect(first.status).toBe(202);
    const retried = await request(after.app).post('/v1/videos').set(auth).set('idempotency-key', key).send(body);
    expect([retried.status, retried.body.id, retried.headers['idempotent-replayed']]).toEqual([202, first.body.id, 'true']);
    // Another body is still another request.
    const other = await request(after.app).post('/v1/videos').set(auth).set('idempotency-key', key).send({ source: 'https://cdn.example.com/x.mp4' });
    expect(other.status).toBe(422);
  });
});

describe('batches', () => {
  it('charge each video against the per-key rate limit', async () => {
    const { producer } = await producerWith({ apiRateLimitPerMinute: 10, queuePrefix: `${env.config.queuePrefix}:rate` });
    // Both batches must fall in one minute window of the limit.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 100));
    const videos = (n: number) => ({ videos: Array.from({ length: n }, (_, i) => ({ source: `https://cdn.example.com/${i}.mp4` })) });
    const first = await request(producer.app).post('/v1/videos:batch').set(auth).send(videos(8));
    expect(first.status).toBe(202);
    expect(first.headers['ratelimit-remaining']).toBe('2');
    const second = await request(producer.app).post('/v1/videos:batch').set(auth).send(videos(3));
    expect(second.status).toBe(429);
    expect(second.body.detail).toMatch(/limited to 10 requests per minute \(a batch counts each video\)/);
    expect(Number(second.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('are refused for a bad source before they are charged: the 400 names the video, and its videos cost nothing', async () => {
    const { producer } = await producerWith({ apiRateLimitPerMinute: 10, queuePrefix: `${env.config.queuePrefix}:rate-bad` });
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 100));
    const videos = Array.from({ length: 8 }, (_, i) => ({ source: `https://cdn.example.com/bad-${i}.mp4` }));
    videos.push({ source: 'ftp://cdn.example.com/9.mp4' });
    const refused = await request(producer.app).post('/v1/videos:batch').set(auth).send({ videos });
    expect([refused.status, refused.body.errors?.[0]?.path]).toEqual([400, 'videos.8.source']);
    // Only the refused request itself was counted (1 of 10): a batch of eight still fits, leaving one.
    const next = await request(producer.app)
      .post('/v1/videos:batch')
      .set(auth)
      .send({ videos: videos.slice(0, 8) });
    expect([next.status, next.headers['ratelimit-remaining']]).toEqual([202, '1']);
  });

  it('refused by the cap on unfinished videos cost only the request itself, not each of their videos', async () => {
    const key = 'batch-cap-key-0123456789abcdef012345678';
    const { producer } = await producerWith({
      apiKeys: [key],
      apiRateLimitPerMinute: 10,
      maxActiveVideosPerTenant: 2,
      queuePrefix: `${env.config.queuePrefix}:rate-cap`,
    });
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 100));
    const videos = (n: number) => ({ videos: Array.from({ length: n }, (_, i) => ({ source: `https://cdn.example.com/cap-${i}.mp4` })) });
    const refused = await request(producer.app)
      .post('/v1/videos:batch')
      .set({ authorization: `Bearer ${key}` })
      .send(videos(8));
    expect(refused.status).toBe(429);
    expect(refused.body.detail).toMatch(/MAX_ACTIVE_VIDEOS_PER_TENANT/);
    // One unit of ten spent: a batch of two fits, leaving seven.
    const next = await request(producer.app)
      .post('/v1/videos:batch')
      .set({ authorization: `Bearer ${key}` })
      .send(videos(2));
    expect([next.status, next.headers['ratelimit-remaining']]).toEqual([202, '7']);
  });
});

describe('unfinished videos per tenant', () => {
  it('are capped: past the cap a submission or a batch is refused with 429 and nothing is stored', async () => {
    // A tenant of its own, so the videos other tests submitted do not count here.
    const capKey = 'cap-test-key-0123456789abcdef0123456789';
    const capAuth = { authorization: `Bearer ${capKey}` };
    const { producer, config } = await producerWith({
      apiKeys: [capKey],
      maxActiveVideosPerTenant: 3,
      apiRateLimitPerMinute: 0,
      queuePrefix: `${env.config.queuePrefix}:cap`,
    });
    const submit = () => request(producer.app).post('/v1/videos').set(capAuth).send({ source: 'https://cdn.example.com/cap.mp4' });
    const accepted = [await submit(), await submit()];
    expect(accepted.map((res) => res.status)).toEqual([202, 202]);
    const batch = await request(producer.app)
      .post('/v1/videos:batch')
      .set(capAuth)
      .send({ videos: [{ source: 'https://cdn.example.com/x.mp4' }, { source: 'https://cdn.example.com/y.mp4' }] });
    expect(batch.status).toBe(429);
    expect(batch.body).toMatchObject({ activeVideos: 2, limit: 3 });
    expect(batch.body.detail).toMatch(/at most 3 \(MAX_ACTIVE_VIDEOS_PER_TENANT\); a batch of 2 does not fit/);
    expect((await submit()).status).toBe(202);
    const refused = await submit();
    expect(refused.status).toBe(429);
    expect(refused.body.detail).toMatch(/has 3 unfinished videos and may have at most 3/);
    const stored = await env.db
      .selectFrom('videos')
      .select('id')
      .where('source', 'in', ['https://cdn.example.com/cap.mp4', 'https://cdn.example.com/x.mp4', 'https://cdn.example.com/y.mp4'])
      .execute();
    expect(stored).toHaveLength(3);
    // A finished video frees its place.
    await producer.videos.setStatus(accepted[0]!.body.id, 'completed');
    expect((await submit()).status).toBe(202);
    expect(config.maxActiveVideosPerTenant).toBe(3);
  });

  it('hold when submissions arrive together: of 40 at once, and of 10 batches at once, no more are stored than the cap allows', async () => {
    const rushKey = 'rush-test-key-0123456789abcdef0123456789';
    const rushAuth = { authorization: `Bearer ${rushKey}` };
    const { producer } = await producerWith({
      apiKeys: [rushKey],
      maxActiveVideosPerTenant: 3,
      apiRateLimitPerMinute: 0,
      queuePrefix: `${env.config.queuePrefix}:rush`,
    });
    const tenantVideos = async () =>
      (await env.db.selectFrom('videos').select('id').where('source', 'like', 'https://cdn.example.com/rush-%').execute()).length;
    const singles = await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        request(producer.app)
          .post('/v1/videos')
          .set(rushAuth)
          .send({ source: `https://cdn.example.com/rush-${index}.mp4` }),
      ),
    );
    expect(singles.filter((res) => res.status === 202)).toHaveLength(3);
    expect(singles.filter((res) => res.status === 429)).toHaveLength(37);
    expect(await tenantVideos()).toBe(3);

    await producer.videos.setStatus(singles.find((res) => res.status === 202)!.body.id, 'completed');
    await producer.videos.setStatus(singles.filter((res) => res.status === 202)[1]!.body.id, 'completed');
    // Two places left: of ten batches of two sent at once, one fits.
    const batches = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        request(producer.app)
          .post('/v1/videos:batch')
          .set(rushAuth)
          .send({ videos: [0, 1].map((n) => ({ source: `https://cdn.example.com/rush-batch-${index}-${n}.mp4` })) }),
      ),
    );
    expect(batches.filter((res) => res.status === 202)).toHaveLength(1);
    expect(batches.filter((res) => res.status === 429).map((res) => res.body.detail)).toEqual(
      Array(9).fill(expect.stringMatching(/has 3 unfinished videos and may have at most 3/)),
    );
    expect(await tenantVideos()).toBe(5);
  });
});

describe('egress at submission', () => {
  it('refuses sources and callbacks written as non-public addresses when private sources are off, naming the field', async () => {
    const { producer } = await producerWith({ allowPrivateSources: false, apiRateLimitPerMinute: 0, queuePrefix: `${env.config.queuePrefix}:egress` });
    const before = await env.db.selectFrom('videos').select('id').execute();
    for (const source of [
      'http://127.1/a.mp4',
      'http://2130706433/a.mp4',
      'http://[::ffff:7f00:1]:3000/a.mp4',
      'http://localhost./a.mp4',
      'http://169.254.169.254/latest/meta-data',
      // Forms without the double slash that a URL parser reads as the same hosts.
      'http:/127.0.0.1/a.mp4',
      'http:127.0.0.1/a.mp4',
      'http:\\\\127.0.0.1\\a.mp4',
      'https:/[::1]/x.mp4',
    ]) {
      const res = await request(producer.app).post('/v1/videos').set(auth).send({ source });
      expect([source, res.status, res.body.errors?.[0]?.path]).toEqual([source, 400, 'source']);
    }
    const callback = await request(producer.app)
      .post('/v1/videos')
      .set(auth)
      .send({ source: 'https://cdn.example.com/a.mp4', callbackUrl: 'http://[::1]:8080/hook' });
    expect(callback.status).toBe(400);
    expect(callback.body.detail).toMatch(/^callbackUrl: /);
    const batch = await request(producer.app)
      .post('/v1/videos:batch')
      .set(auth)
      .send({ videos: [{ source: 'https://cdn.example.com/a.mp4' }, { source: 'http://10.0.0.1/b.mp4' }] });
    expect(batch.status).toBe(400);
    expect(batch.body.errors[0].path).toBe('videos.1.source');
    expect(await env.db.selectFrom('videos').select('id').execute()).toHaveLength(before.length);
    expect((await request(producer.app).post('/v1/videos').set(auth).send({ source: 'https://cdn.example.com/ok.mp4' })).status).toBe(202);
  });
});

describe('local files at submission', () => {
  it('are refused outside FILE_SOURCE_ROOTS, among the stored videos, or when no directory is named, naming the field', async () => {
    const { producer } = await producerWith({ fileSourceRoots: ['/srv/media'], apiRateLimitPerMinute: 0, queuePrefix: `${env.config.queuePrefix}:files` });
    const submit = (source: string) => request(producer.app).post('/v1/videos').set(auth).send({ source });
    expect((await submit('/srv/media/talk.mp4')).status).toBe(202);
    for (const source of ['/etc/passwd', 'file:///srv/media/../../etc/passwd', '/srv/media-other/a.mp4']) {
      const res = await submit(source);
      expect([source, res.status, res.body.errors?.[0]?.path]).toEqual([source, 400, 'source']);
      expect(res.body.detail).toMatch(/^source: local file \S+ is outside the directories sources may be read from \(FILE_SOURCE_ROOTS\)$/);
    }
    const batch = await request(producer.app)
      .post('/v1/videos:batch')
      .set(auth)
      .send({ videos: [{ source: '/srv/media/a.mp4' }, { source: '/root/b.mp4' }] });
    expect([batch.status, batch.body.errors?.[0]?.path]).toEqual([400, 'videos.1.source']);

    const anywhere = await producerWith({ fileSourceRoots: 'any', apiRateLimitPerMinute: 0, queuePrefix: `${env.config.queuePrefix}:files-any` });
    const stored = path.join(env.config.storageDir, 'videos', '0b5e1a3c-6d0f-4f7e-8a51-1c2d3e4f5a6b', 'source.mp4');
    const storedRes = await request(anywhere.producer.app).post('/v1/videos').set(auth).send({ source: stored });
    expect(storedRes.status).toBe(400);
    expect(storedRes.body.detail).toBe(
      `source: local file ${stored} is one of the stored videos' files (the storage folder's videos/): submit the original file`,
    );

    const nowhere = await producerWith({ fileSourceRoots: [], apiRateLimitPerMinute: 0, queuePrefix: `${env.config.queuePrefix}:files-none` });
    const none = await request(nowhere.producer.app).post('/v1/videos').set(auth).send({ source: '/srv/media/talk.mp4' });
    expect([none.status, none.body.detail]).toEqual([
      400,
      'source: local files are not taken as sources here (FILE_SOURCE_ROOTS names no directory): submit an http(s) URL',
    ]);
    expect((await request(nowhere.producer.app).post('/v1/videos').set(auth).send({ source: 'https://cdn.example.com/a.mp4' })).status).toBe(202);
  });
});

describe('live event streams', () => {
  async function listening(overrides: Partial<ServiceContext['config']>) {
    const { producer } = await producerWith({ apiRateLimitPerMinute: 0, maxActiveVideosPerTenant: 1000, ...overrides });
    const server = createProducerServer(producer.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const submitted = await request(producer.app).post('/v1/videos').set(auth).send({ source: 'https://cdn.example.com/live.mp4' });
    return { server, base, videoId: submitted.body.id as string };
  }

  /** Opens a stream and resolves with its response once headers arrive. */
  const open = (url: string) =>
    new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(url, { headers: auth }, resolve).on('error', reject);
    });

  it('are capped per key: past the cap a stream is refused with 429; closing one frees its slot', async () => {
    const { server, base, videoId } = await listening({ sseMaxStreamsPerKey: 2, queuePrefix: `${env.config.queuePrefix}:sse` });
    try {
      const [a, b] = [await open(`${base}/v1/videos/${videoId}/events`), await open(`${base}/v1/videos/${videoId}/events`)];
      expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
      const third = await open(`${base}/v1/videos/${videoId}/events`);
      expect(third.statusCode).toBe(429);
      expect(third.headers['retry-after']).toBe('30');
      third.resume();
      a.destroy();
      // The slot is given back when the server sees the stream close.
      let again: http.IncomingMessage | undefined;
      for (let tries = 0; tries < 50; tries += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        again = await open(`${base}/v1/videos/${videoId}/events`);
        if (again.statusCode === 200) break;
        again.resume();
      }
      expect(again!.statusCode).toBe(200);
      again!.destroy();
      b.destroy();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('answer HEAD with the headers alone, holding no slot: a keep-alive HEAD does not keep a stream open', async () => {
    const { server, base, videoId } = await listening({ sseMaxStreamsPerKey: 1, queuePrefix: `${env.config.queuePrefix}:head` });
    const agent = new http.Agent({ keepAlive: true });
    try {
      for (let i = 0; i < 3; i += 1) {
        const head = await new Promise<http.IncomingMessage>((resolve, reject) => {
          http.request(`${base}/v1/videos/${videoId}/events`, { method: 'HEAD', headers: auth, agent }, resolve).on('error', reject).end();
        });
        expect([head.statusCode, head.headers['content-type']]).toEqual([200, expect.stringMatching(/^text\/event-stream/)]);
        head.resume();
      }
      const missing = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.request(`${base}/v1/videos/${randomUUID()}/events`, { method: 'HEAD', headers: auth, agent }, resolve).on('error', reject).end();
      });
      expect(missing.statusCode).toBe(404);
      missing.resume();
      // The one slot is free for a real stream.
      const stream = await open(`${base}/v1/videos/${videoId}/events`);
      expect(stream.statusCode).toBe(200);
      stream.destroy();
    } finally {
      agent.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('end after SSE_MAX_SECONDS with a comment saying to reconnect with Last-Event-ID', async () => {
    const { server, base, videoId } = await listening({ sseMaxSeconds: 1, queuePrefix: `${env.config.queuePrefix}:life` });
    try {
      const stream = await open(`${base}/v1/videos/${videoId}/events`);
      expect(stream.statusCode).toBe(200);
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (text += chunk));
      await new Promise((resolve) => stream.on('end', resolve));
      expect(text).toMatch(/^retry: 2000/);
      expect(text).toMatch(/id: \d+\nevent: progress\n/);
      expect(text).toMatch(/: stream ends after 1 s; reconnect with Last-Event-ID\n\n$/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
