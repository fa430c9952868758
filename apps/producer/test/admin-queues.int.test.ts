import request from 'supertest';
import { Queue, Worker } from 'bullmq';
import {
  createRedis,
  createService,
  DEV_ADMIN_API_KEY,
  DEV_API_KEY,
  QueueActionsRepository,
  QueueOperations,
  syncQueue,
  type ServiceContext,
} from '@clipline/shared';
import { buildProducer } from '../src/producer.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

const admin = { authorization: `Bearer ${DEV_ADMIN_API_KEY}` };
const tenant = { authorization: `Bearer ${DEV_API_KEY}` };
let env: TestEnvironment;
let service: ServiceContext;
let producer: ReturnType<typeof buildProducer>;
let queue: Queue;
const connection = connectRedis();

/** Adds jobs to the sync queue and lets a worker fail each with the reason in its data. */
async function failJobs(reasons: string[]): Promise<void> {
  const before = await queue.getFailedCount();
  await queue.addBulk(reasons.map((reason, index) => ({ name: 'refresh-metadata', data: { reason, index }, opts: { attempts: 1 } })));
  const workerConnection = connectRedis();
  const worker = new Worker(
    syncQueue.name,
    async (job) => {
      throw new Error(String(job.data.reason));
    },
    { connection: workerConnection, prefix: env.config.queuePrefix, concurrency: 10 },
  );
  try {
    await waitFor(async () => ((await queue.getFailedCount()) >= before + reasons.length ? true : undefined), 20_000, 'jobs failed');
  } finally {
    await worker.close();
    workerConnection.disconnect();
  }
}

beforeAll(async () => {
  env = await createTestEnvironment({ API_RATE_LIMIT_PER_MINUTE: '0' });
  service = createService('producer', env.config);
  producer = buildProducer(service);
  queue = new Queue(syncQueue.name, { connection, prefix: env.config.queuePrefix });
  await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
});

afterAll(async () => {
  await queue.close();
  connection.disconnect();
  await service.shutdown.shutdown('tests done');
  await env.cleanup();
});

describe('admin queue operations', () => {
  it('retries and discards the failed jobs whose reason contains the filter, counts them, and audits each action', async () => {
    await failJobs(['upstream timeout after 10 s', 'upstream timeout after 12 s', 'bad payload', 'quota exceeded']);
    const retried = await request(producer.app).post('/v1/admin/queues/sync/failed:retry').set(admin).send({ reason: 'timeout' });
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ queue: 'sync', action: 'retry-failed', reasonFilter: 'timeout', affected: 2 });
    expect(await queue.getFailedCount()).toBe(2);
    const waiting = await queue.getWaiting();
    expect(waiting.map((job) => job.data.reason).sort()).toEqual(['upstream timeout after 10 s', 'upstream timeout after 12 s']);
    expect(waiting.every((job) => job.attemptsMade === 0)).toBe(true);

    const discarded = await request(producer.app).post('/v1/admin/queues/sync/failed:discard').set(admin).send({ reason: 'bad payload' });
    expect(discarded.body).toMatchObject({ action: 'discard-failed', affected: 1 });
    const left = await queue.getFailed();
    expect(left.map((job) => job.failedReason)).toEqual(['quota exceeded']);
    // No filter: every failed job.
    const all = await request(producer.app).post('/v1/admin/queues/sync/failed:discard').set(admin);
    expect(all.body).toMatchObject({ affected: 1, reasonFilter: null });
    expect(await queue.getFailedCount()).toBe(0);

    const audit = await new QueueActionsRepository(env.db).recent(10);
    expect(audit.map((row) => [row.action, row.queue, row.reasonFilter, row.affected, row.actorKind])).toEqual([
      ['discard-failed', 'sync', null, 1, 'api-key'],
      ['discard-failed', 'sync', 'bad payload', 1, 'api-key'],
      ['retry-failed', 'sync', 'timeout', 2, 'api-key'],
    ]);
    // Each row was written before its action ran, and completed once it had.
    expect(audit.every((row) => row.finishedAt !== null && row.finishedAt >= row.createdAt && row.error === null)).toBe(true);
    expect(audit[0]?.actor).toMatch(/^config:/);
    expect(audit[0]?.tenant).toMatch(/^admin-/);
    expect(audit[0]?.id).toBe(all.body.auditId);
  });

  it('acts on a reason that holds a NUL, as a copied failure reason can, and audits it with the NUL made visible', async () => {
    await failJobs(['worker said \u0000 and died', 'other']);
    const res = await request(producer.app).post('/v1/admin/queues/sync/failed:discard').set(admin).send({ reason: 'said \u0000 and' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ affected: 1 });
    const [row] = await new QueueActionsRepository(env.db).recent(1);
    expect([row?.id, row?.reasonFilter]).toEqual([res.body.auditId, 'said \ufffd and']);
    await request(producer.app).post('/v1/admin/queues/sync/failed:discard').set(admin);
  });

  it('refuses a filter that is not sent as JSON (curl -d labels it a form) with 415, and acts on nothing', async () => {
    await failJobs(['upstream timeout after 10 s', 'bad payload']);
    const before = (await new QueueActionsRepository(env.db).recent(100)).length;
    for (const action of ['failed:discard', 'failed:retry']) {
      const res = await request(producer.app)
        .post(`/v1/admin/queues/sync/${action}`)
        .set(admin)
        .set('Content-Type', 'application/x-www-form-urlencoded')
        .send('{"reason":"timeout"}');
      expect([action, res.status, res.body.detail]).toEqual([action, 415, expect.stringContaining('application/json')]);
    }
    expect(await queue.getFailedCount()).toBe(2);
    expect((await new QueueActionsRepository(env.db).recent(100)).length).toBe(before);
    await request(producer.app).post('/v1/admin/queues/sync/failed:discard').set(admin);
  });

  it('pauses and resumes a queue, audited', async () => {
    const paused = await request(producer.app).post('/v1/admin/queues/ingest:pause').set(admin);
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ queue: 'ingest', action: 'pause', affected: 0 });
    const ingest = new Queue('ingest', { connection, prefix: env.config.queuePrefix });
    expect(await ingest.isPaused()).toBe(true);
    const resumed = await request(producer.app).post('/v1/admin/queues/ingest:resume').set(admin);
    expect(resumed.body).toMatchObject({ action: 'resume' });
    expect(await ingest.isPaused()).toBe(false);
    await ingest.close();
    const audit = await new QueueActionsRepository(env.db).recent(2);
    expect(audit.map((row) => row.action)).toEqual(['resume', 'pause']);
  });

  it('answers 404 for an unknown queue and to tenant keys, and 400 for a bad filter', async () => {
    const before = (await new QueueActionsRepository(env.db).recent(100)).length;
    expect((await request(producer.app).post('/v1/admin/queues/nope/failed:retry').set(admin)).status).toBe(404);
    expect((await request(producer.app).post('/v1/admin/queues/nope:pause').set(admin)).status).toBe(404);
    for (const path of [
      '/v1/admin/queues/sync/failed:retry',
      '/v1/admin/queues/sync/failed:discard',
      '/v1/admin/queues/sync:pause',
      '/v1/admin/queues/sync:resume',
    ]) {
      expect((await request(producer.app).post(path).set(tenant)).status).toBe(404);
      expect((await request(producer.app).post(path)).status).toBe(401);
    }
    const bad = await request(producer.app).post('/v1/admin/queues/sync/failed:retry').set(admin).send({ reason: 5 });
    expect(bad.status).toBe(400);
    expect(await queue.isPaused()).toBe(false);
    expect((await new QueueActionsRepository(env.db).recent(100)).length).toBe(before);
  });

  it('runs no action the audit cannot record: a database that is away is a 503, and the queue is left as it was', async () => {
    const away = createService('producer', { ...env.config, databaseUrl: 'postgres://postgres@127.0.0.1:1/test' });
    try {
      const down = buildProducer(away);
      const paused = await request(down.app).post('/v1/admin/queues/sync:pause').set(admin);
      expect(paused.status).toBe(503);
      expect(paused.body.detail).toMatch(/unreachable; retry shortly/);
      expect(await queue.isPaused()).toBe(false);
      await failJobs(['left alone']);
      expect((await request(down.app).post('/v1/admin/queues/sync/failed:retry').set(admin)).status).toBe(503);
      expect((await queue.getFailed()).map((job) => job.failedReason)).toEqual(['left alone']);
    } finally {
      await away.shutdown.shutdown('test done');
    }
    await request(producer.app).post('/v1/admin/queues/sync/failed:discard').set(admin);
  });

  it('starts no action while Redis is away (a 503 at once, nothing audited, nothing run when it is back)', async () => {
    const away = createService('producer', { ...env.config, redisUrl: 'redis://127.0.0.1:1' });
    try {
      const down = buildProducer(away);
      const before = await new QueueActionsRepository(env.db).recent(100);
      const started = Date.now();
      const paused = await request(down.app).post('/v1/admin/queues/sync:pause').set(admin);
      expect(paused.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(await new QueueActionsRepository(env.db).recent(100)).toEqual(before);
    } finally {
      await away.shutdown.shutdown('test done');
    }
  });

  it('records an action that fails part way (Redis away) as failed, with why', async () => {
    // A Redis that refuses connections, not retried: the audit row is written, the pause fails.
    const unreachable = { host: '127.0.0.1', port: 1, retryStrategy: () => null, enableOfflineQueue: false, lazyConnect: true };
    const away = new Queue(syncQueue.name, { connection: unreachable, prefix: env.config.queuePrefix });
    away.on('error', () => {});
    const audit = new QueueActionsRepository(env.db);
    const failure = await new QueueOperations([away], audit)
      .run('sync', 'pause', { actor: { name: 'ops', kind: 'dashboard' } })
      .then(
        () => undefined,
        (thrown: Error) => thrown,
      )
      .finally(() => away.close().catch(() => {}));
    expect(failure).toBeInstanceOf(Error);
    const [row] = await audit.recent(1);
    expect(row).toMatchObject({ action: 'pause', actor: 'ops', affected: 0, error: failure!.message });
    expect(row?.finishedAt).not.toBeNull();
  });

  it('records a retry that Redis drops part way as failed, with how many jobs it had moved, not as done', async () => {
    await failJobs(Array.from({ length: 1500 }, (_, index) => `dropped ${index}`));
    // The action's own connection, fail-fast as the producer's, cut once some jobs have moved.
    const own = createRedis(env.config.redisUrl, 'producer');
    const acting = new Queue(syncQueue.name, { connection: own, prefix: env.config.queuePrefix });
    const audit = new QueueActionsRepository(env.db);
    const running = new QueueOperations([acting], audit).run('sync', 'retry-failed', { actor: { name: 'ops', kind: 'dashboard' }, reason: 'dropped' }).then(
      () => undefined,
      (thrown: Error) => thrown,
    );
    await waitFor(async () => ((await queue.getWaitingCount()) >= 20 ? true : undefined), 20_000, 'some jobs retried');
    own.disconnect();
    const failure = await running;
    await acting.close().catch(() => {});
    expect(failure).toBeInstanceOf(Error);
    const moved = await queue.getWaitingCount();
    expect(moved).toBeLessThan(1500);
    const [row] = await audit.recent(1);
    expect(row).toMatchObject({ action: 'retry-failed', error: failure!.message });
    // What the row says it moved is what moved (at most the one in flight when the connection went).
    expect(row!.affected).toBeGreaterThanOrEqual(20);
    expect(Math.abs(row!.affected - moved)).toBeLessThanOrEqual(1);
    await queue.obliterate({ force: true });
  });

  it('lists the four operations in the OpenAPI document', async () => {
    const spec = await request(producer.app).get('/openapi.json');
    expect(Object.keys(spec.body.paths)).toEqual(
      expect.arrayContaining([
        '/v1/admin/queues/{queue}/failed:retry',
        '/v1/admin/queues/{queue}/failed:discard',
        '/v1/admin/queues/{queue}:pause',
        '/v1/admin/queues/{queue}:resume',
      ]),
    );
  });
});
