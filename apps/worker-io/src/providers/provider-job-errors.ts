import { PermanentJobError, RateLimitedError, UpstreamOutageError } from '@clipline/shared';
import { ProviderBreakerOpenError, ProviderError, ProviderRateLimitedError, ProviderTransientError, type ProviderOutage } from './provider-errors.js';

/** What the breaker made of a provider error: an open breaker is an outage; a transient failure carries the breaker's judgement. */
function outageOf(error: unknown): ProviderOutage | undefined {
  if (error instanceof ProviderBreakerOpenError) return { judged: true, retryAfterMs: error.retryAfterMs, outageMaxMs: error.outageMaxMs };
  return error instanceof ProviderTransientError ? error.outage : undefined;
}

/**
 * What a processor rethrows after a provider call failed: permanent failures and a missing key
 * become {@link PermanentJobError} (the job fails at once, no attempts wasted on a bad request
 * or a paid call that cannot succeed); a rate limit becomes {@link RateLimitedError}, so the
 * worker runtime pauses the provider's queue and the job waits without spending an attempt
 * (one the provider keeps setting, up to `PROVIDER_OUTAGE_MAX_SECONDS`, as for an outage);
 * an open breaker and transient failures (5xx, timeouts) become {@link UpstreamOutageError}: when
 * the breaker judges the provider down the job waits for it to let a trial through, without
 * spending an attempt, until it has waited `PROVIDER_OUTAGE_MAX_SECONDS`; otherwise BullMQ's
 * attempts retry the failure with backoff first, and the job waits once they are used up.
 * Callers that skip a step when the provider is not configured check `error.kind` before this.
 */
export function toJobError(error: unknown): Error {
  if (error instanceof ProviderRateLimitedError) {
    // The provider's own limit (its 429, or the pause it left) is bounded like an outage; our limiter's is not.
    const set = error.source !== 'limiter' && error.outageMaxMs !== undefined;
    const upstream = set ? { name: error.provider, horizonMs: error.outageMaxMs as number } : undefined;
    return new RateLimitedError(error.message, error.retryAfterMs, { cause: error, ...(upstream ? { upstream } : {}) });
  }
  const outage = outageOf(error);
  if (outage && error instanceof ProviderError) {
    return new UpstreamOutageError(error.provider, error.message, outage.retryAfterMs, outage.outageMaxMs, { cause: error, judged: outage.judged });
  }
  if (error instanceof ProviderError && (error.kind === 'permanent' || error.kind === 'not-configured')) {
    return new PermanentJobError(error.message, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}
