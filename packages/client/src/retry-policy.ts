/** How the client retries a call that may safely be repeated. */
export interface RetryPolicy {
  /** Attempts after the first. @defaultValue 3 */
  retries: number;
  /** First backoff delay, doubled at each retry (with jitter). @defaultValue 250 */
  baseDelayMs: number;
  /** Longest backoff delay. @defaultValue 10000 */
  maxDelayMs: number;
  /** A `Retry-After` longer than this is not waited out: the error is thrown at once. @defaultValue 60000 */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({ retries: 3, baseDelayMs: 250, maxDelayMs: 10_000, maxRetryAfterMs: 60_000 });

/** Statuses that say "not now" rather than "no": rate limited, or the server or its queue is down. */
const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/** Fills defaults in; `false` turns retries off. Names the field when a value is unusable. */
export function resolveRetryPolicy(options: Partial<RetryPolicy> | false | undefined): RetryPolicy {
  if (options === false) return { ...DEFAULT_RETRY_POLICY, retries: 0 };
  const policy = { ...DEFAULT_RETRY_POLICY, ...options };
  for (const field of ['retries', 'baseDelayMs', 'maxDelayMs', 'maxRetryAfterMs'] as const) {
    const value = policy[field];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`retry.${field} must be a non-negative number, got ${String(value)}`);
    }
  }
  if (!Number.isInteger(policy.retries)) throw new TypeError(`retry.retries must be a whole number, got ${policy.retries}`);
  return policy;
}

/** `Retry-After` as delay-seconds or an HTTP date, in milliseconds from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null | undefined, now = Date.now()): number | undefined {
  if (header === null || header === undefined) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Every HTTP-date form starts with a day name; Date.parse alone would take "-3" as a year.
  if (!/^[A-Za-z]{3}/.test(text)) return undefined;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Milliseconds to wait before retry number `retry` (1 = the first retry), or undefined when the
 * policy says to give up. The server's `Retry-After` wins over the backoff; a little jitter is
 * added to both so that many clients told the same thing do not return in the same instant.
 */
export function retryDelay(policy: RetryPolicy, retry: number, retryAfterMs?: number, random: () => number = Math.random): number | undefined {
  if (retry > policy.retries) return undefined;
  if (retryAfterMs !== undefined) {
    if (retryAfterMs > policy.maxRetryAfterMs) return undefined;
    return retryAfterMs + random() * Math.min(1000, retryAfterMs * 0.1);
  }
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}
