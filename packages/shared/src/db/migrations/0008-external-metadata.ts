import { sql, type Kysely } from 'kysely';

/** Videos linked to their YouTube counterpart, and that counterpart's metadata as last fetched. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('videos').addColumn('youtube_id', 'text').execute();
  await db.schema
    .createTable('external_metadata')
    .addColumn('video_id', 'uuid', (col) => col.primaryKey().references('videos.id').onDelete('cascade'))
    .addColumn('provider', 'text', (col) => col.notNull())
    .addColumn('external_id', 'text', (col) => col.notNull())
    .addColumn('data', 'jsonb', (col) => col.notNull())
    .addColumn('fetched_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('external_metadata_fetched_idx').on('external_metadata').column('fetched_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('external_metadata').ifExists().execute();
  await db.schema.alterTable('videos').dropColumn('youtube_id').execute();
}
