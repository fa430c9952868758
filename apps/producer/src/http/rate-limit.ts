import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { principalOf } from './auth.js';
import { HttpProblem } from './problem.js';

/**
 * Requests per principal per minute, counted in Redis so every producer replica shares the
 * count. When Redis cannot answer, the limit is not enforced (the queue itself then answers 503).
 */
export function rateLimitPerKey(redis: Redis, prefix: string, perMinute: number): RequestHandler {
  return async (_req, res, next) => {
    if (perMinute <= 0) return next();
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    const key = `${prefix}:api-rate:${principalOf(res)}:${window}`;
    let count: number;
    try {
      const results = await redis.multi().incr(key).expire(key, 61).exec();
      count = Number(results?.[0]?.[1] ?? 0);
    } catch {
      return next();
    }
    const remaining = Math.max(0, perMinute - count);
    res.setHeader('ratelimit-limit', String(perMinute));
    res.setHeader('ratelimit-remaining', String(remaining));
    if (count > perMinute) {
      const retryAfter = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
      return next(
        new HttpProblem(429, 'Too Many Requests', `this API key is limited to ${perMinute} requests per minute; retry in ${retryAfter} s`, {}, {
          'retry-after': String(retryAfter),
        }),
      );
    }
    return next();
  };
}
