import { PermanentJobError, RateLimitedError, UpstreamOutageError } from '@clipline/shared';
import { ProviderBreakerOpenError, ProviderError, ProviderRateLimitedError, ProviderTransientError, type ProviderOutage } from './provider-errors.js';

/** The outage a provider error belongs to: an open breaker, or a failure while the breaker judged one. */
function outageOf(error: unknown): ProviderOutage | undefined {
  if (error instanceof ProviderBreakerOpenError) return { retryAfterMs: error.retryAfterMs, outageMaxMs: error.outageMaxMs };
  return error instanceof ProviderTransientError ? error.outage : undefined;
}

/**
 * What a processor rethrows after a provider call failed: permanent failures and a missing key
 * become {@link PermanentJobError} (the job fails at once, no attempts wasted on a bad request
 * or a paid call that cannot succeed); a rate limit becomes {@link RateLimitedError}, so the
 * worker runtime pauses the provider's queue and the job waits without spending an attempt; a
 * provider judged down (its breaker open) becomes {@link UpstreamOutageError}, so the job waits
 * for the breaker to let a trial through, again without spending an attempt, until it has waited
 * `PROVIDER_OUTAGE_MAX_SECONDS`; other transient errors stay as they are, so BullMQ retries them
 * with backoff. Callers that skip a step when the provider is not configured check `error.kind`
 * before this.
 */
export function toJobError(error: unknown): Error {
  if (error instanceof ProviderRateLimitedError) return new RateLimitedError(error.message, error.retryAfterMs, { cause: error });
  const outage = outageOf(error);
  if (outage && error instanceof ProviderError) {
    return new UpstreamOutageError(error.provider, error.message, outage.retryAfterMs, outage.outageMaxMs, { cause: error });
  }
  if (error instanceof ProviderError && (error.kind === 'permanent' || error.kind === 'not-configured')) {
    return new PermanentJobError(error.message, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}
