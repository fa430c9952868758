/** The one module that uses opossum: a circuit breaker per provider, in this process. */
import CircuitBreaker from 'opossum';
import type { Logger } from '@clipline/shared';
import type { BreakerSettings } from './provider-config.js';
import { ProviderBreakerOpenError, ProviderError, type ProviderOutage } from './provider-errors.js';
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

/**
 * While a half-open breaker's trial call is out, or just after it closed, callers are asked to
 * come back after this share of the reset timeout: the trial decides, and the next look is soon.
 */
const SHORT_WAIT_SHARE = 0.25;

export class ProviderBreaker {
  private readonly breaker: CircuitBreaker<[Action], unknown>;
  private openedAt = 0;
  /** When the breaker last closed after being open (0: never). */
  private closedAt = 0;

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
      this.closedAt = Date.now();
      logger?.info({ provider }, 'provider breaker closed');
      onStateChange('closed');
    });
  }

  get state(): BreakerState {
    if (this.breaker.opened) return 'open';
    if (this.breaker.halfOpen) return 'half-open';
    return 'closed';
  }

  /**
   * Milliseconds before this provider is worth another call: what is left of the open time,
   * otherwise (a trial call out, or just closed) a short wait.
   */
  private retryAfterMs(): number {
    const { resetTimeoutMs } = this.settings;
    if (this.breaker.opened && this.openedAt) return Math.max(1, resetTimeoutMs - (Date.now() - this.openedAt));
    return Math.max(1, Math.round(resetTimeoutMs * SHORT_WAIT_SHARE));
  }

  private openError(): ProviderBreakerOpenError {
    return new ProviderBreakerOpenError(this.provider, this.retryAfterMs(), this.settings.outageMaxMs);
  }

  /** True while a half-open breaker's one trial call is out: other calls are refused until it settles. */
  private trialInFlight(): boolean {
    return this.breaker.halfOpen && !this.breaker.pendingClose;
  }

  /**
   * Throws at once, without any I/O, while the breaker is open or its trial call is out. The
   * latter never reaches opossum, whose statistics would count the refused call as fired and
   * thin out the failure rate the breaker judges by.
   */
  assertClosed(): void {
    if (this.breaker.opened || this.trialInFlight()) throw this.openError();
  }

  /**
   * What the breaker makes of a failure that just happened. It judges an outage when it is open
   * or half-open now (this failure opened it, or failed its trial), or closed less than one
   * rolling window ago, so that its statistics still hold the failures that opened it (a
   * provider failing half its calls keeps closing and opening): come back when it lets a trial
   * through. A failure of a provider it holds healthy is not judged (the job's attempts retry
   * it first); should the job run out of them, it comes back after the reset timeout.
   */
  outage(): ProviderOutage {
    const { resetTimeoutMs, rollingWindowMs, outageMaxMs } = this.settings;
    const recentlyClosed = this.closedAt > 0 && Date.now() - this.closedAt < rollingWindowMs;
    const judged = this.state !== 'closed' || recentlyClosed;
    return { judged, retryAfterMs: judged ? this.retryAfterMs() : resetTimeoutMs, outageMaxMs };
  }

  /**
   * Runs `action` through the breaker; a short-circuited call throws {@link ProviderBreakerOpenError}.
   * A trial call that ends without the provider's answer (its job cancelled, its worker closing,
   * a local error) tells nothing of the provider's health: opossum counts any error it is told
   * to ignore as a success, which would close the breaker, so the breaker is opened again and a
   * later call makes the trial.
   */
  async fire<T>(action: () => Promise<T>): Promise<T> {
    const trial = this.breaker.halfOpen;
    try {
      return (await this.breaker.fire(action)) as T;
    } catch (error) {
      if ((error as { code?: string }).code === 'EOPENBREAKER') throw this.openError();
      if (trial && !(error instanceof ProviderError)) this.breaker.open();
      throw error;
    }
  }

  /** Stops the breaker's statistics timers. */
  shutdown(): void {
    this.breaker.shutdown();
  }
}
