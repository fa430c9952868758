/**
 * The trust boundary: two tenants and an operator against every route that names a resource.
 * The owner and the operator reach it; the other tenant gets exactly what a missing resource
 * gets (status and body, with only the id differing), and lists and catalogues show only the
 * caller's own work.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { AnalysisRepository, createService, type ServiceContext } from '@clipline/shared';
import { buildProducer } from '../src/producer.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

const KEY_A = 'tenant-a-key-0123456789abcdef0123456789';
const KEY_B = 'tenant-b-key-0123456789abcdef0123456789';
const KEY_ADMIN = 'operator-key-0123456789abcdef0123456789';
const callers = { owner: KEY_A, other: KEY_B, admin: KEY_ADMIN } as const;
type CallerName = keyof typeof callers;

let env: TestEnvironment;
let service: ServiceContext;
let producer: ReturnType<typeof buildProducer>;
const clipBytes = Buffer.from('not really an mp4, but the bytes a download must return');

beforeAll(async () => {
  // A storage directory with a dot segment, as the default `.data/storage` has.
  env = await createTestEnvironment({ API_KEYS: `${KEY_A},${KEY_B}`, ADMIN_API_KEYS: KEY_ADMIN, API_RATE_LIMIT_PER_MINUTE: '0' });
  const storageDir = path.join(env.config.storageDir, '.data', 'storage');
  service = createService('producer', { ...env.config, storageDir });
  producer = buildProducer(service);
  await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
});

afterAll(async () => {
  await service.shutdown.shutdown('tests done');
  await env.cleanup();
});

const as = (caller: CallerName) => ({ authorization: `Bearer ${callers[caller]}` });
const call = (caller: CallerName, method: 'get' | 'post' | 'delete', url: string, body?: object) => {
  const req = request(producer.app)[method](url).set(as(caller));
  return body ? req.send(body) : req;
};

/** What a client can tell apart: the status and the body with the resource's id blanked out. */
const shape = (res: request.Response, ...ids: string[]) => {
  let text = res.text;
  for (const id of ids) text = text.split(id).join('<id>');
  return { status: res.status, type: res.headers['content-type'], body: text };
};

interface OwnedWork {
  videoId: string;
  queuedVideoId: string;
  clipId: string;
  userId: string;
  jobId: string;
}

let work: OwnedWork;

/** Tenant A's work: a completed video with a rendered clip on disk, a queued video, a user, a public job. */
async function submitWorkOfTenantA(): Promise<OwnedWork> {
  const submitted = await call('owner', 'post', '/v1/videos', { source: 'https://cdn.example.com/a.mp4', title: 'tenant A' });
  expect(submitted.status).toBe(202);
  const queued = await call('owner', 'post', '/v1/videos', { source: 'https://cdn.example.com/b.mp4' });
  const videoId = submitted.body.id as string;
  await producer.videos.setStatus(videoId, 'completed');
  const key = `videos/${videoId}/clips/0.mp4`;
  const storage = path.join(env.config.storageDir, '.data', 'storage');
  await mkdir(path.join(storage, 'videos', videoId, 'clips'), { recursive: true });
  await writeFile(path.join(storage, key), clipBytes);
  const clip = await new AnalysisRepository(producer.db).upsertClip({
    videoId,
    clipIndex: 0,
    startSeconds: 1,
    endSeconds: 6,
    score: 80,
    reasons: ['test'],
    aspect: '9:16',
    status: 'rendered',
    storageKey: key,
    thumbnailKey: key,
    width: 198,
    height: 352,
    durationSeconds: 5,
  });
  const user = await call('owner', 'post', '/v1/users', { email: `owner-${randomUUID()}@example.com`, password: 'correct horse battery staple 42!' });
  expect(user.status).toBe(202);
  const job = await call('owner', 'post', '/v1/jobs/sync/refresh-metadata', { videoId });
  expect(job.status).toBe(202);
  return { videoId, queuedVideoId: queued.body.id, clipId: clip.id, userId: user.body.id, jobId: job.body.id };
}

beforeAll(async () => {
  work = await submitWorkOfTenantA();
});

describe('tenancy matrix', () => {
  const routes: [string, (w: OwnedWork) => string, (missing: string) => string, 'get', number][] = [
    ['GET /v1/videos/:id', (w) => `/v1/videos/${w.videoId}`, (m) => `/v1/videos/${m}`, 'get', 200],
    ['GET /v1/videos/:id/clips/:clipId/file', (w) => `/v1/videos/${w.videoId}/clips/${w.clipId}/file`, (m) => `/v1/videos/${m}/clips/${m}/file`, 'get', 200],
    [
      'GET /v1/videos/:id/clips/:clipId/thumbnail',
      (w) => `/v1/videos/${w.videoId}/clips/${w.clipId}/thumbnail`,
      (m) => `/v1/videos/${m}/clips/${m}/thumbnail`,
      'get',
      200,
    ],
    ['GET /v1/users/:id', (w) => `/v1/users/${w.userId}`, (m) => `/v1/users/${m}`, 'get', 200],
    ['GET /v1/jobs/sync/:id', (w) => `/v1/jobs/sync/${w.jobId}`, (m) => `/v1/jobs/sync/${m}`, 'get', 200],
  ];

  it.each(routes)('%s: owner and operator reach it; the other tenant gets what a missing one gets', async (_name, owned, missingPath, method, ok) => {
    const url = owned(work);
    const missing = randomUUID();
    const ownerRes = await call('owner', method, url);
    const adminRes = await call('admin', method, url);
    const otherRes = await call('other', method, url);
    const missingRes = await call('other', method, missingPath(missing));
    expect([ownerRes.status, adminRes.status, otherRes.status, missingRes.status]).toEqual([ok, ok, 404, 404]);
    const resourceIds = Object.values(work).filter((id) => url.includes(id));
    expect(shape(otherRes, ...resourceIds)).toEqual(shape(missingRes, missing));
  });

  it('serves the clip bytes to the owner from a storage directory with a dot segment', async () => {
    const res = await call('owner', 'get', `/v1/videos/${work.videoId}/clips/${work.clipId}/file`)
      .buffer(true)
      .parse((response, done) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => done(null, Buffer.concat(chunks)));
      });
    expect(res.status).toBe(200);
    expect(Buffer.compare(res.body as Buffer, clipBytes)).toBe(0);
    // A shared cache in front of the API must not hand one tenant's clip to the next caller.
    expect(res.headers['cache-control']).toBe('private, max-age=3600');
  });

  it('answers a range or precondition the clip cannot meet with a 416 or 412 problem that describes no file', async () => {
    const url = `/v1/videos/${work.videoId}/clips/${work.clipId}/file`;
    const partial = await call('owner', 'get', url).set('range', 'bytes=5-9');
    expect([partial.status, partial.headers['content-range'], partial.headers['cache-control']]).toEqual([
      206,
      `bytes 5-9/${clipBytes.length}`,
      'private, max-age=3600',
    ]);
    const outside = await call('owner', 'get', url).set('range', 'bytes=999999-');
    expect(outside.status).toBe(416);
    expect(outside.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(outside.body).toMatchObject({ status: 416, title: 'Range Not Satisfiable' });
    expect(outside.headers['content-range']).toBe(`bytes */${clipBytes.length}`);
    const stale = await call('owner', 'get', url).set('if-match', '"not-this-file"');
    expect(stale.status).toBe(412);
    expect(stale.body).toMatchObject({ status: 412, title: 'Precondition Failed' });
    for (const res of [outside, stale]) {
      expect([res.headers['cache-control'], res.headers['last-modified'], res.headers['content-disposition']]).toEqual([undefined, undefined, undefined]);
      // Its ETag, if any, is the problem body's own, not the file's.
      expect(res.headers.etag).not.toBe(partial.headers.etag);
    }
  });

  it('GET /v1/videos/:id/events: the other tenant gets 404 as for a missing video; the owner and operator get the stream', async () => {
    const finished = { 'last-event-id': '999999' };
    const owner = await call('owner', 'get', `/v1/videos/${work.videoId}/events`).set(finished);
    const admin = await call('admin', 'get', `/v1/videos/${work.videoId}/events`).set(finished);
    const other = await call('other', 'get', `/v1/videos/${work.videoId}/events`).set(finished);
    const missingId = randomUUID();
    const missing = await call('other', 'get', `/v1/videos/${missingId}/events`).set(finished);
    // 204: the client already holds the final event of a finished video.
    expect([owner.status, admin.status, other.status, missing.status]).toEqual([204, 204, 404, 404]);
    expect(shape(other, work.videoId)).toEqual(shape(missing, missingId));
  });

  it('DELETE /v1/videos/:id: the other tenant cannot cancel; it is told what a missing video gets', async () => {
    const other = await call('other', 'delete', `/v1/videos/${work.queuedVideoId}`);
    const missingId = randomUUID();
    const missing = await call('other', 'delete', `/v1/videos/${missingId}`);
    expect(shape(other, work.queuedVideoId)).toEqual(shape(missing, missingId));
    expect(other.status).toBe(404);
    expect((await call('owner', 'get', `/v1/videos/${work.queuedVideoId}`)).body.status).toBe('queued');
    expect((await call('owner', 'delete', `/v1/videos/${work.queuedVideoId}`)).status).toBe(202);
    expect((await call('owner', 'get', `/v1/videos/${work.queuedVideoId}`)).body.status).toBe('cancelled');
  });

  it("DELETE by an operator cancels any tenant's video", async () => {
    const queued = await call('owner', 'post', '/v1/videos', { source: 'https://cdn.example.com/c.mp4' });
    expect((await call('admin', 'delete', `/v1/videos/${queued.body.id}`)).status).toBe(202);
    expect((await call('owner', 'get', `/v1/videos/${queued.body.id}`)).body.status).toBe('cancelled');
  });

  it("GET /v1/videos lists only the caller's videos; the operator sees every tenant's", async () => {
    const mineB = await call('other', 'post', '/v1/videos', { source: 'https://cdn.example.com/b-own.mp4' });
    const ids = async (caller: CallerName) =>
      ((await call(caller, 'get', '/v1/videos?limit=100')).body.items as { id: string; tenant: string }[]).map((item) => item.id);
    const ofA = await ids('owner');
    const ofB = await ids('other');
    const all = await ids('admin');
    expect(ofA).toContain(work.videoId);
    expect(ofA).not.toContain(mineB.body.id);
    expect(ofB).toContain(mineB.body.id);
    expect(ofB).not.toContain(work.videoId);
    expect(ofB.filter((id) => ofA.includes(id))).toEqual([]);
    expect(all).toEqual(expect.arrayContaining([...ofA, ...ofB]));
    // A cursor from one tenant's page is only a place in the order to another: it lists that tenant's own videos.
    const page = await call('owner', 'get', '/v1/videos?limit=1');
    const foreign = await call('other', 'get', `/v1/videos?limit=100&cursor=${page.body.nextCursor}`);
    expect(foreign.status).toBe(200);
    for (const item of foreign.body.items as { id: string }[]) expect(ofB).toContain(item.id);
  });

  it("POST /v1/jobs naming another tenant's video answers what an unknown video gets, and nothing is enqueued", async () => {
    const other = await call('other', 'post', '/v1/jobs/sync/refresh-metadata', { videoId: work.videoId });
    const missingId = randomUUID();
    const missing = await call('other', 'post', '/v1/jobs/sync/refresh-metadata', { videoId: missingId });
    expect(other.status).toBe(404);
    expect(shape(other, work.videoId)).toEqual(shape(missing, missingId));
    // Nothing was ever recorded for tenant B.
    const tenantB = `key-${createHash('sha256').update(KEY_B).digest('hex').slice(0, 12)}`;
    expect(await env.db.selectFrom('public_jobs').select('id').where('tenant_id', '=', tenantB).execute()).toEqual([]);
    expect((await call('admin', 'post', '/v1/jobs/sync/refresh-metadata', { videoId: work.videoId })).status).toBe(202);
  });

  it('DELETE ?purge=true: the other tenant gets what a missing video gets; an unfinished video is refused; the owner purges files and rows', async () => {
    const missingId = randomUUID();
    const other = await call('other', 'delete', `/v1/videos/${work.videoId}?purge=true`);
    const missing = await call('other', 'delete', `/v1/videos/${missingId}?purge=true`);
    expect(other.status).toBe(404);
    expect(shape(other, work.videoId)).toEqual(shape(missing, missingId));
    const unfinished = await call('owner', 'post', '/v1/videos', { source: 'https://cdn.example.com/unfinished.mp4' });
    const refused = await call('owner', 'delete', `/v1/videos/${unfinished.body.id}?purge=true`);
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/only a finished video .* can be purged; cancel it first/);
    expect((await call('owner', 'delete', `/v1/videos/${unfinished.body.id}?purge=maybe`)).status).toBe(400);
    // A video of its own, so the other tests keep theirs.
    const doomed = await call('owner', 'post', '/v1/videos', { source: 'https://cdn.example.com/doomed.mp4' });
    await producer.videos.setStatus(doomed.body.id, 'completed');
    const storage = path.join(env.config.storageDir, '.data', 'storage');
    await mkdir(path.join(storage, 'videos', doomed.body.id, 'clips'), { recursive: true });
    await writeFile(path.join(storage, 'videos', doomed.body.id, 'clips', '0.mp4'), clipBytes);
    const purged = await call('owner', 'delete', `/v1/videos/${doomed.body.id}?purge=true`);
    expect(purged.status).toBe(200);
    expect(purged.body).toEqual({ id: doomed.body.id, status: 'purged', bytesRemoved: clipBytes.length });
    expect((await call('owner', 'get', `/v1/videos/${doomed.body.id}`)).status).toBe(404);
    expect(await env.db.selectFrom('videos').select('id').where('id', '=', doomed.body.id).execute()).toEqual([]);
  });

  it('every record carries its tenant', async () => {
    const video = await env.db.selectFrom('videos').select('tenant_id').where('id', '=', work.videoId).executeTakeFirstOrThrow();
    const user = await env.db.selectFrom('users').select('tenant_id').where('id', '=', work.userId).executeTakeFirstOrThrow();
    const job = await env.db.selectFrom('public_jobs').select('tenant_id').where('id', '=', work.jobId).executeTakeFirstOrThrow();
    expect(video.tenant_id).toMatch(/^key-[0-9a-f]{12}$/);
    expect(user.tenant_id).toBe(video.tenant_id);
    expect(job.tenant_id).toBe(video.tenant_id);
    expect((await call('owner', 'get', `/v1/videos/${work.videoId}`)).body.tenant).toBe(video.tenant_id);
  });

  it('gives each tenant its own webhook signing secret', async () => {
    const a = await call('owner', 'get', '/v1/webhook-secret');
    const b = await call('other', 'get', '/v1/webhook-secret');
    expect(a.status).toBe(200);
    expect(a.body.secret).toMatch(/^whsec_/);
    expect(b.body.secret).toMatch(/^whsec_/);
    expect(a.body.secret).not.toBe(b.body.secret);
    expect(a.headers['cache-control']).toBe('no-store');
    const rotated = await call('owner', 'post', '/v1/webhook-secret:rotate');
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(a.body.secret);
    expect(rotated.body.previousSecretExpiresAt).toEqual(expect.any(String));
    expect((await call('owner', 'get', '/v1/webhook-secret')).body.secret).toBe(rotated.body.secret);
    expect((await call('other', 'get', '/v1/webhook-secret')).body.secret).toBe(b.body.secret);
  });

  it('lets operators (only) create, list and revoke tenant keys through the admin API', async () => {
    for (const caller of ['owner', 'other'] as const) {
      const refused = await call(caller, 'post', '/v1/admin/keys', { name: 'sneaky', admin: true });
      expect(refused.status).toBe(404);
      expect((await call(caller, 'get', '/v1/admin/keys')).status).toBe(404);
    }
    // Told exactly what a path that does not exist is told: the same words, and a length that
    // differs only by the letter the path has less (in the detail and the instance).
    const guarded = await call('owner', 'get', '/v1/admin/keys');
    const unknown = await call('owner', 'get', '/v1/adminz/keys');
    expect(guarded.body).toEqual({ ...unknown.body, detail: 'no route for GET /v1/admin/keys', instance: guarded.body.instance });
    expect(unknown.body.detail).toBe('no route for GET /v1/adminz/keys');
    // A clip file that is not one names the whole path, as every unknown route does.
    const bogusFile = `/v1/videos/${work.videoId}/clips/${work.clipId}/bogus`;
    expect((await call('owner', 'get', bogusFile)).body.detail).toBe(`no route for GET ${bogusFile}`);
    expect(Number(guarded.headers['content-length']) + 2).toBe(Number(unknown.headers['content-length']));
    const created = await call('admin', 'post', '/v1/admin/keys', { name: 'Acme Ingest', tenant: 'acme' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'Acme Ingest',
      tenant: 'acme',
      role: 'tenant',
      key: expect.stringMatching(/^cl_[0-9A-Za-z]{12}_[0-9A-Za-z]{32}$/),
    });
    expect((await call('admin', 'post', '/v1/admin/keys', { name: 'x', tenant: 'Not A Tenant' })).status).toBe(400);
    const acme = { authorization: `Bearer ${created.body.key}` };
    const video = await request(producer.app).post('/v1/videos').set(acme).send({ source: 'https://cdn.example.com/acme.mp4' });
    expect(video.status).toBe(202);
    expect((await request(producer.app).get(`/v1/videos/${video.body.id}`).set(acme)).body.tenant).toBe('acme');
    expect((await call('owner', 'get', `/v1/videos/${video.body.id}`)).status).toBe(404);
    const listed = await call('admin', 'get', '/v1/admin/keys');
    expect(listed.body.items).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: created.body.id, tenant: 'acme', role: 'tenant', revokedAt: null })]),
    );
    expect(JSON.stringify(listed.body)).not.toContain(created.body.key);
    expect((await call('admin', 'delete', `/v1/admin/keys/${created.body.prefix}`)).body).toEqual({ outcome: 'revoked' });
    expect((await call('admin', 'delete', `/v1/admin/keys/${created.body.id}`)).body).toEqual({ outcome: 'already-revoked' });
    expect((await call('admin', 'delete', `/v1/admin/keys/${randomUUID()}`)).status).toBe(404);
    expect((await request(producer.app).get('/v1/videos').set(acme)).status).toBe(401);
  });

  it("never gives a key a tenant that holds others' records by accident: a name folding to one is refused unless the tenant is named", async () => {
    for (const name of ['Default', 'legacy', 'Admin-Tools', 'key-reporting']) {
      const refused = await call('admin', 'post', '/v1/admin/keys', { name });
      expect([name, refused.status, refused.body.errors?.[0]?.path]).toEqual([name, 400, 'tenant']);
      expect(refused.body.detail).toMatch(/reserved/);
    }
    const named = await call('admin', 'post', '/v1/admin/keys', { name: 'Default', tenant: 'default-reports' });
    expect([named.status, named.body.tenant]).toEqual([201, 'default-reports']);
    await call('admin', 'delete', `/v1/admin/keys/${named.body.id}`);
  });

  it('keeps idempotency keys apart between tenants', async () => {
    const headers = { 'idempotency-key': `same-${randomUUID()}` };
    const a = await call('owner', 'post', '/v1/videos', { source: 'https://cdn.example.com/i.mp4' }).set(headers);
    const b = await call('other', 'post', '/v1/videos', { source: 'https://cdn.example.com/i.mp4' }).set(headers);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body.id).not.toBe(b.body.id);
    expect(b.headers['idempotent-replayed']).toBeUndefined();
  });
});
