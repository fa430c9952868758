/** The real producer app, in this process, on a free port: what the client and CLI talk to. */
import type { AddressInfo } from 'node:net';
import { closeServer, createService, DEV_API_KEY, type Config } from '@clipline/shared';
import { buildProducer } from '../../../apps/producer/src/producer.js';
import { createProducerServer } from '../../../apps/producer/src/server.js';
import { createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';
import { createClient, type ClipLineClient } from '../src/index.js';

export interface RunningProducer {
  url: string;
  producer: ReturnType<typeof buildProducer>;
  stop(): Promise<void>;
}

/** Starts the producer; waits for its Redis connection unless `redisReachable` is false. */
export async function startProducer(config: Config, { redisReachable = true } = {}): Promise<RunningProducer> {
  const service = createService('producer', config);
  const producer = buildProducer(service);
  const server = createProducerServer(producer.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  if (redisReachable && producer.redis.status !== 'ready') await new Promise((resolve) => producer.redis.once('ready', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    producer,
    async stop() {
      // Open event streams would hold the server open: close their connections outright.
      server.closeAllConnections();
      await closeServer(server);
      await service.shutdown.shutdown('tests done');
    },
  };
}

export interface ProducerUnderTest {
  env: TestEnvironment;
  running: RunningProducer;
  /** A client with the dev key. */
  api: ClipLineClient;
  close(): Promise<void>;
}

/**
 * A test environment of its own (queue prefix, schema, storage), its producer and a client; no
 * rate limit. `overrides` are more variables of the environment (e.g. ADMIN_API_KEYS).
 */
export async function producerUnderTest(overrides: Record<string, string> = {}): Promise<ProducerUnderTest> {
  const env = await createTestEnvironment({ API_RATE_LIMIT_PER_MINUTE: '0', ...overrides });
  const running = await startProducer(env.config);
  return {
    env,
    running,
    api: createClient({ baseUrl: running.url, apiKey: DEV_API_KEY }),
    async close() {
      await running.stop();
      await env.cleanup();
    },
  };
}
