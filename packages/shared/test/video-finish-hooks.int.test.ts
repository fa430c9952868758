/**
 * What follows a video's finish (its webhooks enqueued, its source released) never fails the
 * write that finished it: with Redis away, a cancel still answers that it cancelled, and the
 * delivery waits in the outbox for the sweep.
 */
import { randomUUID } from 'node:crypto';
import { afterVideoFinished, createRedis, JobQueues, VIDEO_STEPS, VideosRepository, WebhooksRepository } from '@clipline/shared';
import { PrivateRedis } from '../../../tests/chaos/support/redis-server.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

let env: TestEnvironment;

beforeAll(async () => {
  env = await createTestEnvironment();
});

afterAll(async () => {
  await env.cleanup();
});

it('cancels a video with a webhook while Redis is away: cancel resolves, the delivery stays pending for the sweep', async () => {
  // The API's fail-fast connection, to a Redis of the test's own that goes away once it is up.
  const server = await PrivateRedis.start();
  const away = createRedis(server.url, 'producer');
  const jobs = new JobQueues({ connection: away, prefix: env.config.queuePrefix });
  if (away.status !== 'ready') await new Promise((resolve) => away.once('ready', resolve));
  await away.ping();
  await server.kill();
  try {
    const videos = new VideosRepository(env.db, { stepOrder: VIDEO_STEPS, onFinished: afterVideoFinished(jobs, false, 500) });
    const id = randomUUID();
    await videos.create({ id, source: '/in/a.mp4', title: null, steps: [...VIDEO_STEPS], callbackUrl: 'https://example.com/hook', tenantId: 'acme' });
    await expect(videos.cancel(id)).resolves.toBe(true);
    expect(await videos.status(id)).toBe('cancelled');
    const [delivery] = await new WebhooksRepository(env.db).forVideo(id);
    expect(delivery).toMatchObject({ event: 'video.cancelled', state: 'pending' });
  } finally {
    away.disconnect();
    await jobs.close().catch(() => {});
    await server.destroy();
  }
});
