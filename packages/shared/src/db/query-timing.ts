import { Histogram, type Registry } from 'prom-client';
import type { Kysely } from 'kysely';
import { engineOf } from './portable-sql.js';

/**
 * Time of every repository call, by name (`videos.setStatus`, `analysis.saveFrameMetrics`): a
 * call is one named query, whether it sends one statement or a transaction of several.
 */
type QueryHistogram = Histogram<'query' | 'outcome' | 'engine'>;

const timings = new WeakMap<Kysely<any>, { histogram: QueryHistogram; engine: string }>();

const QUERY_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Records the named queries of repositories built on `db` in `registry` (`clipline_db_query_duration_seconds`). */
export function observeQueries(db: Kysely<any>, registry: Registry): void {
  const name = 'clipline_db_query_duration_seconds';
  const histogram =
    (registry.getSingleMetric(name) as QueryHistogram | undefined) ??
    new Histogram({
      name,
      help: 'Duration of named database queries (one repository call each), by outcome',
      labelNames: ['query', 'outcome', 'engine'],
      buckets: QUERY_SECONDS_BUCKETS,
      registers: [registry],
    });
  timings.set(db, { histogram, engine: engineOf(db) });
}

type AnyMethod = (this: { db?: Kysely<any> }, ...args: unknown[]) => unknown;

/**
 * Wraps every method of a repository class so that each call that returns a promise is timed
 * under `<area>.<method>` on the histogram of the repository's `db` (when {@link observeQueries}
 * was called for it). Repositories call it once, beside their class; `except` names helpers
 * that are not queries (listeners, hooks).
 */
export function timeQueries(repository: { prototype: object }, area: string, except: readonly string[] = []): void {
  const prototype = repository.prototype as Record<string, unknown>;
  for (const method of Object.getOwnPropertyNames(prototype)) {
    const descriptor = Object.getOwnPropertyDescriptor(prototype, method);
    if (method === 'constructor' || except.includes(method) || typeof descriptor?.value !== 'function') continue;
    const original = descriptor.value as AnyMethod;
    const query = `${area}.${method}`;
    const timed: AnyMethod = function (this, ...args) {
      const timing = this.db ? timings.get(this.db) : undefined;
      if (!timing) return original.apply(this, args);
      const stop = timing.histogram.startTimer({ query, engine: timing.engine });
      let result: unknown;
      try {
        result = original.apply(this, args);
      } catch (error) {
        stop({ outcome: 'error' });
        throw error;
      }
      if (!(result instanceof Promise)) return result;
      return result.then(
        (value) => {
          stop({ outcome: 'ok' });
          return value;
        },
        (error: unknown) => {
          stop({ outcome: 'error' });
          throw error;
        },
      );
    };
    Object.defineProperty(prototype, method, { ...descriptor, value: timed });
  }
}
