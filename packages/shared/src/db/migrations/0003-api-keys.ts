import { sql, type Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/** API keys, hashed: the plain key is shown once at creation and never stored. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  await t
    .createTable('api_keys')
    .addColumn('id', t.uuid, (col) => col.primaryKey())
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('prefix', t.string(32), (col) => col.notNull().unique())
    .addColumn('key_hash', t.bytes(32), (col) => col.notNull().check(sql`${t.byteLength('key_hash')} = 32`))
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .addColumn('revoked_at', t.timestamp)
    .addColumn('last_used_at', t.timestamp)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('api_keys').ifExists().execute();
}
