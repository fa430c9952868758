/**
 * The failed-authentication throttle on a real Redis: attempts counted before they are checked,
 * given back when they succeed, refused past the limit, and no counter left behind without an
 * expiry.
 */
import { randomUUID } from 'node:crypto';
import { AuthFailureThrottle, createRedis, type RedisClient } from '@clipline/shared';
import { connectRedis } from '../../../tests/helpers/services.js';

let redis: RedisClient;
const prefix = `clipline-test-${randomUUID()}:auth-fail:api`;
const NOW = Date.UTC(2026, 11, 6, 12, 0, 10);
const keyOf = (address: string) => `${prefix}:${address}:${Math.floor(NOW / 60_000)}`;

beforeAll(() => {
  redis = connectRedis();
});

afterAll(async () => {
  for (const address of ['a', 'b', 'c', 'd']) await redis.del(keyOf(address));
  redis.disconnect();
});

it('counts attempts, gives back the ones that succeed, and refuses past the limit without counting', async () => {
  const throttle = new AuthFailureThrottle(redis, prefix, 3);
  const first = await throttle.reserve('a', NOW);
  expect(first.retryAfter).toBe(0);
  await first.release();
  expect(await redis.get(keyOf('a'))).toBe('0');
  for (let i = 0; i < 3; i++) expect((await throttle.reserve('a', NOW)).retryAfter).toBe(0);
  const refused = await throttle.reserve('a', NOW);
  expect(refused.retryAfter).toBe(50);
  expect(await redis.get(keyOf('a'))).toBe('3');
  const ttl = await redis.ttl(keyOf('a'));
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(61);
});

it('keeps each address apart', async () => {
  const throttle = new AuthFailureThrottle(redis, prefix, 1);
  expect((await throttle.reserve('b', NOW)).retryAfter).toBe(0);
  expect((await throttle.reserve('b', NOW)).retryAfter).toBeGreaterThan(0);
  expect((await throttle.reserve('c', NOW)).retryAfter).toBe(0);
});

it('leaves no counter behind when an attempt is given back after its count expired', async () => {
  const throttle = new AuthFailureThrottle(redis, prefix, 3);
  const attempt = await throttle.reserve('d', NOW + 1);
  await redis.del(keyOf('d'));
  await attempt.release();
  expect(await redis.exists(keyOf('d'))).toBe(0);
});

it('counts in this process, with the same limit, while Redis cannot answer', async () => {
  const away = createRedis('redis://127.0.0.1:1', 'producer');
  try {
    const throttle = new AuthFailureThrottle(away, prefix, 3);
    const attempts = [];
    for (let index = 0; index < 3; index += 1) attempts.push(await throttle.reserve('e', NOW));
    expect(attempts.map((attempt) => attempt.retryAfter)).toEqual([0, 0, 0]);
    expect((await throttle.reserve('e', NOW)).retryAfter).toBe(50);
    // Another address has its own count; a success gives its attempt back.
    expect((await throttle.reserve('f', NOW)).retryAfter).toBe(0);
    await attempts[0]!.release();
    await attempts[0]!.release();
    expect((await throttle.reserve('e', NOW)).retryAfter).toBe(0);
    expect((await throttle.reserve('e', NOW)).retryAfter).toBe(50);
    // The next minute starts afresh.
    expect((await throttle.reserve('e', NOW + 60_000)).retryAfter).toBe(0);
  } finally {
    away.disconnect();
  }
});
