import type { Config } from './config.js';
import { createDatabase, type Db } from './db/connection.js';
import { observeQueries } from './db/query-timing.js';
import { createLogger, type Logger } from './logger.js';
import { createMetricsRegistry, type Registry } from './metrics.js';
import { ShutdownRegistry } from './shutdown.js';

/** What every clipline process starts with: its logger, metrics and shutdown registry. */
export interface ServiceContext {
  readonly name: string;
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly shutdown: ShutdownRegistry;
}

export interface ServiceOptions {
  /** Where log lines go; stdout when omitted. */
  logDestination?: NodeJS.WritableStream;
}

export function createService(name: string, config: Config, options: ServiceOptions = {}): ServiceContext {
  const logger = createLogger({ name, level: config.logLevel, ...(options.logDestination ? { destination: options.logDestination } : {}) });
  return {
    name,
    config,
    logger,
    metrics: createMetricsRegistry(name),
    shutdown: new ShutdownRegistry({ timeoutMs: config.shutdownTimeoutMs, logger }),
  };
}

/** Opens the configured database; with a registry, repositories' queries are timed in it. */
export function openDatabase(config: Config, poolSize = config.databasePoolSize, metrics?: Registry): Db {
  const db = createDatabase({ url: config.databaseUrl, schema: config.databaseSchema, poolSize });
  if (metrics) observeQueries(db, metrics);
  return db;
}
