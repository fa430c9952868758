import net from 'node:net';
import type { RedisClient } from './redis.js';

/** A reserved authentication attempt: refused (retry after so many seconds), or to be settled. */
export interface AuthAttempt {
  /** Seconds until the address may try again; 0 when this attempt may go on. */
  retryAfter: number;
  /** The attempt succeeded (or tried nothing): it no longer counts against the address. */
  release(): Promise<void>;
}

/**
 * Takes back one attempt, unless the count expired meanwhile (an attempt that outlived its
 * minute): a DECR would then leave a key of -1 that never expires.
 */
const GIVE_BACK_SCRIPT = `if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0`;

/**
 * Failed authentications per client address per minute, counted in Redis so every replica of an
 * app shares the count. An attempt is counted *before* its credential is looked up and given back
 * when it succeeds, so a burst of parallel guesses cannot all be checked while the count still
 * reads low: at most `perMinute` attempts per address are ever in flight or failed in a minute.
 * A refused attempt is not counted, and costs one Redis round trip and no database query. When
 * Redis cannot answer, this process counts on its own, with the same limit, so an outage of
 * Redis does not open the door to unlimited guesses (each replica then allows the limit).
 */
export class AuthFailureThrottle {
  /** The counts of this process while Redis cannot answer, by key (address and minute). */
  private readonly local = new Map<string, number>();

  constructor(
    private readonly redis: RedisClient,
    /** Key prefix, with the app's name: `clipline:auth-fail:api`. */
    private readonly prefix: string,
    /** Failures allowed per address per minute. @defaultValue 20 */
    private readonly perMinute = 20,
  ) {}

  async reserve(address: string, now = Date.now()): Promise<AuthAttempt> {
    const window = Math.floor(now / 60_000);
    const key = `${this.prefix}:${address}:${window}`;
    const giveBack = () =>
      this.redis
        .eval(GIVE_BACK_SCRIPT, 1, key)
        .then(() => undefined)
        .catch(() => undefined);
    let count: number;
    try {
      const results = await this.redis.multi().incr(key).expire(key, 61).exec();
      count = Number(results?.[0]?.[1] ?? 0);
    } catch {
      return this.reserveLocally(key, window, now);
    }
    if (count > this.perMinute) {
      await giveBack();
      return { retryAfter: Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000)), release: async () => {} };
    }
    return { retryAfter: 0, release: giveBack };
  }

  /** The same count and limit as in Redis, kept in this process for the minute `window`. */
  private reserveLocally(key: string, window: number, now: number): AuthAttempt {
    for (const counted of this.local.keys()) if (!counted.endsWith(`:${window}`)) this.local.delete(counted);
    const count = (this.local.get(key) ?? 0) + 1;
    if (count > this.perMinute) return { retryAfter: Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000)), release: async () => {} };
    this.local.set(key, count);
    let released = false;
    const release = async () => {
      const current = this.local.get(key);
      if (released || current === undefined) return;
      released = true;
      if (current <= 1) this.local.delete(key);
      else this.local.set(key, current - 1);
    };
    return { retryAfter: 0, release };
  }
}

/** Expands an IPv6 address into its eight groups (`::` filled with zeros). */
function ipv6Groups(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const parts = (text: string) => (text ? text.split(':') : []);
  const left = parts(head);
  const right = tail === undefined ? [] : parts(tail);
  return [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
}

/**
 * A client address as a throttle key: IPv4-mapped IPv6 folded to IPv4, and IPv6 to its /64, the
 * block one subscriber holds, so switching addresses inside it does not reset the budget.
 */
export function clientAddress(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  if (remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.')) return remoteAddress.slice(7);
  if (net.isIPv6(remoteAddress) && !remoteAddress.includes('.')) {
    return `${ipv6Groups(remoteAddress.toLowerCase())
      .slice(0, 4)
      .map((group) => group.replace(/^0+(?=.)/, ''))
      .join(':')}::/64`;
  }
  return remoteAddress;
}
