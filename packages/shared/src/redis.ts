import { Redis, type RedisOptions } from 'ioredis';

/**
 * Connections differ by role:
 * - `producer`: fails fast. With no offline queue a command sent while Redis is down rejects at
 *   once, so the HTTP API can answer 503 instead of hanging.
 * - `worker`: blocks forever on purpose (`maxRetriesPerRequest: null`), as BullMQ workers need,
 *   and reconnects with a capped backoff when Redis comes back.
 */
export type RedisRole = 'producer' | 'worker';

export function redisOptions(role: RedisRole): RedisOptions {
  const retryStrategy = (attempt: number) => Math.min(attempt * 200, 2000);
  if (role === 'producer') {
    return { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy, lazyConnect: false };
  }
  return { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy };
}

export function createRedis(url: string, role: RedisRole): Redis {
  const redis = new Redis(url, redisOptions(role));
  // Without a listener ioredis prints unhandled "error" events; connection state is
  // surfaced through readiness checks and command failures instead.
  redis.on('error', () => {});
  return redis;
}
