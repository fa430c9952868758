import type { Config } from './config.js';
import { createDatabase, type Db } from './db/connection.js';
import { checkDatabaseSchema, DatabaseNotMigratedError } from './db/migration-status.js';
import { observeQueries } from './db/query-timing.js';
import { createLogger, type Logger } from './logger.js';
import { createMetricsRegistry, type Registry } from './metrics.js';
import { ShutdownRegistry } from './shutdown.js';

export {
  checkDatabaseSchema,
  DatabaseNotMigratedError,
  DatabaseUnreachableError,
  readMigrationStatus,
  type MigrationStatus,
} from './db/migration-status.js';

/** Exit code of a process refused at boot by its configuration or database schema (EX_CONFIG). */
export const EXIT_CONFIG = 78;
/** Exit code of a process whose database did not answer at boot (EX_UNAVAILABLE). */
export const EXIT_UNAVAILABLE = 69;

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
  const logger = createLogger({
    name,
    level: config.logLevel,
    flushMs: config.logFlushMs,
    ...(options.logDestination ? { destination: options.logDestination } : {}),
  });
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

/**
 * Refuses to start a process whose database lacks migrations this code needs: logs why as
 * fatal, naming `npm run migrate`, and exits with {@link EXIT_CONFIG}; a database that does not
 * answer exits with {@link EXIT_UNAVAILABLE}, since its schema cannot be known. Call it before
 * anything is started. One query on a connection of its own (see `checkDatabaseSchema`).
 */
export async function requireMigratedDatabase(service: ServiceContext): Promise<void> {
  const { config, logger, name } = service;
  const refuse = (code: number, error: unknown, fields: object): never => {
    const reason = `${name} refuses to start: ${(error as Error).message ?? String(error)}`;
    logger.fatal(fields, reason);
    // LOG_LEVEL=silent must not turn the refusal into a bare exit code.
    if (!logger.isLevelEnabled('fatal')) process.stderr.write(`clipline: ${reason}\n`);
    process.exit(code);
  };
  try {
    const status = await checkDatabaseSchema({ url: config.databaseUrl, schema: config.databaseSchema });
    if (status.ahead.length) {
      logger.warn(
        { database: status.where, unknownMigrations: status.ahead },
        `the database ${status.where} has migrations this code does not know (${status.ahead.join(', ')}): a newer version migrated it; starting, since migrations only add`,
      );
    }
  } catch (error) {
    if (error instanceof DatabaseNotMigratedError) refuse(EXIT_CONFIG, error, { database: error.status.where, pendingMigrations: error.status.pending });
    refuse(EXIT_UNAVAILABLE, error, { err: error });
  }
}
