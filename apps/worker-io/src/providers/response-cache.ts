import type { RedisClient } from '@clipline/shared';
import type { z } from 'zod';
import type { ProviderMetrics } from './provider-metrics.js';

export type CacheOutcome = 'hit' | 'miss' | 'revalidated';

/** What a fetcher tells the cache: the upstream said "unchanged" (304), or here is a new value. */
export type Revalidation<T> = { notModified: true } | { notModified: false; value: T; etag: string | undefined };

export interface ResponseCacheOptions<S extends z.ZodType> {
  redis: RedisClient;
  /** Prefix of every key, e.g. the queue prefix. */
  keyPrefix: string;
  /** Name of the cache in keys and in the `cache` label of the lookup counter. */
  name: string;
  /** Checks values read back from Redis; an entry that no longer fits is treated as absent. */
  schema: S;
  /** Milliseconds a stored value is served without asking upstream. */
  ttlMs: number;
  /** Milliseconds a stale value (with an ETag) is kept for revalidation. @defaultValue 7 days */
  retainMs?: number;
  metrics: ProviderMetrics;
}

interface Entry {
  value: unknown;
  etag: string | undefined;
  freshUntil: number;
}

/**
 * Redis cache of upstream answers. Fresh entries are served as they are (`hit`). A stale entry
 * with an ETag is revalidated: a 304 keeps the value and starts a new TTL (`revalidated`); any
 * other answer replaces it (`miss`), as does a fetch with nothing cached.
 */
export class ResponseCache<S extends z.ZodType> {
  private readonly retainMs: number;

  constructor(private readonly options: ResponseCacheOptions<S>) {
    this.retainMs = Math.max(options.ttlMs, options.retainMs ?? 7 * 86_400_000);
  }

  private key(key: string): string {
    return `${this.options.keyPrefix}:cache:${this.options.name}:${key}`;
  }

  private async read(key: string): Promise<(Entry & { value: z.output<S> }) | undefined> {
    const raw = await this.options.redis.get(this.key(key));
    if (!raw) return undefined;
    try {
      const entry = JSON.parse(raw) as Entry;
      const parsed = this.options.schema.safeParse(entry.value);
      return parsed.success ? { ...entry, value: parsed.data } : undefined;
    } catch {
      return undefined;
    }
  }

  private async write(key: string, value: unknown, etag: string | undefined): Promise<void> {
    const entry: Entry = { value, etag, freshUntil: Date.now() + this.options.ttlMs };
    // Without an ETag a stale entry cannot be revalidated, so it need not outlive its TTL.
    const keepMs = etag ? this.retainMs : this.options.ttlMs;
    await this.options.redis.set(this.key(key), JSON.stringify(entry), 'PX', keepMs);
  }

  /**
   * The cached value of `key`, asking `fetch` (with the stored ETag, if any) when it is
   * missing or stale. `revalidate: true` asks even when the entry is fresh (scheduled syncs).
   */
  async get(
    key: string,
    fetch: (etag: string | undefined) => Promise<Revalidation<z.output<S>>>,
    request: { revalidate?: boolean } = {},
  ): Promise<{ value: z.output<S>; outcome: CacheOutcome }> {
    const entry = await this.read(key);
    if (entry && !request.revalidate && entry.freshUntil > Date.now()) return this.counted({ value: entry.value, outcome: 'hit' });
    const answer = await fetch(entry?.etag);
    if (answer.notModified) {
      if (!entry) throw new Error(`${this.options.name}: upstream answered "not modified" to a request without an ETag`);
      await this.write(key, entry.value, entry.etag);
      return this.counted({ value: entry.value, outcome: 'revalidated' });
    }
    await this.write(key, answer.value, answer.etag);
    return this.counted({ value: answer.value, outcome: 'miss' });
  }

  async delete(key: string): Promise<void> {
    await this.options.redis.del(this.key(key));
  }

  private counted<T extends { outcome: CacheOutcome }>(result: T): T {
    this.options.metrics.cacheLookups.inc({ cache: this.options.name, outcome: result.outcome });
    return result;
  }
}
