import type { RequestHandler } from 'express';
import type { RedisClient } from '@clipline/shared';
import { principalOf } from './auth.js';
import { HttpProblem } from './problem.js';

/** Adds ARGV[1] to the window's count, (re)sets its expiry to ARGV[2] seconds, returns the count. */
const CHARGE_SCRIPT = `local count = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return count`;

/**
 * Requests per principal per minute, counted in Redis so every producer replica shares the
 * count. A request costs one unit; a batch costs one more per video beyond the first (see
 * {@link RequestBudget.charge}). When Redis cannot answer, the limit is not enforced (the queue
 * itself then answers 503).
 */
export class RequestBudget {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    readonly perMinute: number,
  ) {}

  /** Adds `units` to the principal's count this minute; throws 429 once it is past the limit. */
  async charge(principal: string, units: number, headers?: (name: string, value: string) => void): Promise<void> {
    if (this.perMinute <= 0 || units <= 0) return;
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    const key = `${this.prefix}:api-rate:${principal}:${window}`;
    let count: number;
    try {
      // One script, one command: INCRBY and EXPIRE as MULTI would send them, without a MULTI's
      // four commands and its client-side transaction object on every request.
      count = Number(await this.redis.eval(CHARGE_SCRIPT, 1, key, units, 61));
    } catch {
      return;
    }
    headers?.('ratelimit-limit', String(this.perMinute));
    headers?.('ratelimit-remaining', String(Math.max(0, this.perMinute - count)));
    if (count > this.perMinute) {
      const retryAfter = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
      throw new HttpProblem(
        429,
        'Too Many Requests',
        `this API key is limited to ${this.perMinute} requests per minute (a batch counts each video); retry in ${retryAfter} s`,
        {},
        { 'retry-after': String(retryAfter) },
      );
    }
  }
}

export function rateLimitPerKey(budget: RequestBudget): RequestHandler {
  return async (_req, res, next) => {
    try {
      await budget.charge(principalOf(res), 1, (name, value) => res.setHeader(name, value));
      next();
    } catch (error) {
      next(error);
    }
  };
}
