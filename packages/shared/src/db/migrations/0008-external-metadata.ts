import type { Kysely } from 'kysely';
import { schemaTypes } from '../schema-types.js';

/** Videos linked to their YouTube counterpart, and that counterpart's metadata as last fetched. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const t = schemaTypes(db);
  await db.schema.alterTable('videos').addColumn('youtube_id', 'text').execute();
  await t
    .createTable('external_metadata')
    .addColumn('video_id', t.uuid, (col) => col.primaryKey())
    .addColumn('provider', 'text', (col) => col.notNull())
    .addColumn('external_id', 'text', (col) => col.notNull())
    .addColumn('data', t.json, (col) => col.notNull())
    .addColumn('fetched_at', t.timestamp, (col) => col.notNull().defaultTo(t.now))
    .$call(t.cascadingReference('external_metadata', 'video_id', 'videos'))
    .execute();
  await db.schema.createIndex('external_metadata_fetched_idx').on('external_metadata').column('fetched_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('external_metadata').ifExists().execute();
  await db.schema.alterTable('videos').dropColumn('youtube_id').execute();
}
