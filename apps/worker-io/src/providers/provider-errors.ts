import { API_KEY_VARIABLES, type ProviderName } from './provider-names.js';

/**
 * How a provider call failed, which decides what the job does:
 * - `permanent`: the request itself is wrong (4xx other than 408/429, or an answer that breaks
 *   the contract); retrying cannot help, the job fails now.
 * - `transient`: 5xx, 408, timeouts, connection failures; BullMQ's attempts retry it.
 * - `rate-limited`: a 429, a provider pause set by another process, or the shared limiter;
 *   the whole queue waits `retryAfterMs` (`toJobError` makes it a `RateLimitedError`, which
 *   the worker runtime turns into a queue pause), no attempt is spent.
 * - `breaker-open`: the provider failed too often lately and is judged down; `toJobError` makes
 *   it an `UpstreamOutageError`, so the job waits for the breaker to half-open without spending
 *   an attempt, up to `PROVIDER_OUTAGE_MAX_SECONDS` in all. A transient failure met while the
 *   breaker judges an outage waits the same way (see {@link ProviderTransientError.outage}), and
 *   so does one on the job's last attempt.
 * - `not-configured`: no API key; the step is skipped with this reason.
 */
export type ProviderFailureKind = 'permanent' | 'transient' | 'rate-limited' | 'breaker-open' | 'not-configured';

export abstract class ProviderError extends Error {
  abstract readonly kind: ProviderFailureKind;
  /** HTTP status of the upstream answer, when there was one. */
  readonly status: number | undefined;

  constructor(
    readonly provider: ProviderName,
    message: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
  }
}

export class ProviderPermanentError extends ProviderError {
  override name = 'ProviderPermanentError';
  readonly kind = 'permanent';
}

/** The model declined to answer this input (a refusal): asking again costs money for the same answer. */
export class ProviderDeclinedError extends ProviderPermanentError {
  override name = 'ProviderDeclinedError';
}

/** The provider answered 2xx with something that breaks its contract (failed zod validation). */
export class ProviderInvalidResponseError extends ProviderPermanentError {
  override name = 'ProviderInvalidResponseError';
}

/** What a provider's breaker makes of a failure: is the provider judged down, when to try again, how long to wait in all. */
export interface ProviderOutage {
  /** True when the breaker judges the provider down (open, half-open, or closed less than a window ago). */
  judged: boolean;
  /** Milliseconds until the provider is worth another call: what is left of the open time, or the reset timeout. */
  retryAfterMs: number;
  /** Longest a job waits for this provider in all (PROVIDER_OUTAGE_MAX_SECONDS). */
  outageMaxMs: number;
}

export class ProviderTransientError extends ProviderError {
  override name = 'ProviderTransientError';
  readonly kind = 'transient';
  /**
   * What the provider's breaker makes of this failure, set by the guard. When it belongs to an
   * outage the breaker has judged (`judged`), the job waits for the provider instead of spending
   * an attempt on a call that only met the outage; otherwise its attempts retry it first, and
   * once they are used up it waits the same way.
   */
  outage: ProviderOutage | undefined;
}

/** Where a rate limit came from: the provider's 429, a pause another call set, or our own limiter. */
export type RateLimitSource = 'upstream' | 'paused' | 'limiter';

export class ProviderRateLimitedError extends ProviderError {
  override name = 'ProviderRateLimitedError';
  readonly kind = 'rate-limited';
  /**
   * Longest a job waits for this provider in all (PROVIDER_OUTAGE_MAX_SECONDS), set by the guard:
   * a limit the provider keeps setting (a 429, or the pause one left) is waited for no longer.
   */
  outageMaxMs: number | undefined;

  constructor(
    provider: ProviderName,
    /** Milliseconds to wait before calling this provider again. */
    readonly retryAfterMs: number,
    readonly source: RateLimitSource,
    /** `detail`: what the provider said, when its words tell more than a status (a used-up quota). */
    options: { status?: number; cause?: unknown; detail?: string } = {},
  ) {
    super(provider, `${provider} is rate-limited (${source})${options.detail ? `: ${options.detail}` : ''}; retry in ${retryAfterMs} ms`, options);
  }
}

export class ProviderBreakerOpenError extends ProviderError {
  override name = 'ProviderBreakerOpenError';
  readonly kind = 'breaker-open';

  constructor(
    provider: ProviderName,
    /** Milliseconds until the breaker lets a trial call through (at most its reset timeout). */
    readonly retryAfterMs: number,
    /** Longest a job waits for this provider in all (PROVIDER_OUTAGE_MAX_SECONDS). */
    readonly outageMaxMs: number,
  ) {
    super(provider, `${provider} circuit breaker is open after repeated failures; calls are short-circuited for up to ${retryAfterMs} ms`);
  }
}

export class ProviderNotConfiguredError extends ProviderError {
  override name = 'ProviderNotConfiguredError';
  readonly kind = 'not-configured';

  constructor(provider: ProviderName) {
    super(provider, `${provider} is not configured: set ${API_KEY_VARIABLES[provider]} to enable this step`);
  }
}

export function isProviderError(thrown: unknown): thrown is ProviderError {
  return thrown instanceof ProviderError;
}

/**
 * Milliseconds a `Retry-After` header asks for (delta-seconds or an HTTP date), or undefined
 * when the header is missing or unreadable.
 */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
