/**
 * Chaos: the submitter's webhook endpoint is down (503) for the first two deliveries of a
 * finished video's notification. The outbox must keep retrying with backoff and deliver exactly
 * once, every attempt signed with the tenant's secret (Standard Webhooks) as one message, and its
 * attempt log must show the failures before the success.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import { verifyWebhook, WEBHOOK_ID_HEADER } from '@clipline/shared';
import { generateVideo } from '../helpers/media.js';
import { createTestEnvironment, waitFor, type TestEnvironment } from '../helpers/services.js';
import { ClipLineProcesses } from './support/clipline-processes.js';
import { completedSettlement, FlowInspector } from './support/flow-state.js';
import { createTeardown } from './support/teardown.js';
import { SHORT_CLIPS } from './support/video-batch.js';
import { FlakyWebhookReceiver } from './support/webhook-receiver.js';

jest.setTimeout(120_000);

const teardown = createTeardown('chaos-webhook-outage');
let env: TestEnvironment;
let receiver: FlakyWebhookReceiver;
let processes: ClipLineProcesses;
let flows: FlowInspector;

beforeAll(async () => {
  env = await createTestEnvironment({ LOG_LEVEL: 'info' });
  teardown.register('test environment', () => env.cleanup());
  receiver = await FlakyWebhookReceiver.start([503, 503]);
  teardown.register('webhook receiver', () => receiver.close());
  flows = new FlowInspector(env.config.redisUrl, env.config.queuePrefix);
  teardown.register('flow inspector', () => flows.close());
  processes = await ClipLineProcesses.create({ ...env.env, CPU_POOL_THREADS: '1' });
  teardown.register('clipline processes', () => processes.killAll());
  await Promise.all((['producer', 'worker-io', 'worker-cpu'] as const).map((app) => processes.start(app)));
});

afterAll(async () => {
  expect(await teardown.shutdown('tests finished')).toBe(0);
});

it('retries a webhook its receiver refuses with 503 twice, then delivers it once, signed, with every attempt logged', async () => {
  // The submitter's secret, as a receiver gets it: from the API, for the tenant of its key.
  const secretAnswer = await processes.api('GET', '/v1/webhook-secret');
  expect(secretAnswer.status).toBe(200);
  const secret = secretAnswer.body.secret as string;
  const video = await generateVideo({ path: path.join(env.config.storageDir, 'notify.mp4'), segments: [1.5, 1.5], width: 320, height: 240 });
  const id = await processes.submit({ source: video.path, title: 'notify me', options: SHORT_CLIPS, callbackUrl: `${receiver.baseUrl}/hooks/clipline` });
  expect(await flows.settle(processes, id, 60_000)).toEqual(completedSettlement(id, 'skipped'));

  const delivery = await waitFor(
    async () => {
      const row = await env.db.selectFrom('webhook_deliveries').selectAll().where('video_id', '=', id).executeTakeFirst();
      return row && row.state !== 'pending' ? row : undefined;
    },
    45_000,
    'the webhook delivery to settle',
  );
  // Nothing more arrives once it was delivered (a duplicate would come from a retry or the sweeper).
  await sleep(3000);

  expect(delivery).toMatchObject({ event: 'video.completed', state: 'delivered', attempts: 3, last_status: 200, last_error: null });
  expect(receiver.received.map((hit) => hit.answered)).toEqual([503, 503, 200]);
  for (const hit of receiver.received) {
    // The same webhook-id on every attempt: that is what lets the receiver deduplicate retries.
    expect({
      path: hit.path,
      signed: verifyWebhook(secret, hit.body, hit.headers),
      delivery: hit.headers[WEBHOOK_ID_HEADER],
      event: hit.headers['clipline-event'],
    }).toEqual({
      path: '/hooks/clipline',
      signed: true,
      delivery: delivery.id,
      event: 'video.completed',
    });
    expect(JSON.parse(hit.body)).toMatchObject({ id: delivery.id, event: 'video.completed', video: { id, status: 'completed' } });
  }
  // Exponential backoff (2 s, then 4 s, each with up to 30 % jitter off) between the attempts.
  const [first, second, third] = receiver.received.map((hit) => hit.at) as [number, number, number];
  expect(second - first).toBeGreaterThanOrEqual(1400 - 100);
  expect(third - second).toBeGreaterThanOrEqual(2800 - 100);

  const attempts = await env.db
    .selectFrom('webhook_attempts')
    .select(['attempt', 'status_code', 'error'])
    .where('delivery_id', '=', delivery.id)
    .orderBy('attempt')
    .execute();
  expect(attempts).toEqual([
    { attempt: 1, status_code: 503, error: 'HTTP 503' },
    { attempt: 2, status_code: 503, error: 'HTTP 503' },
    { attempt: 3, status_code: 200, error: null },
  ]);
  expect(processes.exited()).toEqual([]);
});
