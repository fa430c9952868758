import { sql, type Kysely } from 'kysely';

/**
 * What a submission carries beyond its source (options, callback, priority, submitting key), a
 * version counter that numbers every change of a video (the event ids of its live stream), and
 * the idempotency keys of the API.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('videos')
    .addColumn('options', 'jsonb', (col) => col.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('callback_url', 'text')
    .addColumn('priority', 'text', (col) => col.notNull().defaultTo('normal'))
    .addColumn('submitted_by', 'text')
    .addColumn('version', 'integer', (col) => col.notNull().defaultTo(1))
    .execute();
  await db.schema.createIndex('videos_created_idx').on('videos').columns(['created_at', 'id']).execute();

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('principal', 'text', (col) => col.notNull())
    .addColumn('key', 'text', (col) => col.notNull())
    .addColumn('request_hash', 'text', (col) => col.notNull())
    .addColumn('state', 'text', (col) => col.notNull().check(sql`state in ('in_progress', 'completed')`))
    .addColumn('response_status', 'integer')
    .addColumn('response_body', 'jsonb')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['principal', 'key'])
    .execute();
  await db.schema.createIndex('idempotency_keys_expiry_idx').on('idempotency_keys').column('expires_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('idempotency_keys').ifExists().execute();
  await db.schema.dropIndex('videos_created_idx').ifExists().execute();
  await db.schema
    .alterTable('videos')
    .dropColumn('options')
    .dropColumn('callback_url')
    .dropColumn('priority')
    .dropColumn('submitted_by')
    .dropColumn('version')
    .execute();
}
