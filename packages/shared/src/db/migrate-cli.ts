import { loadConfigOrExit } from '../config.js';
import { createDatabase } from './connection.js';
import { describeDatabaseTarget, resolveDatabaseTarget } from './database-target.js';
import { createDatabaseIfMissing, MIGRATION_STATEMENT_TIMEOUT_MS, migrateToLatest } from './migrate.js';

const config = loadConfigOrExit();
// A migration may rebuild an index or rewrite a column of a large table: far longer than the
// apps' 30 s statement timeout, which would kill it every time (and, on MySQL, where each DDL
// statement commits on its own, leave it half applied).
const settings = { url: config.databaseUrl, schema: config.databaseSchema, poolSize: 2, statementTimeoutMs: MIGRATION_STATEMENT_TIMEOUT_MS };
const where = describeDatabaseTarget(resolveDatabaseTarget(settings.url, settings.schema));
const db = createDatabase(settings);
try {
  // Connections open lazily: `db` has not tried the database before it exists.
  if (await createDatabaseIfMissing(settings)) process.stdout.write(`${where}: database created\n`);
  const result = await migrateToLatest(db, config.databaseSchema);
  const applied = result.results?.filter((item) => item.status === 'Success').map((item) => item.migrationName) ?? [];
  process.stdout.write(applied.length ? `${where}: migrations applied: ${applied.join(', ')}\n` : `${where}: schema is up to date\n`);
} catch (error) {
  process.stderr.write(`clipline: ${where}: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
