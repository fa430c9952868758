import { sql, type AlterTableColumnAlteringBuilder, type Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/**
 * What a submission carries beyond its source (options, callback, priority, submitting key), a
 * version counter that numbers every change of a video (the event ids of its live stream), and
 * the idempotency keys of the API.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  // One column a statement: SQLite adds one column per ALTER TABLE.
  const columns: ((table: ReturnType<typeof db.schema.alterTable>) => AlterTableColumnAlteringBuilder)[] = [
    (table) => table.addColumn('options', t.json, (col) => col.notNull().defaultTo(t.emptyObject)),
    (table) => table.addColumn('callback_url', 'text'),
    (table) => table.addColumn('priority', t.string(16), (col) => col.notNull().defaultTo('normal')),
    (table) => table.addColumn('submitted_by', 'text'),
    (table) => table.addColumn('version', 'integer', (col) => col.notNull().defaultTo(1)),
  ];
  for (const addColumn of columns) await addColumn(db.schema.alterTable('videos')).execute();
  await db.schema.createIndex('videos_created_idx').on('videos').columns(['created_at', 'id']).execute();

  await t
    .createTable('idempotency_keys')
    .addColumn('principal', t.string(128), (col) => col.notNull())
    .addColumn('key', t.string(255), (col) => col.notNull())
    .addColumn('request_hash', 'text', (col) => col.notNull())
    .addColumn('state', t.string(16), (col) => col.notNull().check(sql`state in ('in_progress', 'completed')`))
    .addColumn('response_status', 'integer')
    .addColumn('response_body', t.json)
    .addColumn('created_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .addColumn('expires_at', t.timestamp, (col) => col.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['principal', 'key'])
    .execute();
  await db.schema.createIndex('idempotency_keys_expiry_idx').on('idempotency_keys').column('expires_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  await db.schema.dropTable('idempotency_keys').ifExists().execute();
  const dropIndex = db.schema.dropIndex('videos_created_idx');
  await (t.engine === 'mysql' ? dropIndex.on('videos') : dropIndex.ifExists()).execute();
  for (const column of ['options', 'callback_url', 'priority', 'submitted_by', 'version']) {
    await db.schema.alterTable('videos').dropColumn(column).execute();
  }
}
