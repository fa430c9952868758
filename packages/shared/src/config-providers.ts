import { z } from 'zod';

/**
 * The upstream providers' part of the one configuration schema (see `config.ts`): their
 * variables, composed into the schema's object, and the settings section built from them.
 * worker-io is the only app that calls the providers, but the variables are parsed with all the
 * others, so a bad one is named at start-up like any other and nothing reads `process.env` twice.
 */

/** The upstream providers behind the AI and metadata steps. */
export type UpstreamProvider = 'youtube' | 'openai' | 'stability' | 'elevenlabs';

export const DEFAULT_BASE_URLS: Readonly<Record<UpstreamProvider, string>> = {
  youtube: 'https://www.googleapis.com',
  openai: 'https://api.openai.com/v1',
  stability: 'https://api.stability.ai',
  elevenlabs: 'https://api.elevenlabs.io',
};

/** Where each provider lives on the simulator: OpenAI's base URL carries `/v1`, the others do not. */
const SIMULATOR_PATHS: Readonly<Record<UpstreamProvider, string>> = { youtube: '', openai: '/v1', stability: '', elevenlabs: '' };

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** Node runs a timer of more than 2^31 - 1 ms after 1 ms instead: a longer delay is refused. */
export const MAX_TIMER_MS = 2_147_483_647;
/** A delay in milliseconds that a timer can wait for. */
export const timerMs = (fallback: number) =>
  z.coerce.number().int().positive().max(MAX_TIMER_MS, `at most ${MAX_TIMER_MS} ms (about 24.8 days): Node cannot wait longer`).default(fallback);
/** A delay in seconds that a timer can wait for. */
export const timerSeconds = (fallback: number) =>
  z.coerce
    .number()
    .int()
    .positive()
    .max(Math.floor(MAX_TIMER_MS / 1000), `at most ${Math.floor(MAX_TIMER_MS / 1000)} s (about 24.8 days): Node cannot wait longer`)
    .default(fallback);
const nonNegativeInt = (fallback: number) => z.coerce.number().int().min(0).default(fallback);
const httpUrl = z.url({ protocol: /^https?$/, message: 'expected an http:// or https:// URL' });
/** Requests per second; 0 turns the shared limiter off for that provider. */
const ratePerSecond = (fallback: number) => z.coerce.number().min(0).max(100_000).default(fallback);
const burst = z.coerce.number().int().positive().optional();

/**
 * Environment variables of the upstream providers. Keys are optional: a provider without one
 * is "not configured" and its steps are skipped. `UPSTREAM_SIM_URL` points every provider whose
 * base URL is not set explicitly at the upstream simulator, with the simulator's key as the
 * default key (refused in production).
 */
export const providerEnvSchema = z.object({
  /** Base URL of the upstream simulator, e.g. http://127.0.0.1:3900. */
  UPSTREAM_SIM_URL: httpUrl.optional(),
  /** Key used for every provider without its own key while UPSTREAM_SIM_URL is set. @defaultValue sim-key */
  UPSTREAM_SIM_API_KEY: z.string().min(1).default('sim-key'),

  YOUTUBE_API_KEY: z.string().min(1).optional(),
  /** @defaultValue https://www.googleapis.com */
  YOUTUBE_BASE_URL: httpUrl.optional(),
  YOUTUBE_TIMEOUT_MS: timerMs(10_000),
  YOUTUBE_RATE_LIMIT_PER_SECOND: ratePerSecond(10),
  /** Requests that may go out at once after a quiet spell. @defaultValue the per-second rate, at least 1 */
  YOUTUBE_RATE_LIMIT_BURST: burst,
  /** Seconds cached video metadata is served without asking YouTube. */
  YOUTUBE_CACHE_TTL_SECONDS: positiveInt(3600),
  /** Seconds stale metadata is kept for ETag revalidation. @defaultValue 7 days */
  YOUTUBE_CACHE_RETAIN_SECONDS: positiveInt(7 * 86_400),

  OPENAI_API_KEY: z.string().min(1).optional(),
  /** @defaultValue https://api.openai.com/v1 */
  OPENAI_BASE_URL: httpUrl.optional(),
  OPENAI_TIMEOUT_MS: timerMs(120_000),
  OPENAI_RATE_LIMIT_PER_SECOND: ratePerSecond(50),
  OPENAI_RATE_LIMIT_BURST: burst,
  OPENAI_CHAT_MODEL: z.string().min(1).default('gpt-4o-mini'),
  OPENAI_TRANSCRIPTION_MODEL: z.string().min(1).default('whisper-1'),

  STABILITY_API_KEY: z.string().min(1).optional(),
  /** @defaultValue https://api.stability.ai */
  STABILITY_BASE_URL: httpUrl.optional(),
  STABILITY_TIMEOUT_MS: timerMs(120_000),
  STABILITY_RATE_LIMIT_PER_SECOND: ratePerSecond(10),
  STABILITY_RATE_LIMIT_BURST: burst,
  STABILITY_ENGINE_ID: z.string().min(1).default('stable-diffusion-xl-1024-v1-0'),

  ELEVENLABS_API_KEY: z.string().min(1).optional(),
  /** @defaultValue https://api.elevenlabs.io */
  ELEVENLABS_BASE_URL: httpUrl.optional(),
  ELEVENLABS_TIMEOUT_MS: timerMs(120_000),
  ELEVENLABS_RATE_LIMIT_PER_SECOND: ratePerSecond(5),
  ELEVENLABS_RATE_LIMIT_BURST: burst,
  ELEVENLABS_VOICE_ID: z.string().min(1).default('21m00Tcm4TlvDq8ikWAM'),
  ELEVENLABS_MODEL_ID: z.string().min(1).default('eleven_multilingual_v2'),

  /** Calls within the rolling window before the breaker may open. */
  PROVIDER_BREAKER_VOLUME_THRESHOLD: positiveInt(5),
  /** Failure percentage within the window above which the breaker opens. */
  PROVIDER_BREAKER_ERROR_PERCENT: z.coerce.number().min(1).max(100).default(50),
  /** Milliseconds an open breaker waits before letting one trial call through. */
  PROVIDER_BREAKER_RESET_MS: timerMs(30_000),
  /** Milliseconds of the rolling window the failure percentage is computed over. */
  PROVIDER_BREAKER_WINDOW_MS: timerMs(10_000),
  /**
   * Seconds a job waits in all for a provider whose breaker is open (it is deferred, no attempt
   * spent) before it gives up: an optional step is then skipped, anything else fails. 0: never wait.
   */
  PROVIDER_OUTAGE_MAX_SECONDS: nonNegativeInt(900),
  /** Retries of idempotent GETs inside one call (POSTs are never retried by the client). */
  PROVIDER_GET_RETRIES: nonNegativeInt(2),
  /** Delay before the first GET retry; doubles each time, with jitter. */
  PROVIDER_GET_RETRY_DELAY_MS: timerMs(250),
  /** Longest a call waits for a token of the shared limiter before it gives up as rate-limited. */
  PROVIDER_LIMITER_MAX_WAIT_MS: nonNegativeInt(1000),
});

type ProviderVariables = z.output<typeof providerEnvSchema>;

/** A token bucket: `perSecond` tokens flow in, at most `burst` are kept; none when the rate is 0. */
function rateLimit(perSecond: number, burst: number | undefined) {
  if (perSecond === 0) return undefined;
  return { perSecond, burst: burst ?? Math.max(1, Math.ceil(perSecond)) };
}

const PREFIXES = { youtube: 'YOUTUBE', openai: 'OPENAI', stability: 'STABILITY', elevenlabs: 'ELEVENLABS' } as const satisfies Record<UpstreamProvider, string>;

/** Where one provider is reached and with what: its `<PROVIDER>_*` variables, or the simulator's. */
function connectionOf(env: ProviderVariables, provider: UpstreamProvider) {
  const prefix = PREFIXES[provider];
  const simulator = env.UPSTREAM_SIM_URL?.replace(/\/+$/, '');
  const explicitUrl = env[`${prefix}_BASE_URL`];
  return {
    baseUrl: (explicitUrl ?? (simulator ? `${simulator}${SIMULATOR_PATHS[provider]}` : DEFAULT_BASE_URLS[provider])).replace(/\/+$/, ''),
    /** Undefined when the provider is not configured. */
    apiKey: env[`${prefix}_API_KEY`] ?? (simulator ? env.UPSTREAM_SIM_API_KEY : undefined),
    timeoutMs: env[`${prefix}_TIMEOUT_MS`],
    /** Undefined when the provider has no shared limit. */
    rateLimit: rateLimit(env[`${prefix}_RATE_LIMIT_PER_SECOND`], env[`${prefix}_RATE_LIMIT_BURST`]),
  };
}

/** The `providers` section of the configuration, built from the variables above. */
export function providerSettings(env: ProviderVariables) {
  return {
    youtube: {
      ...connectionOf(env, 'youtube'),
      cacheTtlMs: env.YOUTUBE_CACHE_TTL_SECONDS * 1000,
      cacheRetainMs: env.YOUTUBE_CACHE_RETAIN_SECONDS * 1000,
    },
    openai: { ...connectionOf(env, 'openai'), chatModel: env.OPENAI_CHAT_MODEL, transcriptionModel: env.OPENAI_TRANSCRIPTION_MODEL },
    stability: { ...connectionOf(env, 'stability'), engineId: env.STABILITY_ENGINE_ID },
    elevenlabs: { ...connectionOf(env, 'elevenlabs'), voiceId: env.ELEVENLABS_VOICE_ID, modelId: env.ELEVENLABS_MODEL_ID },
    breaker: {
      volumeThreshold: env.PROVIDER_BREAKER_VOLUME_THRESHOLD,
      errorThresholdPercentage: env.PROVIDER_BREAKER_ERROR_PERCENT,
      resetTimeoutMs: env.PROVIDER_BREAKER_RESET_MS,
      rollingWindowMs: env.PROVIDER_BREAKER_WINDOW_MS,
      outageMaxMs: env.PROVIDER_OUTAGE_MAX_SECONDS * 1000,
    },
    getRetries: env.PROVIDER_GET_RETRIES,
    getRetryDelayMs: env.PROVIDER_GET_RETRY_DELAY_MS,
    limiterMaxWaitMs: env.PROVIDER_LIMITER_MAX_WAIT_MS,
  };
}
