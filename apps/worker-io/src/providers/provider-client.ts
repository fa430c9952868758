import type { ProviderGuard } from './provider-guard.js';
import type { ProviderHttp } from './provider-http.js';

/** What every provider client is made of: its settings, its guard (key, breaker, limits) and its HTTP transport. */
export abstract class ProviderClient<S> {
  constructor(
    protected readonly settings: S,
    protected readonly guard: ProviderGuard,
    protected readonly http: ProviderHttp,
  ) {}

  /** False when the provider has no API key: calls throw ProviderNotConfiguredError, and the step should be skipped. */
  get configured(): boolean {
    return this.guard.configured;
  }
}
