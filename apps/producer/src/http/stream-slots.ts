import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@clipline/shared';

/** How long a slot lives without a refresh: a producer that died frees its streams' slots by then. */
const SLOT_TTL_MS = 45_000;

/**
 * Live event streams open per API key, across every producer replica: a sorted set per key whose
 * members are open streams, scored by when they lapse. Streams refresh their slot on every
 * heartbeat; a crashed replica's slots lapse instead of leaking forever.
 */
export class StreamSlots {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    readonly perKey: number,
  ) {}

  private key(principal: string): string {
    return `${this.prefix}:sse-slots:${principal}`;
  }

  /** Takes a slot; undefined when the key already holds `perKey` open streams. */
  async acquire(principal: string): Promise<string | undefined> {
    const slot = randomUUID();
    const key = this.key(principal);
    const now = Date.now();
    try {
      const results = await this.redis
        .multi()
        .zremrangebyscore(key, '-inf', now)
        .zadd(key, now + SLOT_TTL_MS, slot)
        .zcard(key)
        .pexpire(key, SLOT_TTL_MS)
        .exec();
      const open = Number(results?.[2]?.[1] ?? 0);
      if (open > this.perKey) {
        await this.release(principal, slot);
        return undefined;
      }
    } catch {
      // Redis is down: streams then poll the database alone; do not refuse them for that.
    }
    return slot;
  }

  async refresh(principal: string, slot: string): Promise<void> {
    const key = this.key(principal);
    await this.redis
      .multi()
      .zadd(key, 'XX', Date.now() + SLOT_TTL_MS, slot)
      .pexpire(key, SLOT_TTL_MS)
      .exec()
      .catch(() => {});
  }

  async release(principal: string, slot: string): Promise<void> {
    await this.redis.zrem(this.key(principal), slot).catch(() => {});
  }
}
