import type { Redis } from 'ioredis';

/**
 * Failed authentications per client address per minute, counted in Redis so every replica of
 * an app shares the count. The API and the dashboard check it before they look a credential up,
 * so a guessing client costs one Redis round trip, never a database query. When Redis cannot
 * answer, nothing is throttled (the request then meets the rest of the API's failure handling).
 */
export class AuthFailureThrottle {
  constructor(
    private readonly redis: Redis,
    /** Key prefix, with the app's name: `clipline:auth-fail:api`. */
    private readonly prefix: string,
    /** Failures allowed per address per minute. @defaultValue 20 */
    private readonly perMinute = 20,
  ) {}

  private key(address: string, window: number): string {
    return `${this.prefix}:${address}:${window}`;
  }

  /** Seconds until `address` may try again, or 0 when it is not throttled. */
  async retryAfter(address: string, now = Date.now()): Promise<number> {
    const window = Math.floor(now / 60_000);
    let count: number;
    try {
      count = Number((await this.redis.get(this.key(address, window))) ?? 0);
    } catch {
      return 0;
    }
    return count >= this.perMinute ? Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000)) : 0;
  }

  /** Counts one failed attempt of `address`. */
  async recordFailure(address: string, now = Date.now()): Promise<void> {
    const key = this.key(address, Math.floor(now / 60_000));
    await this.redis
      .multi()
      .incr(key)
      .expire(key, 61)
      .exec()
      .catch(() => {});
  }
}

/** A client address as a throttle key: IPv4-mapped IPv6 folded to IPv4, so one client is one key. */
export function clientAddress(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress;
}
