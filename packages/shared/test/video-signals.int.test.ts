/**
 * Video signals over Redis pub/sub when the subscription is refused: the process goes on, and a
 * later listener subscribes once Redis allows it. A Redis server of the test's own holds the ACL
 * user, so no other suite's server is changed.
 */
import { Redis } from 'ioredis';
import { createRedis, VideoSignals } from '@clipline/shared';
import { PrivateRedis } from '../../../tests/chaos/support/redis-server.js';
import { waitFor } from '../../../tests/helpers/services.js';

describe('VideoSignals', () => {
  let server: PrivateRedis;
  let admin: Redis;

  beforeAll(async () => {
    server = await PrivateRedis.start();
    admin = new Redis(server.url);
    // A user that may run every command but those of pub/sub.
    await admin.call('ACL', 'SETUSER', 'signals', 'on', '>secret', '~*', '&*', '+@all', '-@pubsub', '+publish');
  });

  afterAll(async () => {
    admin?.disconnect();
    await server?.destroy();
  });

  it('survives a refused subscription and subscribes with the next listener once allowed', async () => {
    const url = `redis://signals:secret@127.0.0.1:${server.port}`;
    const publisher = createRedis(url, 'producer');
    const signals = new VideoSignals(publisher, url, 'test');
    try {
      // Refused: the listener's own attempt fails quietly (an unhandled rejection would end the process)…
      const heard: string[] = [];
      signals.onCancel((videoId) => heard.push(`cancel ${videoId}`));
      // …and `ready` reports why.
      await expect(signals.ready()).rejects.toThrow(/NOPERM/);

      await admin.call('ACL', 'SETUSER', 'signals', '+@pubsub');
      signals.onChange((videoId) => heard.push(`change ${videoId}`));
      await signals.ready();
      await signals.cancelled('v1');
      signals.changed('v2');
      await waitFor(async () => (heard.length === 2 ? true : undefined), 5_000, 'both signals');
      expect(heard).toEqual(['cancel v1', 'change v2']);
    } finally {
      await signals.close();
      publisher.disconnect();
    }
  });
});
