export { createProviderClients, type ProviderClients, type ProviderClientsOptions } from './provider-clients.js';
export {
  DEFAULT_BASE_URLS,
  loadProviderSettings,
  providerEnvSchema,
  type BreakerSettings,
  type ProviderConnection,
  type ProviderEnv,
  type ProviderSettings,
  type RateLimit,
} from './provider-config.js';
export {
  isProviderError,
  ProviderBreakerOpenError,
  ProviderDeclinedError,
  ProviderError,
  ProviderInvalidResponseError,
  ProviderNotConfiguredError,
  ProviderPermanentError,
  ProviderRateLimitedError,
  ProviderTransientError,
  retryAfterMs,
  type ProviderFailureKind,
  type ProviderOutage,
  type RateLimitSource,
} from './provider-errors.js';
export { PROVIDERS, API_KEY_VARIABLES, type ProviderName } from './provider-names.js';
export { BREAKER_STATE_VALUES, type BreakerState } from './provider-breaker.js';
export { providerMetrics, type ProviderMetrics } from './provider-metrics.js';
export { RateGate, type GateDecision } from './rate-gate.js';
export { ResponseCache, type CacheOutcome, type Revalidation, type ResponseCacheOptions } from './response-cache.js';
export { toJobError } from './provider-job-errors.js';
export type { CallOptions } from './call-options.js';
export { OpenAiClient, type ChatMessage, type ChatRequest, type ChatResult, type Transcript, type TranscriptSegment } from './openai.js';
export { YouTubeClient, type VideoListAnswer, type YouTubeVideo } from './youtube.js';
export { YouTubeMetadata, isoDurationSeconds, videoMetadataSchema, type VideoMetadata } from './youtube-metadata.js';
export { StabilityClient, type GeneratedImage, type ImageRequest } from './stability.js';
export { ElevenLabsClient, type SpeechRequest } from './elevenlabs.js';
