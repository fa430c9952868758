import http from 'node:http';
import { Queue } from 'bullmq';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@clipline/shared';
import {
  createLogger,
  enqueueWebhookDeliveries,
  JobQueues,
  notifyQueue,
  PermanentJobError,
  DEFAULT_TENANT,
  newWebhookSecret,
  signWebhook,
  startWorker,
  verifyWebhook,
  VideosRepository,
  WebhookSecretsRepository,
  WebhooksRepository,
  isDependencyOutage,
  type RunningWorker,
  UsersRepository,
  webhookJobId,
} from '@clipline/shared';
import { parseKeyring } from '@clipline/shared/crypto';
import { notifyProcessors } from '../src/io-worker.js';
import { deliverWebhook } from '../src/notify/deliver-webhook.js';
import { connectRedis, createTestEnvironment, waitFor, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;
let redis: RedisClient;
let jobs: JobQueues;
let worker: RunningWorker;
let videos: VideosRepository;
let webhooks: WebhooksRepository;
let secrets: WebhookSecretsRepository;
let receiver: http.Server;
let base: string;
const received: { path: string; body: string; headers: http.IncomingHttpHeaders; event: string; port: number | undefined }[] = [];
const plan = new Map<string, number[]>();

beforeAll(async () => {
  env = await createTestEnvironment();
  redis = connectRedis(env.config.redisUrl);
  jobs = new JobQueues({ connection: redis, prefix: env.config.queuePrefix });
  videos = new VideosRepository(env.db, { onFinished: (_id, deliveryIds) => enqueueWebhookDeliveries(jobs, deliveryIds) });
  webhooks = new WebhooksRepository(env.db);
  secrets = new WebhookSecretsRepository(env.db, parseKeyring(env.config.accountsKeyring));
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body, headers: req.headers, event: String(req.headers['clipline-event']), port: req.socket.remotePort });
      const statuses = plan.get(req.url ?? '') ?? [];
      if (req.url?.startsWith('/endless')) {
        // Answers, then sends a body that never ends (a megabyte a millisecond) until the worker hangs up.
        res.writeHead(statuses.shift() ?? 200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(1024 * 1024, 7);
        const timer = setInterval(() => res.write(chunk), 1);
        res.on('close', () => clearInterval(timer));
        return;
      }
      if (req.url?.startsWith('/busy')) {
        const status = statuses.shift();
        if (status) res.writeHead(status, { 'retry-after': '40' }).end();
        else res.writeHead(204).end();
        return;
      }
      if (req.url?.startsWith('/with-body')) {
        res.writeHead(statuses.shift() ?? 200, { 'content-type': 'application/json' }).end(JSON.stringify({ received: true, at: req.socket.remotePort }));
        return;
      }
      res.writeHead(statuses.shift() ?? 204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  worker = startWorker(
    notifyQueue,
    notifyProcessors({ webhooks, videos, users: new UsersRepository(env.db), jobs, settings: { secrets, timeoutMs: 5000, allowPrivateHosts: true } }),
    {
      connection: redis,
      prefix: env.config.queuePrefix,
      concurrency: 5,
      logger: createLogger({ name: 'test', level: 'silent' }),
    },
  );
});

afterAll(async () => {
  await worker.close();
  await jobs.close();
  redis.disconnect();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
  await env.cleanup();
});

async function videoWithCallback(path: string): Promise<string> {
  const id = randomUUID();
  await videos.create({ id, source: '/media/a.mp4', title: null, steps: ['ingest'], callbackUrl: `${base}${path}` });
  return id;
}

const settledDelivery = (videoId: string) =>
  waitFor(
    async () => {
      const [delivery] = await webhooks.forVideo(videoId);
      return delivery && delivery.state !== 'pending' ? delivery : undefined;
    },
    30_000,
    'the webhook delivery to settle',
  );

describe('webhook signatures', () => {
  it('verifies its own signature and refuses tampering, other ids, stale timestamps and other secrets', () => {
    const [current, previous, stranger] = [newWebhookSecret(), newWebhookSecret(), newWebhookSecret()];
    const body = '{"event":"video.completed"}';
    const headers = signWebhook([current, previous], { id: 'd-1', timestampSeconds: 1_800_000_000, body });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    const at = { nowSeconds: 1_800_000_100 };
    expect(verifyWebhook(current, body, headers, at)).toBe(true);
    expect(verifyWebhook(previous, body, headers, at)).toBe(true);
    expect(verifyWebhook(stranger, body, headers, at)).toBe(false);
    expect(verifyWebhook(current, `${body} `, headers, at)).toBe(false);
    expect(verifyWebhook(current, body, { ...headers, 'webhook-id': 'd-2' }, at)).toBe(false);
    expect(verifyWebhook(current, body, { ...headers, 'webhook-timestamp': '1800000001' }, at)).toBe(false);
    expect(verifyWebhook(current, body, headers, { nowSeconds: 1_800_000_301 })).toBe(false);
    expect(verifyWebhook(current, body, { ...headers, 'webhook-signature': 'garbage' }, at)).toBe(false);
    expect(() => signWebhook([], { id: 'd-1', timestampSeconds: 1_800_000_000, body })).toThrow(/at least one signing secret/);
  });
});

describe('webhook delivery', () => {
  it('posts a signed completion event once the video completes, and logs the attempt', async () => {
    const id = await videoWithCallback('/done');
    expect(await videos.setStatus(id, 'completed')).toBe(true);
    const delivery = await settledDelivery(id);
    expect(delivery).toMatchObject({ state: 'delivered', attempts: 1, lastStatus: 204, event: 'video.completed' });
    const hit = received.find((item) => item.path === '/done')!;
    expect(verifyWebhook((await secrets.current(DEFAULT_TENANT)).secret, hit.body, hit.headers)).toBe(true);
    expect(hit.headers['webhook-id']).toBe(delivery.id);
    expect(JSON.parse(hit.body)).toMatchObject({ event: 'video.completed', video: { id, status: 'completed', progress: 100 } });
    const attempts = await env.db.selectFrom('webhook_attempts').selectAll().where('delivery_id', '=', delivery.id).execute();
    expect(attempts).toHaveLength(1);
    // Finishing again adds no second delivery.
    expect(await videos.setStatus(id, 'completed')).toBe(false);
    expect(await webhooks.forVideo(id)).toHaveLength(1);
  });

  it('retries a 503 with backoff and delivers on the next attempt', async () => {
    plan.set('/flaky', [503]);
    const id = await videoWithCallback('/flaky');
    await videos.failVideo(id, 'ingest', 'ingest: source file does not exist');
    const delivery = await settledDelivery(id);
    expect(delivery).toMatchObject({ state: 'delivered', attempts: 2, lastStatus: 204, event: 'video.failed' });
    const hits = received.filter((item) => item.path === '/flaky');
    expect(hits).toHaveLength(2);
    // A retry is the same message: receivers deduplicate on webhook-id, and get the same body
    // (its createdAt and the video as they were at the first attempt) under it.
    expect(hits.map((hit) => hit.headers['webhook-id'])).toEqual([delivery.id, delivery.id]);
    expect(hits[1]!.body).toBe(hits[0]!.body);
    // Kept while the delivery is pending only.
    expect(delivery.body).toBeNull();
  });

  it('sends the body of the first attempt again even when the video changed in between', async () => {
    plan.set('/changing', [503]);
    const id = await videoWithCallback('/changing');
    const [delivery] = await Promise.all([
      waitFor(async () => (await webhooks.forVideo(id)).find((item) => item.attempts === 1), 30_000, 'the first attempt'),
      videos.setStatus(id, 'completed'),
    ]);
    await env.db.updateTable('videos').set({ title: 'renamed after the first attempt' }).where('id', '=', id).execute();
    expect(await settledDelivery(id)).toMatchObject({ state: 'delivered', attempts: 2, body: null });
    const hits = received.filter((item) => item.path === '/changing');
    expect(JSON.parse(hits[1]!.body)).toEqual(JSON.parse(hits[0]!.body));
    expect(JSON.parse(hits[0]!.body).video.title).toBeNull();
    expect(delivery!.body).toBe(hits[0]!.body);
  });

  it('waits before the next attempt as long as a 429 or 503 asks with Retry-After, spending the attempt', async () => {
    const queue = new Queue(notifyQueue.name, { connection: redis, prefix: env.config.queuePrefix });
    try {
      for (const status of [429, 503]) {
        plan.set(`/busy-${status}`, [status]);
        const id = await videoWithCallback(`/busy-${status}`);
        await videos.setStatus(id, 'completed');
        const [delivery] = await webhooks.forVideo(id);
        const waiting = await waitFor(
          async () => {
            const job = await queue.getJob(webhookJobId(delivery!.id));
            return job && (await job.getState()) === 'delayed' ? job : undefined;
          },
          15_000,
          'the delivery to wait for its next attempt',
        );
        // The queue's own backoff would have come back within 2 s.
        expect({ status, delay: waiting.delay, attemptsMade: waiting.attemptsMade }).toEqual({ status, delay: 40_000, attemptsMade: 1 });
        const [attempt] = await env.db.selectFrom('webhook_attempts').select(['status_code', 'error']).where('delivery_id', '=', delivery!.id).execute();
        expect(attempt).toEqual({ status_code: status, error: `HTTP ${status} (Retry-After 40 s)` });
        await waiting.promote();
        expect(await settledDelivery(id)).toMatchObject({ state: 'delivered', attempts: 2 });
      }
    } finally {
      await queue.close();
    }
  });

  it('gives up at once on 410 Gone', async () => {
    plan.set('/gone', [410]);
    const id = await videoWithCallback('/gone');
    await videos.cancel(id);
    const delivery = await settledDelivery(id);
    expect(delivery).toMatchObject({ state: 'failed', attempts: 1, lastStatus: 410, event: 'video.cancelled' });
  });

  it('sends nothing for a video without a callback', async () => {
    const id = randomUUID();
    await videos.create({ id, source: '/media/b.mp4', title: null, steps: [] });
    await videos.setStatus(id, 'completed');
    expect(await webhooks.forVideo(id)).toEqual([]);
  });

  it('delivers outbox rows whose job was never enqueued, through the sweeper', async () => {
    const quiet = new VideosRepository(env.db); // no onFinished hook: the job is "lost"
    const id = await videoWithCallback('/swept');
    await quiet.setStatus(id, 'completed');
    await env.db
      .updateTable('webhook_deliveries')
      .set({ updated_at: new Date(Date.now() - 60_000) })
      .where('video_id', '=', id)
      .execute();
    await jobs.add(notifyQueue, 'sweep-webhooks', {});
    expect(await settledDelivery(id)).toMatchObject({ state: 'delivered' });
  });

  /**
   * A stale pending delivery to `path` whose job failed for good without recording an attempt
   * (as one failed on stalls does): here, run while the row was away. `attempts` spent before.
   */
  async function deliveryWithEndedJob(path: string, attempts = 0): Promise<string> {
    const quiet = new VideosRepository(env.db);
    const id = await videoWithCallback(path);
    await quiet.setStatus(id, 'completed');
    const row = await env.db.selectFrom('webhook_deliveries').selectAll().where('video_id', '=', id).executeTakeFirstOrThrow();
    await env.db.deleteFrom('webhook_deliveries').where('id', '=', row.id).execute();
    await enqueueWebhookDeliveries(jobs, [row.id]);
    await waitFor(async () => ((await jobs.get(notifyQueue, `webhook-${row.id}`))?.state === 'failed' ? true : undefined), 10_000, 'the job to fail');
    await env.db
      .insertInto('webhook_deliveries')
      .values({ ...row, attempts, updated_at: new Date(Date.now() - 60_000) })
      .execute();
    return id;
  }

  it('sends again, through the sweeper, a pending delivery whose job ended without settling it', async () => {
    const id = await deliveryWithEndedJob('/ended');
    await jobs.add(notifyQueue, 'sweep-webhooks', {});
    // The ended job counts as an attempt; the next delivers it.
    expect(await settledDelivery(id)).toMatchObject({ state: 'delivered', attempts: 2 });
    expect(received.filter((hit) => hit.path === '/ended')).toHaveLength(1);
  });

  it('fails a delivery whose jobs keep ending without sending it, after as many attempts as a job has', async () => {
    // Eleven attempts spent already: the ended job is the twelfth.
    const id = await deliveryWithEndedJob('/dying', 11);
    await jobs.add(notifyQueue, 'sweep-webhooks', {});
    const settled = await settledDelivery(id);
    expect(settled).toMatchObject({ state: 'failed', attempts: 12 });
    expect(received.filter((hit) => hit.path === '/dying')).toHaveLength(0);
  });

  it('fails a delivery whose address is no URL for good, naming it, at the first attempt', async () => {
    const quiet = new VideosRepository(env.db);
    const id = await videoWithCallback('/never');
    await quiet.setStatus(id, 'completed');
    const [delivery] = await webhooks.forVideo(id);
    await env.db.updateTable('webhook_deliveries').set({ url: 'not a url' }).where('id', '=', delivery!.id).execute();
    const deps = { webhooks, videos, settings: { secrets, timeoutMs: 5000, allowPrivateHosts: true } };
    const error = await deliverWebhook(delivery!.id, deps, { isLast: false }).catch((thrown: Error) => thrown);
    expect(error).toBeInstanceOf(PermanentJobError);
    expect((error as Error).message).toBe('webhook to "not a url" refused: not a url is not a valid URL');
    expect(await webhooks.find(delivery!.id)).toMatchObject({ state: 'failed', attempts: 1 });
  });

  it('refuses private addresses unless allowed', async () => {
    const strictWorker = notifyProcessors({
      webhooks,
      videos,
      users: new UsersRepository(env.db),
      jobs,
      settings: { secrets, timeoutMs: 5000, allowPrivateHosts: false },
    });
    const id = await videoWithCallback('/private');
    await new VideosRepository(env.db).setStatus(id, 'completed');
    const [delivery] = await webhooks.forVideo(id);
    const job = { data: { deliveryId: delivery!.id }, attemptsMade: 0, maxAttempts: 12, signal: new AbortController().signal } as never;
    await expect(strictWorker['deliver-webhook'](job)).rejects.toThrow(/refused: 127\.0\.0\.1:\d+ is a loopback address/);
    expect(await webhooks.find(delivery!.id)).toMatchObject({ state: 'failed' });
  });

  it('a 2xx it could not record is neither failed nor spent: the database error goes up as it is, and the next run delivers it again', async () => {
    const id = await videoWithCallback('/unrecorded');
    await videos.setStatus(id, 'completed');
    const [delivery] = await webhooks.forVideo(id);
    await settledDelivery(id);
    // The worker delivered it already; back to pending, as a run whose record was lost would leave it.
    await env.db.updateTable('webhook_deliveries').set({ state: 'pending', attempts: 0, delivered_at: null }).where('id', '=', delivery!.id).execute();
    const lost = new Error('Connection terminated unexpectedly');
    class ForgetfulWebhooks extends WebhooksRepository {
      failures = 1;
      override async recordAttempt(...args: Parameters<WebhooksRepository['recordAttempt']>): Promise<void> {
        if (args[2] === 'delivered' && this.failures-- > 0) throw lost;
        return super.recordAttempt(...args);
      }
    }
    const forgetful = new ForgetfulWebhooks(env.db);
    const deps = { webhooks: forgetful, videos, settings: { secrets, timeoutMs: 5000, allowPrivateHosts: true } };
    const before = received.filter((hit) => hit.path === '/unrecorded').length;
    const first = deliverWebhook(delivery!.id, deps, { isLast: true });
    await expect(first).rejects.toBe(lost);
    expect(isDependencyOutage(lost)).toBe(true);
    expect(await webhooks.find(delivery!.id)).toMatchObject({ state: 'pending', attempts: 0 });
    await expect(deliverWebhook(delivery!.id, deps, { isLast: true })).resolves.toEqual({ status: 204 });
    expect(await webhooks.find(delivery!.id)).toMatchObject({ state: 'delivered', attempts: 1 });
    const hits = received.filter((hit) => hit.path === '/unrecorded').slice(before);
    expect(hits).toHaveLength(2);
    // The same webhook-id both times: the receiver drops the second as one it has.
    expect(new Set(hits.map((hit) => hit.headers['webhook-id']))).toEqual(new Set([delivery!.id]));
  });

  it('reads only the status of an answer: a receiver sending an endless body is delivered to (2xx) or refused (410) at once', async () => {
    const deps = { webhooks, videos, settings: { secrets, timeoutMs: 5000, allowPrivateHosts: true } };
    const id = await videoWithCallback('/endless-ok');
    await videos.setStatus(id, 'completed');
    const [delivery] = await webhooks.forVideo(id);
    await settledDelivery(id);
    await env.db.updateTable('webhook_deliveries').set({ state: 'pending', attempts: 0, delivered_at: null }).where('id', '=', delivery!.id).execute();
    const started = performance.now();
    await expect(deliverWebhook(delivery!.id, deps, { isLast: true })).resolves.toEqual({ status: 200 });
    // Not held until the 5 s timeout reading the body.
    expect(performance.now() - started).toBeLessThan(4000);
    expect(await webhooks.find(delivery!.id)).toMatchObject({ state: 'delivered' });

    plan.set('/endless-gone', [410, 410]);
    const goneId = await videoWithCallback('/endless-gone');
    await videos.setStatus(goneId, 'completed');
    expect(await settledDelivery(goneId)).toMatchObject({ state: 'failed', attempts: 1 });
  });

  it('keeps the connection for the next delivery when a receiver answers with a body', async () => {
    const deps = { webhooks, videos, settings: { secrets, timeoutMs: 5000, allowPrivateHosts: true } };
    const quiet = new VideosRepository(env.db);
    const before = received.length;
    for (const _ of [1, 2, 3]) {
      const id = await videoWithCallback('/with-body');
      await quiet.setStatus(id, 'completed');
      const [delivery] = await webhooks.forVideo(id);
      await expect(deliverWebhook(delivery!.id, deps, { isLast: true })).resolves.toEqual({ status: 200 });
    }
    const ports = received
      .slice(before)
      .filter((hit) => hit.path === '/with-body')
      .map((hit) => hit.port);
    expect(ports).toHaveLength(3);
    expect(new Set(ports).size).toBe(1);
  });

  it("records a secret the keyring cannot open as the attempt's failure, and fails the delivery on its last attempt", async () => {
    const id = await videoWithCallback('/unsigned');
    await new VideosRepository(env.db).setStatus(id, 'completed');
    const [delivery] = await webhooks.forVideo(id);
    await secrets.current(DEFAULT_TENANT);
    // Another keyring than the one that sealed the tenant's secret: it cannot be opened.
    const foreign = new WebhookSecretsRepository(env.db, parseKeyring(`other:${Buffer.alloc(32, 7).toString('base64')}`));
    const deps = { webhooks, videos, settings: { secrets: foreign, timeoutMs: 5000, allowPrivateHosts: true } };
    await expect(deliverWebhook(delivery!.id, deps, { isLast: true })).rejects.toThrow(/webhook to 127\.0\.0\.1:\d+ failed: /);
    expect(await webhooks.find(delivery!.id)).toMatchObject({ state: 'failed', attempts: 1 });
    expect(received.filter((hit) => hit.path === '/unsigned')).toEqual([]);
  });

  it('a run that ends after the delivery was settled logs its attempt without undoing it', async () => {
    const id = await videoWithCallback('/settled');
    await videos.setStatus(id, 'completed');
    const delivered = await settledDelivery(id);
    expect(delivered).toMatchObject({ state: 'delivered' });
    await webhooks.recordAttempt(delivered.id, { statusCode: 503, error: 'HTTP 503', durationMs: 3 }, 'failed');
    expect(await webhooks.find(delivered.id)).toMatchObject({ state: 'delivered', attempts: delivered.attempts + 1, lastStatus: 503 });
    const row = await env.db.selectFrom('webhook_deliveries').select('delivered_at').where('id', '=', delivered.id).executeTakeFirstOrThrow();
    expect(row.delivered_at).not.toBeNull();
  });
});
