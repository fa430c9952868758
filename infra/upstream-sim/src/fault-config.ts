import { z } from 'zod';

/** The endpoints the simulator serves; faults and statistics are kept per endpoint. */
export const SIM_ENDPOINTS = [
  'youtube.videos.list',
  'openai.chat.completions',
  'openai.audio.transcriptions',
  'stability.text-to-image',
  'elevenlabs.text-to-speech',
  'media',
] as const;

export type SimEndpoint = (typeof SIM_ENDPOINTS)[number];

const milliseconds = z.number().finite().min(0).max(600_000);
const probability = z.number().min(0).max(1);

/** How long the simulator waits before it answers. */
export const latencySchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }).strict(),
  z.object({ kind: z.literal('fixed'), ms: milliseconds }).strict(),
  z
    .object({ kind: z.literal('uniform'), minMs: milliseconds, maxMs: milliseconds })
    .strict()
    .refine((latency) => latency.minMs <= latency.maxMs, { message: 'minMs must not exceed maxMs' }),
  z.object({ kind: z.literal('normal'), meanMs: milliseconds, stdDevMs: milliseconds }).strict(),
]);

export type Latency = z.infer<typeof latencySchema>;

/** Faults of one endpoint. Rates are probabilities per request, drawn from the seeded generator. */
export const endpointFaultsSchema = z
  .object({
    /** Delay before any answer. @defaultValue `{ kind: 'none' }` */
    latency: latencySchema,
    /** Share of requests answered with `errorStatus`. @defaultValue 0 */
    errorRate: probability,
    /** Status of injected server errors. @defaultValue 503 */
    errorStatus: z.union([z.literal(500), z.literal(502), z.literal(503), z.literal(504)]),
    /** Seconds sent in `Retry-After` with every injected server error (a provider saying when it is back); `null` sends none. @defaultValue null */
    errorRetryAfterSeconds: z.number().int().min(0).max(86_400).nullable(),
    /** Share of requests answered 429 with `Retry-After`. @defaultValue 0 */
    rateLimitRate: probability,
    /** The next this many requests are answered 429, whatever the rate says. @defaultValue 0 */
    rateLimitNext: z.number().int().min(0),
    /** Seconds sent in `Retry-After` with every 429 (0 and a month included: clients must cope). @defaultValue 1 */
    retryAfterSeconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400),
    /** What a 429 says: a rate limit that clears, or (OpenAI) a used-up quota that waiting does not clear. @defaultValue 'rate' */
    rateLimitReason: z.enum(['rate', 'quota']),
    /** Share of requests that never get an answer (the connection stays open). @defaultValue 0 */
    timeoutRate: probability,
    /** Share of requests answered 200 with a body that breaks the provider's contract. @defaultValue 0 */
    malformedRate: probability,
    /** Bytes per second a response body is sent at; `null` sends it at once. @defaultValue null */
    bytesPerSecond: z.number().int().positive().nullable(),
  })
  .strict();

export type EndpointFaults = z.infer<typeof endpointFaultsSchema>;

export const NO_FAULTS: Readonly<EndpointFaults> = Object.freeze<EndpointFaults>({
  latency: { kind: 'none' },
  errorRate: 0,
  errorStatus: 503,
  errorRetryAfterSeconds: null,
  rateLimitRate: 0,
  rateLimitNext: 0,
  retryAfterSeconds: 1,
  rateLimitReason: 'rate',
  timeoutRate: 0,
  malformedRate: 0,
  bytesPerSecond: null,
});

const partialFaults = endpointFaultsSchema.partial();

/**
 * What `POST /_sim/config`, `configure()` and `UPSTREAM_SIM_CONFIG` accept. Every part is
 * optional and merges into the current configuration: `all` applies to every endpoint,
 * `endpoints` overrides per endpoint.
 */
export const configPatchSchema = z
  .object({
    /** Reseeds the generator behind every random decision and generated content. */
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .optional(),
    all: partialFaults.optional(),
    endpoints: z.partialRecord(z.enum(SIM_ENDPOINTS), partialFaults).optional(),
    /** Bumping it changes every YouTube video's statistics, and so its ETag. */
    youtubeRevision: z.number().int().min(0).optional(),
  })
  .strict();

export type ConfigPatch = z.input<typeof configPatchSchema>;

export interface SimulatorConfig {
  seed: number;
  all: Partial<EndpointFaults>;
  endpoints: Partial<Record<SimEndpoint, Partial<EndpointFaults>>>;
  youtubeRevision: number;
}

/** Validates a patch; the error names every bad field. */
export function parseConfigPatch(input: unknown): ConfigPatch {
  const parsed = configPatchSchema.safeParse(input);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(config)'}: ${issue.message}`).join('; ');
    throw new SimConfigError(`invalid simulator config: ${detail}`);
  }
  return parsed.data;
}

export class SimConfigError extends Error {
  override name = 'SimConfigError';
}

export function applyConfigPatch(config: SimulatorConfig, patch: ConfigPatch): SimulatorConfig {
  const endpoints = { ...config.endpoints };
  for (const [endpoint, faults] of Object.entries(patch.endpoints ?? {}) as [SimEndpoint, Partial<EndpointFaults>][]) {
    endpoints[endpoint] = { ...endpoints[endpoint], ...faults };
  }
  return {
    seed: patch.seed ?? config.seed,
    all: { ...config.all, ...patch.all },
    endpoints,
    youtubeRevision: patch.youtubeRevision ?? config.youtubeRevision,
  };
}

export function faultsOf(config: SimulatorConfig, endpoint: SimEndpoint): EndpointFaults {
  return { ...NO_FAULTS, ...config.all, ...config.endpoints[endpoint] };
}
