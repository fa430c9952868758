import { setTimeout as sleep } from 'node:timers/promises';
import type { RateLimit } from './provider-config.js';
import type { ProviderBreaker } from './provider-breaker.js';
import { isProviderError, ProviderBreakerOpenError, ProviderNotConfiguredError, ProviderRateLimitedError, ProviderTransientError } from './provider-errors.js';
import type { ProviderMetrics } from './provider-metrics.js';
import type { ProviderName } from './provider-names.js';
import type { RateGate } from './rate-gate.js';

export interface ProviderGuardOptions {
  provider: ProviderName;
  /** False when the provider has no API key: every call throws {@link ProviderNotConfiguredError}. */
  configured: boolean;
  gate: RateGate;
  rateLimit: RateLimit | undefined;
  /** Longest wait for a limiter token before the call gives up as rate-limited. */
  limiterMaxWaitMs: number;
  breaker: ProviderBreaker;
  metrics: ProviderMetrics;
}

/**
 * What stands between a client and its provider, in this order: the key check, the breaker
 * (no I/O while it is open), the shared pause and token bucket in Redis, then the call through
 * the breaker. A 429 from the provider pauses it for every process. A transient failure while
 * the breaker judges an outage is marked with it, so the job waits instead of spending an attempt.
 */
export class ProviderGuard {
  /** When a call through this guard last succeeded (epoch ms; 0: never). */
  private lastAnsweredAt = 0;

  constructor(private readonly options: ProviderGuardOptions) {}

  get provider(): ProviderName {
    return this.options.provider;
  }

  get configured(): boolean {
    return this.options.configured;
  }

  async run<T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const { provider, breaker, metrics } = this.options;
    try {
      if (!this.options.configured) throw new ProviderNotConfiguredError(provider);
      breaker.assertClosed();
      await this.admit(signal);
      const timer = metrics.callDuration.startTimer({ provider });
      const result = await breaker.fire(call).finally(timer);
      this.lastAnsweredAt = Date.now();
      metrics.calls.inc({ provider, outcome: 'ok' });
      return result;
    } catch (error) {
      if (error instanceof ProviderRateLimitedError) {
        if (error.source === 'upstream') await this.options.gate.pause(provider, error.retryAfterMs);
        // A provider that answered none of this process's calls for the outage horizon is a wall,
        // not a busy provider letting calls through between its 429s: the job's wait is bounded.
        // A horizon of 0 (never wait for an outage) tells no wall from a busy provider: waited for.
        const { outageMaxMs } = breaker.outage();
        if (outageMaxMs > 0 && Date.now() - this.lastAnsweredAt >= outageMaxMs) {
          error.outageMaxMs = outageMaxMs;
          metrics.outageDeferrals.inc({ provider, cause: 'rate-limit-wall' });
        }
      }
      metrics.calls.inc({ provider, outcome: isProviderError(error) ? error.kind : 'error' });
      this.noteOutage(error);
      throw error;
    }
  }

  /** Tells a transient failure what the breaker makes of it, and counts the calls that met an outage (each defers its job). */
  private noteOutage(error: unknown): void {
    const { provider, breaker, metrics } = this.options;
    if (error instanceof ProviderTransientError) {
      error.outage = breaker.outage();
      if (error.outage.judged) metrics.outageDeferrals.inc({ provider, cause: 'failed-during-outage' });
    } else if (error instanceof ProviderBreakerOpenError) {
      metrics.outageDeferrals.inc({ provider, cause: 'breaker-open' });
    }
  }

  /** Waits (briefly) for a limiter token; a pause or a long wait throws {@link ProviderRateLimitedError}. */
  private async admit(signal: AbortSignal | undefined): Promise<void> {
    const { provider, gate, rateLimit, limiterMaxWaitMs } = this.options;
    const deadline = Date.now() + limiterMaxWaitMs;
    for (;;) {
      const decision = await gate.acquire(provider, rateLimit);
      if (decision.allowed) return;
      if (decision.reason === 'paused') throw new ProviderRateLimitedError(provider, decision.waitMs, 'paused');
      if (Date.now() + decision.waitMs > deadline) throw new ProviderRateLimitedError(provider, decision.waitMs, 'limiter');
      try {
        await sleep(decision.waitMs, undefined, signal ? { signal } : {});
      } catch (error) {
        throw signal?.aborted && signal.reason instanceof Error ? signal.reason : error;
      }
    }
  }
}
