import { DEFAULT_RETRY_POLICY, isRetryableStatus, parseRetryAfter, resolveRetryPolicy, retryDelay } from '../src/retry-policy.js';

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('reads delay-seconds and HTTP dates, in milliseconds from now', () => {
    expect(parseRetryAfter('5', now)).toBe(5000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    // A date in the past means "now", never a negative wait.
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now)).toBe(0);
  });

  it('gives undefined for an absent or unreadable header', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-3', now)).toBeUndefined();
  });
});

describe('retryDelay', () => {
  const policy = { retries: 4, baseDelayMs: 100, maxDelayMs: 500, maxRetryAfterMs: 10_000 };

  it('backs off exponentially with jitter between half and all of the step, capped', () => {
    expect([1, 2, 3, 4].map((retry) => retryDelay(policy, retry, undefined, () => 0))).toEqual([50, 100, 200, 250]);
    expect([1, 2, 3, 4].map((retry) => retryDelay(policy, retry, undefined, () => 1))).toEqual([100, 200, 400, 500]);
  });

  it('waits out Retry-After (plus at most 10% / 1 s of jitter) instead of the backoff', () => {
    expect(retryDelay(policy, 1, 3000, () => 0)).toBe(3000);
    expect(retryDelay(policy, 1, 3000, () => 1)).toBe(3300);
    expect(retryDelay(policy, 1, 10_000, () => 1)).toBe(11_000);
  });

  it('gives up after the last retry and when Retry-After is longer than it will wait', () => {
    expect(retryDelay(policy, 5, undefined, () => 0)).toBeUndefined();
    expect(retryDelay(policy, 1, 10_001, () => 0)).toBeUndefined();
  });
});

describe('resolveRetryPolicy', () => {
  it('fills defaults, turns retries off with false and names a bad field', () => {
    expect(resolveRetryPolicy(undefined)).toEqual(DEFAULT_RETRY_POLICY);
    expect(resolveRetryPolicy({ retries: 1 })).toEqual({ ...DEFAULT_RETRY_POLICY, retries: 1 });
    expect(resolveRetryPolicy(false).retries).toBe(0);
    expect(() => resolveRetryPolicy({ baseDelayMs: -1 })).toThrow('retry.baseDelayMs must be a non-negative number, got -1');
    expect(() => resolveRetryPolicy({ retries: 1.5 })).toThrow('retry.retries must be a whole number');
  });
});

it('retries the statuses that mean "not now", not those that mean "no"', () => {
  expect([429, 502, 503, 504].every(isRetryableStatus)).toBe(true);
  expect([400, 401, 404, 409, 422, 500].some(isRetryableStatus)).toBe(false);
});
