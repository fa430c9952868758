import { loadConfigOrExit } from '../config.js';
import { createDatabase } from './connection.js';
import { describeDatabaseTarget, resolveDatabaseTarget } from './database-target.js';
import { createDatabaseIfMissing, migrateToLatest } from './migrate.js';

const config = loadConfigOrExit();
const settings = { url: config.databaseUrl, schema: config.databaseSchema, poolSize: 2 };
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
