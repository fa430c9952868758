import type { RedisClient } from '@clipline/shared';
import type { RateLimit } from './provider-config.js';
import type { ProviderName } from './provider-names.js';

/**
 * One round trip decides whether a call may go out: first the provider's pause (set after a
 * 429), then a token from its bucket. Time comes from Redis itself so that processes on
 * machines with skewed clocks share one notion of "now".
 *
 * KEYS[1] pause key, KEYS[2] bucket key; ARGV[1] tokens per second (0 = no bucket), ARGV[2] burst.
 * Returns {0, 0} when the call may go, {1, ms} when paused, {2, ms} when the bucket is empty.
 */
const ACQUIRE_LUA = `
local pausedFor = redis.call('PTTL', KEYS[1])
if pausedFor > 0 then return {1, pausedFor} end
local rate = tonumber(ARGV[1])
if rate <= 0 then return {0, 0} end
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[2], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local ttl = math.ceil(burst / rate * 1000) + 1000
if tokens >= 1 then
  redis.call('HSET', KEYS[2], 'tokens', tostring(tokens - 1), 'at', now)
  redis.call('PEXPIRE', KEYS[2], ttl)
  return {0, 0}
end
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[2], ttl)
return {2, math.ceil((1 - tokens) * 1000 / rate)}
`;

/** Sets the pause unless a longer one is already running. KEYS[1] pause key; ARGV[1] milliseconds. Returns the pause in force. */
const PAUSE_LUA = `
local wanted = tonumber(ARGV[1])
local current = redis.call('PTTL', KEYS[1])
if current >= wanted then return current end
redis.call('SET', KEYS[1], '1', 'PX', wanted)
return wanted
`;

export type GateDecision = { allowed: true } | { allowed: false; reason: 'paused' | 'limited'; waitMs: number };

type GateCommands = {
  cliplineProviderAcquire(pauseKey: string, bucketKey: string, perSecond: number, burst: number): Promise<[number, number]>;
  cliplineProviderPause(pauseKey: string, ms: number): Promise<number>;
};

/**
 * The per-provider gate every worker process shares through Redis: a token bucket for the
 * steady rate, and a "paused until" key that a 429 with Retry-After sets for everyone.
 */
export class RateGate {
  private readonly commands: GateCommands;

  /** @param keyPrefix prefix of the gate's keys, e.g. the queue prefix (`clipline`). */
  constructor(
    redis: RedisClient,
    private readonly keyPrefix: string,
  ) {
    // defineCommand keeps the scripts cached by SHA, falling back to EVAL after a Redis restart.
    redis.defineCommand('cliplineProviderAcquire', { numberOfKeys: 2, lua: ACQUIRE_LUA });
    redis.defineCommand('cliplineProviderPause', { numberOfKeys: 1, lua: PAUSE_LUA });
    this.commands = redis as unknown as GateCommands;
  }

  pauseKey(provider: ProviderName): string {
    return `${this.keyPrefix}:providers:${provider}:paused`;
  }

  private bucketKey(provider: ProviderName): string {
    return `${this.keyPrefix}:providers:${provider}:bucket`;
  }

  /** Takes one token for a call to `provider`, unless it is paused or its bucket is empty. */
  async acquire(provider: ProviderName, limit: RateLimit | undefined): Promise<GateDecision> {
    const [code, waitMs] = await this.commands.cliplineProviderAcquire(
      this.pauseKey(provider),
      this.bucketKey(provider),
      limit?.perSecond ?? 0,
      limit?.burst ?? 0,
    );
    if (code === 0) return { allowed: true };
    return { allowed: false, reason: code === 1 ? 'paused' : 'limited', waitMs: Math.max(1, waitMs) };
  }

  /** Pauses every call to `provider`, in every process, for `ms` (a longer pause already set wins). Returns the pause in force. */
  async pause(provider: ProviderName, ms: number): Promise<number> {
    return this.commands.cliplineProviderPause(this.pauseKey(provider), Math.max(1, Math.ceil(ms)));
  }
}
