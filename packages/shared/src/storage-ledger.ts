import type { RedisClient } from './redis.js';
import { Gauge, type Registry } from 'prom-client';

/**
 * What the deployment knows about its stored files, kept in Redis so that every process sees one
 * account: the bytes stored (measured by one scheduled walk, lowered at once by each removal) and
 * the purges whose rows are deleted but whose files may not be yet (a crash between the two
 * leaves the id here, and the retention job finishes it).
 */
export class StorageLedger {
  private readonly bytesKey: string;
  private readonly purgingKey: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.bytesKey = `${prefix}:storage:bytes`;
    this.purgingKey = `${prefix}:storage:purging`;
  }

  /** Notes purges about to start; an id already noted keeps its first time. */
  async notePurges(videoIds: readonly string[]): Promise<void> {
    if (videoIds.length === 0) return;
    const now = Date.now();
    await this.redis.zadd(this.purgingKey, 'NX', ...videoIds.flatMap((id) => [now, id]));
  }

  async forgetPurges(videoIds: readonly string[]): Promise<void> {
    if (videoIds.length) await this.redis.zrem(this.purgingKey, ...videoIds);
  }

  /** Purges noted more than `olderThanMs` ago and never finished, oldest first. */
  async unfinishedPurges(olderThanMs: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.purgingKey, '-inf', Date.now() - olderThanMs, 'LIMIT', 0, limit);
  }

  /** Records a fresh measurement of the whole storage. */
  async setBytes(bytes: number): Promise<void> {
    await this.redis.set(this.bytesKey, String(Math.max(0, Math.round(bytes))));
  }

  /**
   * Adds (or, negative, removes) bytes between measurements. Before the first measurement there
   * is nothing to adjust, so the count stays unknown rather than becoming a wrong small number.
   */
  async addBytes(delta: number): Promise<void> {
    if (!delta) return;
    await this.redis.eval(
      "if redis.call('exists', KEYS[1]) == 1 then return redis.call('incrby', KEYS[1], ARGV[1]) end return nil",
      1,
      this.bytesKey,
      String(Math.round(delta)),
    );
  }

  /**
   * {@link bytes}, or undefined at once when Redis is not connected, and after a second at most:
   * a scrape must not wait for a Redis that is away.
   */
  async bytesIfReachable(): Promise<number | undefined> {
    if (this.redis.status !== 'ready') return undefined;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), 1000);
    });
    try {
      return await Promise.race([this.bytes(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Bytes stored, or undefined before the first measurement. */
  async bytes(): Promise<number | undefined> {
    const value = await this.redis.get(this.bytesKey);
    // Two removals of the same files racing can push the count below 0 until the next walk.
    return value === null ? undefined : Math.max(0, Number(value));
  }
}

/**
 * `clipline_storage_bytes`, read from the ledger at scrape time. Every process that registers it
 * reports the same deployment-wide number, so aggregate with max(), never sum().
 */
export function registerStorageBytesGauge(registry: Registry, ledger: StorageLedger): Gauge {
  return new Gauge({
    name: 'clipline_storage_bytes',
    help: 'Bytes held in the storage directory (sources, clips, AI files), deployment-wide: aggregate with max(), not sum()',
    registers: [registry],
    async collect() {
      // Redis away: keep the last value rather than failing (or, on a connection that queues
      // commands until Redis is back, holding) the whole scrape.
      const bytes = await ledger.bytesIfReachable().catch(() => undefined);
      if (bytes !== undefined) this.set(bytes);
    },
  });
}
