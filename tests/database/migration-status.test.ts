/**
 * The boot check on every engine: an empty schema has every migration pending and is refused
 * with a message naming `npm run migrate`; a migrated one passes; one missing a migration is
 * behind and refused, naming it; one with a migration this code does not know is let through.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { checkDatabaseSchema, DatabaseNotMigratedError, dropDatabase, migrationNames, readMigrationStatus } from '@clipline/shared';
import { createTestDatabase, TEST_DATABASE_ENGINES, type TestDatabase } from '../helpers/services.js';

describe.each(TEST_DATABASE_ENGINES)('migration status on $name', ({ url }) => {
  const schema = `t_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const settings = { url, schema };
  let database: TestDatabase | undefined;

  afterAll(async () => {
    if (database) await database.cleanup();
    else await dropDatabase({ ...settings, poolSize: 1 });
  });

  it('refuses an empty schema, every migration pending, naming npm run migrate', async () => {
    const all = await migrationNames();
    expect(all.length).toBeGreaterThanOrEqual(9);
    const error = await checkDatabaseSchema(settings).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(DatabaseNotMigratedError);
    expect((error as DatabaseNotMigratedError).status).toMatchObject({ applied: [], pending: all, ahead: [] });
    expect((error as Error).message).toMatch(
      /^the database .* is not migrated \(it has no clipline tables\): run `npm run migrate` with the same DATABASE_URL and DATABASE_SCHEMA/,
    );
  });

  it('passes once migrated, refuses a schema behind the code and lets one ahead of it through', async () => {
    database = await createTestDatabase(url, schema, 1);
    const all = await migrationNames();
    expect(await checkDatabaseSchema(settings)).toMatchObject({ applied: all, pending: [], ahead: [] });

    const last = all.at(-1)!;
    await sql`delete from kysely_migration where name = ${last}`.execute(database.db);
    const behind = await checkDatabaseSchema(settings).catch((thrown: unknown) => thrown);
    expect(behind).toBeInstanceOf(DatabaseNotMigratedError);
    expect((behind as Error).message).toMatch(new RegExp(`is behind this code \\(1 migration not applied: ${last}\\): run \`npm run migrate\``));

    await sql`insert into kysely_migration (name, timestamp) values (${last}, ${new Date().toISOString()}), ('9999-from-a-newer-version', ${new Date().toISOString()})`.execute(
      database.db,
    );
    expect(await checkDatabaseSchema(settings)).toMatchObject({ pending: [], ahead: ['9999-from-a-newer-version'] });
    expect((await readMigrationStatus(settings)).applied).toEqual([...all, '9999-from-a-newer-version']);
  });
});
