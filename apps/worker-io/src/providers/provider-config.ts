import { loadConfig, type providerEnvSchema, type Config } from '@clipline/shared';
import type { z } from 'zod';

/**
 * The providers' variables are part of the one configuration schema (`@clipline/shared`,
 * `config-providers.ts`): they are parsed with every other variable at start-up and reach
 * worker-io as `config.providers`. The names below are views of that section.
 */
export { DEFAULT_BASE_URLS, providerEnvSchema } from '@clipline/shared';

export type ProviderEnv = z.input<typeof providerEnvSchema>;

export type ProviderSettings = Config['providers'];

/** What every provider's settings share: where it is, its key, its timeout and shared limit. */
export type ProviderConnection = Pick<ProviderSettings['youtube'], 'baseUrl' | 'apiKey' | 'timeoutMs' | 'rateLimit'>;

/** A token bucket: `perSecond` tokens flow in, at most `burst` are kept. */
export type RateLimit = NonNullable<ProviderConnection['rateLimit']>;

export type BreakerSettings = ProviderSettings['breaker'];

/**
 * The provider settings of an environment (tests build them from a few variables); a bad
 * variable throws a ConfigError naming it. The processes read `config.providers` instead.
 */
export function loadProviderSettings(source: Record<string, string | undefined>): ProviderSettings {
  return loadConfig(source).providers;
}
