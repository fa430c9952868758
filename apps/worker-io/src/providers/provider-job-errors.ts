import { PermanentJobError, RateLimitedError } from '@clipline/shared';
import { ProviderError, ProviderRateLimitedError } from './provider-errors.js';

/**
 * What a processor rethrows after a provider call failed: permanent failures and a missing key
 * become {@link PermanentJobError} (the job fails at once, no attempts wasted on a bad request
 * or a paid call that cannot succeed); a rate limit becomes {@link RateLimitedError}, so the
 * worker runtime pauses the provider's queue and the job waits without spending an attempt;
 * transient and breaker-open errors stay as they are, so BullMQ retries them with backoff.
 * Callers that skip a step when the provider is not configured or fall back when its breaker is
 * open check `error.kind` before this.
 */
export function toJobError(error: unknown): Error {
  if (error instanceof ProviderRateLimitedError) return new RateLimitedError(error.message, error.retryAfterMs, { cause: error });
  if (error instanceof ProviderError && (error.kind === 'permanent' || error.kind === 'not-configured')) {
    return new PermanentJobError(error.message, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}
