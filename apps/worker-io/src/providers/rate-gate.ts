import { GroupedCalls, type RedisClient } from '@clipline/shared';
import type { RateLimit } from './provider-config.js';
import type { ProviderName } from './provider-names.js';

/**
 * One round trip decides whether calls may go out: first the provider's pause (set after a
 * 429), then tokens from its bucket, one a call. Time comes from Redis itself so that processes
 * on machines with skewed clocks share one notion of "now".
 *
 * KEYS[1] pause key, KEYS[2] bucket key; ARGV[1] tokens per second (0 = no bucket), ARGV[2] burst,
 * ARGV[3] calls asking (1 when absent). Returns {code, ms, granted}: {0, 0, n} when all may go,
 * {1, ms, 0} when paused, {2, ms, granted} when the bucket ran out after `granted` of them, `ms`
 * being the wait for the next token.
 */
const ACQUIRE_LUA = `
local pausedFor = redis.call('PTTL', KEYS[1])
if pausedFor > 0 then return {1, pausedFor, 0} end
local wanted = tonumber(ARGV[3]) or 1
local rate = tonumber(ARGV[1])
if rate <= 0 then return {0, 0, wanted} end
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[2], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
local ttl = math.ceil(burst / rate * 1000) + 1000
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[2], ttl)
if granted >= wanted then return {0, 0, granted} end
return {2, math.ceil((1 - tokens) * 1000 / rate), granted}
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
  cliplineProviderAcquire(pauseKey: string, bucketKey: string, perSecond: number, burst: number, calls: number): Promise<[number, number, number]>;
  cliplineProviderPause(pauseKey: string, ms: number): Promise<number>;
};

/** What the calls asking one provider's gate with one limit share. */
interface AcquireGroup {
  provider: ProviderName;
  limit: RateLimit | undefined;
}

/** A call waiting for its decision. */
interface Caller {
  resolve(decision: GateDecision): void;
  reject(error: unknown): void;
}

/**
 * The per-provider gate every worker process shares through Redis: a token bucket for the
 * steady rate, and a "paused until" key that a 429 with Retry-After sets for everyone.
 *
 * Calls that ask in one turn of the event loop, or while the provider's previous command is in
 * flight, are answered by one command taking a token for each ({@link GroupedCalls}): the first
 * ones get what the bucket holds, the rest the wait for the next token, as one command each would
 * have answered them. An I/O worker's calls come in waves (50 jobs whose answers arrive together),
 * so a wave costs Redis a few commands instead of one a call (docs/PERFORMANCE.md).
 */
export class RateGate {
  private readonly commands: GateCommands;
  private readonly groups = new GroupedCalls<Caller, AcquireGroup>((group, callers) => this.decide(group, callers));

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
  acquire(provider: ProviderName, limit: RateLimit | undefined): Promise<GateDecision> {
    return new Promise<GateDecision>((resolve, reject) => {
      this.groups.add(`${provider}:${limit?.perSecond ?? 0}:${limit?.burst ?? 0}`, () => ({ provider, limit }), { resolve, reject });
    });
  }

  private async decide({ provider, limit }: AcquireGroup, callers: Caller[]): Promise<void> {
    let answer: [number, number, number];
    try {
      answer = await this.commands.cliplineProviderAcquire(
        this.pauseKey(provider),
        this.bucketKey(provider),
        limit?.perSecond ?? 0,
        limit?.burst ?? 0,
        callers.length,
      );
    } catch (error) {
      for (const caller of callers) caller.reject(error);
      return;
    }
    const [code, waitMs, granted] = answer.map(Number) as [number, number, number];
    const refused: GateDecision = { allowed: false, reason: code === 1 ? 'paused' : 'limited', waitMs: Math.max(1, waitMs) };
    callers.forEach((caller, index) => {
      caller.resolve(code === 0 || index < granted ? { allowed: true } : refused);
    });
  }

  /** Pauses every call to `provider`, in every process, for `ms` (a longer pause already set wins). Returns the pause in force. */
  async pause(provider: ProviderName, ms: number): Promise<number> {
    return this.commands.cliplineProviderPause(this.pauseKey(provider), Math.max(1, Math.ceil(ms)));
  }
}
