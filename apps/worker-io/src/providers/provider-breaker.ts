/** The one module that uses opossum: a circuit breaker per provider, in this process. */
import CircuitBreaker from 'opossum';
import type { Logger } from '@clipline/shared';
import type { BreakerSettings } from './provider-config.js';
import { ProviderBreakerOpenError, ProviderError } from './provider-errors.js';
import type { ProviderName } from './provider-names.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** Numeric values of the breaker-state gauge. */
export const BREAKER_STATE_VALUES: Readonly<Record<BreakerState, number>> = { closed: 0, 'half-open': 1, open: 2 };

type Action = () => Promise<unknown>;

/**
 * Only failures that say something about the provider's health count: transient ones (5xx,
 * timeouts, refused connections). A 4xx means the provider is up and judged our request; a 429
 * is handled by the shared pause; a cancelled job or a local mistake says nothing about the
 * provider. None of those should open the breaker.
 */
function isHealthNeutral(error: unknown): boolean {
  return !(error instanceof ProviderError && error.kind === 'transient');
}

export class ProviderBreaker {
  private readonly breaker: CircuitBreaker<[Action], unknown>;
  private openedAt = 0;

  constructor(
    readonly provider: ProviderName,
    private readonly settings: BreakerSettings,
    onStateChange: (state: BreakerState) => void,
    logger?: Logger,
  ) {
    this.breaker = new CircuitBreaker<[Action], unknown>((action: Action) => action(), {
      name: provider,
      // Timeouts belong to the HTTP layer, which can abort the request; an opossum timeout would leave it running.
      timeout: false,
      volumeThreshold: settings.volumeThreshold,
      errorThresholdPercentage: settings.errorThresholdPercentage,
      resetTimeout: settings.resetTimeoutMs,
      rollingCountTimeout: settings.rollingWindowMs,
      rollingCountBuckets: 10,
      errorFilter: isHealthNeutral,
    });
    this.breaker.on('open', () => {
      this.openedAt = Date.now();
      logger?.warn({ provider, resetTimeoutMs: settings.resetTimeoutMs }, 'provider breaker opened');
      onStateChange('open');
    });
    this.breaker.on('halfOpen', () => {
      logger?.info({ provider }, 'provider breaker half-open: next call is a trial');
      onStateChange('half-open');
    });
    this.breaker.on('close', () => {
      logger?.info({ provider }, 'provider breaker closed');
      onStateChange('closed');
    });
  }

  get state(): BreakerState {
    if (this.breaker.opened) return 'open';
    if (this.breaker.halfOpen) return 'half-open';
    return 'closed';
  }

  private openError(): ProviderBreakerOpenError {
    const remaining = this.openedAt ? this.settings.resetTimeoutMs - (Date.now() - this.openedAt) : this.settings.resetTimeoutMs;
    return new ProviderBreakerOpenError(this.provider, Math.max(1, remaining));
  }

  /** Throws at once, without any I/O, while the breaker is open. */
  assertClosed(): void {
    if (this.breaker.opened) throw this.openError();
  }

  /** Runs `action` through the breaker; a short-circuited call throws {@link ProviderBreakerOpenError}. */
  async fire<T>(action: () => Promise<T>): Promise<T> {
    try {
      return (await this.breaker.fire(action)) as T;
    } catch (error) {
      if ((error as { code?: string }).code === 'EOPENBREAKER') throw this.openError();
      throw error;
    }
  }

  /** Stops the breaker's statistics timers. */
  shutdown(): void {
    this.breaker.shutdown();
  }
}
