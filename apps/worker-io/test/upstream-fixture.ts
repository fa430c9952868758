/** What the provider tests share: an isolated test environment, the upstream simulator, and a worker Redis connection. */
import type { RedisClient } from '@clipline/shared';
import { createUpstreamSimulator, type UpstreamSimulator } from '../../../infra/upstream-sim/src/index.js';
import { connectRedis, createTestEnvironment, type TestEnvironment } from '../../../tests/helpers/services.js';

export interface UpstreamFixture {
  env: TestEnvironment;
  sim: UpstreamSimulator;
  redis: RedisClient;
  close(): Promise<void>;
}

export async function startUpstreamFixture(): Promise<UpstreamFixture> {
  const env = await createTestEnvironment();
  const sim = await createUpstreamSimulator({ apiKey: 'sim-key' });
  const redis = connectRedis(env.config.redisUrl);
  return {
    env,
    sim,
    redis,
    async close() {
      await sim.close();
      redis.disconnect();
      await env.cleanup();
    },
  };
}
