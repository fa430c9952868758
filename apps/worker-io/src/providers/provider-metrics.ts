import { Counter, Gauge, Histogram, type Registry } from '@clipline/shared';

/** Metrics of the provider layer, registered once per registry (a second call reuses them). */
export interface ProviderMetrics {
  /** 0 closed, 1 half-open, 2 open; labelled by provider. */
  breakerState: Gauge<'provider'>;
  /** Calls by provider and outcome: ok, permanent, transient, rate-limited, breaker-open, not-configured. */
  calls: Counter<'provider' | 'outcome'>;
  /** Seconds of calls that reached the provider. */
  callDuration: Histogram<'provider'>;
  /**
   * Calls that met a provider outage, by cause: `breaker-open` (short-circuited) or
   * `failed-during-outage` (failed while the breaker judged one). Each sends its job back to wait
   * for the provider without spending an attempt, until PROVIDER_OUTAGE_MAX_SECONDS.
   */
  outageDeferrals: Counter<'provider' | 'cause'>;
  /** Response-cache lookups by cache and outcome: hit, miss, revalidated. */
  cacheLookups: Counter<'cache' | 'outcome'>;
}

function once<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

export function providerMetrics(registry: Registry): ProviderMetrics {
  return {
    breakerState: once(
      registry,
      'clipline_provider_breaker_state',
      () =>
        new Gauge({
          name: 'clipline_provider_breaker_state',
          help: 'Circuit breaker state per provider: 0 closed, 1 half-open, 2 open',
          labelNames: ['provider'],
          registers: [registry],
        }),
    ),
    calls: once(
      registry,
      'clipline_provider_calls_total',
      () =>
        new Counter({ name: 'clipline_provider_calls_total', help: 'Provider calls by outcome', labelNames: ['provider', 'outcome'], registers: [registry] }),
    ),
    callDuration: once(
      registry,
      'clipline_provider_call_duration_seconds',
      () =>
        new Histogram({
          name: 'clipline_provider_call_duration_seconds',
          help: 'Duration of provider calls that reached the provider',
          labelNames: ['provider'],
          buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
          registers: [registry],
        }),
    ),
    outageDeferrals: once(
      registry,
      'clipline_provider_outage_deferrals_total',
      () =>
        new Counter({
          name: 'clipline_provider_outage_deferrals_total',
          help: 'Provider calls that met an outage (breaker open, failed while it judged one, or a 429 from a provider that let no call through for the outage horizon); each defers its job without spending an attempt',
          labelNames: ['provider', 'cause'],
          registers: [registry],
        }),
    ),
    cacheLookups: once(
      registry,
      'clipline_response_cache_lookups_total',
      () =>
        new Counter({
          name: 'clipline_response_cache_lookups_total',
          help: 'Response cache lookups by outcome (hit, miss, revalidated)',
          labelNames: ['cache', 'outcome'],
          registers: [registry],
        }),
    ),
  };
}
