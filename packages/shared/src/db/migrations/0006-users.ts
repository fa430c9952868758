import { sql, type Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/** Registered users. The password hash arrives later, from the CPU pool; the email is unique case-insensitively. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  let table = t
    .createTable('users')
    .addColumn('id', t.uuid, (col) => col.primaryKey())
    .addColumn('email', t.string(320), (col) => col.notNull())
    .addColumn('name', 'text')
    .addColumn('password_hash', 'text')
    .addColumn('status', t.string(16), (col) => col.notNull().defaultTo('pending').check(sql`status in ('pending', 'active', 'failed')`))
    .addColumn('failure', 'text')
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .addColumn('activated_at', t.timestamp)
    .addColumn('welcomed_at', t.timestamp);
  // MariaDB has no index on an expression: a stored generated column carries lower(email) there.
  // SQLite's lower() folds ASCII letters only, so there the application writes the folded email.
  if (t.engine === 'mysql') {
    table = table.addColumn('email_lower', sql`varchar(320) collate utf8mb4_bin`, (col) => col.generatedAlwaysAs(sql`lower(email)`).stored().unique());
  } else if (t.engine === 'sqlite') {
    table = table.addColumn('email_lower', 'text', (col) => col.notNull().unique());
  }
  await table.execute();
  if (t.engine === 'postgres') await sql`create unique index users_email_unique on users (lower(email))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('users').ifExists().execute();
}
