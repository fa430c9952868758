/**
 * A Redis that stays connected but stops answering (paused, wedged, a network black hole), put
 * between the producer and the real Redis by a TCP relay that stops relaying on demand:
 * /readyz says not ready within its bound, and a submission is answered 503, never held.
 */
import net from 'node:net';
import { jest } from '@jest/globals';
import request from 'supertest';
import { createService } from '@clipline/shared';
import { PrivateRedis } from '../../../tests/chaos/support/redis-server.js';
import { buildProducer } from '../src/producer.js';
import { createTestEnvironment, type TestEnvironment, waitFor } from '../../../tests/helpers/services.js';

jest.setTimeout(60_000);

let env: TestEnvironment;
let relay: net.Server;
let server: PrivateRedis;
let silent = false;
const sockets: net.Socket[] = [];

beforeAll(async () => {
  env = await createTestEnvironment({ API_KEYS: 'wedged-key-0123456789abcdef0123456789' });
  // A standalone Redis of its own, whatever the suite runs on (a cluster too): the relay sits in front of it.
  server = await PrivateRedis.start();
  const target = new URL(server.url);
  relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    sockets.push(client, upstream);
    // While silent, bytes are held both ways, as a paused server or a network black hole holds
    // them: the connection stays open, nothing answers, and what was held arrives afterwards.
    const relayTo = (to: net.Socket) => {
      const held: Buffer[] = [];
      const flush = setInterval(() => {
        if (!silent) for (const chunk of held.splice(0)) to.write(chunk);
      }, 20);
      to.on('close', () => clearInterval(flush));
      return (chunk: Buffer) => void (silent || held.length ? held.push(chunk) : to.write(chunk));
    };
    client.on('data', relayTo(upstream));
    upstream.on('data', relayTo(client));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  silent = false;
  await new Promise((resolve) => relay?.close(resolve));
  await server?.destroy();
  await env.cleanup();
});

it('answers /readyz and a submission while Redis is connected but silent, instead of holding them', async () => {
  const port = (relay.address() as net.AddressInfo).port;
  const service = createService('producer', { ...env.config, redisUrl: `redis://127.0.0.1:${port}` });
  const producer = buildProducer(service);
  try {
    await new Promise<void>((resolve) => (producer.redis.status === 'ready' ? resolve() : producer.redis.once('ready', () => resolve())));
    expect((await request(producer.app).get('/readyz')).status).toBe(200);
    silent = true;
    let started = Date.now();
    const ready = await request(producer.app).get('/readyz');
    expect([ready.status, Date.now() - started < 5000]).toEqual([503, true]);
    started = Date.now();
    const submitted = await request(producer.app)
      .post('/v1/videos')
      .set('authorization', 'Bearer wedged-key-0123456789abcdef0123456789')
      .send({ source: 'https://cdn.example.com/wedged.mp4' });
    expect(submitted.status).toBe(503);
    // One command's timeout at most: the wedged connection is then dropped, and what follows is refused at once.
    expect(Date.now() - started).toBeLessThan(12_000);
    started = Date.now();
    const again = await request(producer.app)
      .post('/v1/videos')
      .set('authorization', 'Bearer wedged-key-0123456789abcdef0123456789')
      .send({ source: 'https://cdn.example.com/wedged-again.mp4' });
    expect([again.status, Date.now() - started < 2000]).toEqual([503, true]);
    // Redis answers again: so does the producer, once its connection is open again.
    silent = false;
    await waitFor(async () => ((await request(producer.app).get('/readyz')).status === 200 ? true : undefined), 30_000, 'ready again');
  } finally {
    silent = false;
    await service.shutdown.shutdown('test');
  }
});
