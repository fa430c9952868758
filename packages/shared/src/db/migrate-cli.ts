import { loadConfigOrExit } from '../config.js';
import { createDatabase } from './connection.js';
import { migrateToLatest } from './migrate.js';

const config = loadConfigOrExit();
const db = createDatabase({ url: config.databaseUrl, schema: config.databaseSchema, poolSize: 2 });
try {
  const result = await migrateToLatest(db, config.databaseSchema);
  const applied = result.results?.filter((item) => item.status === 'Success').map((item) => item.migrationName) ?? [];
  process.stdout.write(applied.length ? `migrations applied: ${applied.join(', ')}\n` : 'database schema is up to date\n');
} catch (error) {
  process.stderr.write(`clipline: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
