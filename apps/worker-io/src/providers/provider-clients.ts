import type { RedisClient } from '@clipline/shared';
import type { Logger, Registry } from '@clipline/shared';
import { ElevenLabsClient } from './elevenlabs.js';
import { OpenAiClient } from './openai.js';
import { BREAKER_STATE_VALUES, ProviderBreaker, type BreakerState } from './provider-breaker.js';
import type { ProviderConnection, ProviderSettings } from './provider-config.js';
import { ProviderGuard } from './provider-guard.js';
import { ProviderHttp } from './provider-http.js';
import { providerMetrics, type ProviderMetrics } from './provider-metrics.js';
import { PROVIDERS, type ProviderName } from './provider-names.js';
import { RateGate } from './rate-gate.js';
import { ResponseCache } from './response-cache.js';
import { StabilityClient } from './stability.js';
import { YouTubeClient } from './youtube.js';
import { videoMetadataSchema, YouTubeMetadata } from './youtube-metadata.js';

export interface ProviderClientsOptions {
  settings: ProviderSettings;
  /** Connection for the shared limiter, pauses and cache (the worker's connection will do). */
  redis: RedisClient;
  /** Prefix of the Redis keys, e.g. the queue prefix, so deployments and test files stay apart. */
  keyPrefix: string;
  /** Where the breaker gauge, call counters and cache counters go (the process registry). */
  registry: Registry;
  logger?: Logger;
}

export interface ProviderClients {
  readonly youtube: YouTubeClient;
  /** YouTube metadata through the Redis response cache (ETag revalidation). */
  readonly youtubeMetadata: YouTubeMetadata;
  readonly openai: OpenAiClient;
  readonly stability: StabilityClient;
  readonly elevenlabs: ElevenLabsClient;
  /** The shared pause and limiter, e.g. to pause a provider by hand. */
  readonly gate: RateGate;
  /** State of each provider's breaker in this process, for the dashboard and readiness. */
  breakerStates(): Record<ProviderName, BreakerState>;
  /** Stops breaker timers and closes keep-alive connections; the Redis connection stays the caller's. */
  close(): void;
}

/** Authentication of each provider, as its API expects it. YouTube takes its key as a query parameter. */
function credentials(provider: ProviderName, apiKey: string | undefined): Record<string, string> {
  if (!apiKey) return {};
  switch (provider) {
    case 'youtube':
      return {};
    case 'elevenlabs':
      return { 'xi-api-key': apiKey };
    case 'openai':
    case 'stability':
      return { authorization: `Bearer ${apiKey}` };
  }
}

/** YouTube video answers kept in Redis, revalidated with their ETag. */
function youtubeVideosCache({ settings, redis, keyPrefix }: ProviderClientsOptions, metrics: ProviderMetrics) {
  return new ResponseCache({
    redis,
    keyPrefix,
    name: 'youtube-videos',
    schema: videoMetadataSchema,
    ttlMs: settings.youtube.cacheTtlMs,
    retainMs: settings.youtube.cacheRetainMs,
    metrics,
  });
}

/** Builds the four provider clients, each behind its own breaker, sharing one Redis gate. */
export function createProviderClients(options: ProviderClientsOptions): ProviderClients {
  const { settings, redis, keyPrefix, registry, logger } = options;
  const metrics: ProviderMetrics = providerMetrics(registry);
  const gate = new RateGate(redis, keyPrefix);
  const breakers = new Map<ProviderName, ProviderBreaker>();
  const transports: ProviderHttp[] = [];

  const wire = (provider: ProviderName, connection: ProviderConnection) => {
    const breaker = new ProviderBreaker(provider, settings.breaker, (state) => metrics.breakerState.set({ provider }, BREAKER_STATE_VALUES[state]), logger);
    metrics.breakerState.set({ provider }, BREAKER_STATE_VALUES.closed);
    breakers.set(provider, breaker);
    const http = new ProviderHttp({
      provider,
      baseUrl: connection.baseUrl,
      timeoutMs: connection.timeoutMs,
      headers: credentials(provider, connection.apiKey),
      getRetries: settings.getRetries,
      getRetryDelayMs: settings.getRetryDelayMs,
    });
    transports.push(http);
    const guard = new ProviderGuard({
      provider,
      configured: connection.apiKey !== undefined,
      gate,
      rateLimit: connection.rateLimit,
      limiterMaxWaitMs: settings.limiterMaxWaitMs,
      breaker,
      metrics,
    });
    return { guard, http };
  };

  const youtubeParts = wire('youtube', settings.youtube);
  const youtube = new YouTubeClient(settings.youtube, youtubeParts.guard, youtubeParts.http);
  const openaiParts = wire('openai', settings.openai);
  const stabilityParts = wire('stability', settings.stability);
  const elevenlabsParts = wire('elevenlabs', settings.elevenlabs);

  return {
    youtube,
    youtubeMetadata: new YouTubeMetadata(youtube, youtubeVideosCache(options, metrics)),
    openai: new OpenAiClient(settings.openai, openaiParts.guard, openaiParts.http),
    stability: new StabilityClient(settings.stability, stabilityParts.guard, stabilityParts.http),
    elevenlabs: new ElevenLabsClient(settings.elevenlabs, elevenlabsParts.guard, elevenlabsParts.http),
    gate,
    breakerStates: () =>
      Object.fromEntries(PROVIDERS.map((provider) => [provider, breakers.get(provider)?.state ?? 'closed'])) as Record<ProviderName, BreakerState>,
    close() {
      for (const breaker of breakers.values()) breaker.shutdown();
      for (const http of transports) http.close();
    },
  };
}
