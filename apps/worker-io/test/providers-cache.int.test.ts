import type { RedisClient } from '@clipline/shared';
import { Registry } from '@clipline/shared';
import type { UpstreamSimulator } from '../../../infra/upstream-sim/src/index.js';
import { createProviderClients, isoDurationSeconds, loadProviderSettings, type ProviderClients } from '../src/providers/index.js';
import { keysMatching, type TestEnvironment } from '../../../tests/helpers/services.js';
import { startUpstreamFixture, type UpstreamFixture } from './upstream-fixture.js';

// Long enough that nothing goes stale by itself while the test runs; staleness is made by hand.
const TTL_SECONDS = 3600;
const VIDEO = 'dQw4w9WgXcQ';
let fixture: UpstreamFixture;
let env: TestEnvironment;
let sim: UpstreamSimulator;
let redis: RedisClient;
let registry: Registry;
let providers: ProviderClients;

beforeAll(async () => {
  fixture = await startUpstreamFixture();
  ({ env, sim, redis } = fixture);
  registry = new Registry();
  const settings = loadProviderSettings({ UPSTREAM_SIM_URL: sim.url, YOUTUBE_CACHE_TTL_SECONDS: String(TTL_SECONDS) });
  providers = createProviderClients({ settings, redis, keyPrefix: env.config.queuePrefix, registry });
});

afterAll(async () => {
  providers.close();
  await fixture.close();
});

const youtubeStats = () => sim.stats().endpoints['youtube.videos.list'];

async function lookups(): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('clipline_response_cache_lookups_total')?.get();
  return Object.fromEntries((metric?.values ?? []).map((value) => [String(value.labels.outcome), value.value]));
}

/** Moves every cached YouTube entry's freshness into the past, as the TTL running out would; returns how many. */
async function makeStale(): Promise<number> {
  const keys = await keysMatching(redis, `${env.config.queuePrefix}:cache:*`);
  for (const key of keys) {
    const entry = JSON.parse((await redis.get(key))!) as { freshUntil: number };
    await redis.set(key, JSON.stringify({ ...entry, freshUntil: Date.now() - 1000 }), 'KEEPTTL');
  }
  return keys.length;
}

describe('YouTube metadata cache', () => {
  it('misses, hits within the TTL, revalidates with the ETag after it, and refetches when the video changed', async () => {
    const first = await providers.youtubeMetadata.videoMetadata(VIDEO);
    expect(first.cache).toBe('miss');
    expect(first.metadata.title.length).toBeGreaterThan(0);
    expect(first.metadata.durationSeconds).toBeGreaterThan(0);
    expect(youtubeStats().statuses).toEqual({ '200': 1 });

    const second = await providers.youtubeMetadata.videoMetadata(VIDEO);
    expect(second).toEqual({ metadata: first.metadata, cache: 'hit' });
    expect(youtubeStats().requests).toBe(1);

    // Past the TTL the entry is stale: the request carries If-None-Match and YouTube answers 304.
    expect(await makeStale()).toBe(1);
    const revalidated = await providers.youtubeMetadata.videoMetadata(VIDEO);
    expect(revalidated).toEqual({ metadata: first.metadata, cache: 'revalidated' });
    expect(youtubeStats().statuses).toEqual({ '200': 1, '304': 1 });

    // The 304 started a new TTL.
    expect((await providers.youtubeMetadata.videoMetadata(VIDEO)).cache).toBe('hit');
    expect(youtubeStats().requests).toBe(2);

    // The video's statistics move; a forced revalidation (what the scheduled sync does) gets the new body.
    sim.configure({ youtubeRevision: 1 });
    const changed = await providers.youtubeMetadata.videoMetadata(VIDEO, { revalidate: true });
    expect(changed.cache).toBe('miss');
    expect(changed.metadata.viewCount).not.toBe(first.metadata.viewCount);
    expect(changed.metadata.title).toBe(first.metadata.title);
    expect(youtubeStats().statuses).toEqual({ '200': 2, '304': 1 });

    expect(await lookups()).toEqual({ miss: 2, hit: 2, revalidated: 1 });
  });

  it('shares entries between clients through Redis', async () => {
    const other = createProviderClients({
      settings: loadProviderSettings({ UPSTREAM_SIM_URL: sim.url }),
      redis,
      keyPrefix: env.config.queuePrefix,
      registry: new Registry(),
    });
    try {
      const before = youtubeStats().requests;
      await providers.youtubeMetadata.videoMetadata('M7lc1UVf-VE');
      expect((await other.youtubeMetadata.videoMetadata('M7lc1UVf-VE')).cache).toBe('hit');
      expect(youtubeStats().requests).toBe(before + 1);
    } finally {
      other.close();
    }
  });

  it('reads YouTube durations', () => {
    expect(isoDurationSeconds('PT15M51S')).toBe(951);
    expect(isoDurationSeconds('PT1H2M')).toBe(3720);
    expect(isoDurationSeconds('P1DT2S')).toBe(86_402);
    expect(isoDurationSeconds('PT0S')).toBe(0);
    expect(isoDurationSeconds('15:51')).toBeNull();
    expect(isoDurationSeconds('PT')).toBeNull();
  });
});
